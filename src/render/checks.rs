//! One sentence for each of a router's checks around its switch (tests,
//! analyses, approval), shared by the human and markdown views.

use crate::addr::StepId;
use crate::config::checks::{command_line, duration, When};
use crate::plan::document::StepKind;

/// The sentence for a test, analysis or approval step (empty for others).
pub fn checks_text(id: &StepId, kind: &StepKind) -> String {
    match kind {
        StepKind::Test {
            target,
            spec,
            preview_url,
            ..
        } => {
            let through = preview_url
                .as_deref()
                .map(|u| format!(" (through the preview at {u})"))
                .unwrap_or_default();
            format!(
                "{id}: `{}` runs against {target}{through} before the switch (at most {}; a failure keeps the live colour)",
                command_line(&spec.command),
                duration(spec.timeout)
            )
        }
        StepKind::Analysis {
            router,
            target,
            spec,
            recheck: true,
            ..
        } => format!(
            "{id}: router.{router} went live on {target} in an earlier apply that stopped before this check passed: it runs now, under live traffic, {} (a failure is reported; router.{router} stays where it is)",
            spec.measures()
        ),
        StepKind::Analysis {
            router,
            target,
            spec,
            ..
        } => match spec.when {
            When::Before => format!(
                "{id}: before the switch to {target}, {} (a failure keeps the live colour)",
                spec.measures()
            ),
            When::After => format!(
                "{id}: after the switch to {target}, under live traffic, {} (a failure switches router.{router} back)",
                spec.measures()
            ),
        },
        StepKind::Approval {
            router, to, timeout, ..
        } => format!(
            "{id}: the apply pauses before router.{router} switches to {to}, until `cutover approve {}` (at most {}; then nothing switches)",
            crate::addr::shell_word(router),
            duration(*timeout)
        ),
        _ => String::new(),
    }
}
