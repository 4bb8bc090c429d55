//! `plan --refresh-only` / `apply --refresh-only`: record the live world in
//! the state (a router switched by hand, a process that died) without
//! changing anything live.

use std::time::Duration;

use anyhow::Context as _;

use super::{context, plan, Global, EXIT_CHANGES, EXIT_OK};
use crate::plan::diff::refreshed_state;
use crate::state::lock::StateLock;

/// Run a refresh-only plan (`apply == false`) or apply.
pub async fn run(
    g: &Global,
    apply: bool,
    lock_timeout: Duration,
    detailed_exitcode: bool,
) -> anyhow::Result<u8> {
    let engine = plan::engine_for(None);
    let ctx = context::load(g, Some(&engine))?;
    let config = &ctx.loaded.config;
    let lock = if apply {
        Some(StateLock::acquire(
            &ctx.state_path,
            "apply --refresh-only",
            lock_timeout,
        )?)
    } else {
        None
    };
    let state = context::read_state(&ctx.state_path, lock.as_ref())?
        .unwrap_or_else(crate::state::new_state);
    let live = engine.refresh(config, Some(&state)).await?;
    let scrubber = crate::plan::sensitive::Scrubber::new(&config.secrets);
    let (next, changed) = refreshed_state(config, &state, &live);
    let next = scrubber.scrub(&next);
    // Only the drift: a refresh-only run plans no steps (and must not trip
    // over rules that only concern steps, such as live-colour protection).
    let drift = crate::plan::diff::drift(config, &state, &live);
    if !drift.is_empty() {
        println!("Changes outside cutover since the last apply:\n");
        for d in &drift {
            println!("  # {}", scrubber.text(&d.message));
        }
        println!();
    }
    if changed.is_empty() && next == state {
        println!("The state already matches the live world: nothing to record.");
        return Ok(EXIT_OK);
    }
    println!("cutover will record the live world in the state (nothing live changes):\n");
    for line in &changed {
        println!("  ~ {}", scrubber.text(line));
    }
    if !apply {
        println!("\nTo record it: cutover apply --refresh-only");
        return Ok(if detailed_exitcode {
            EXIT_CHANGES
        } else {
            EXIT_OK
        });
    }
    context::check_state_writable(&ctx.state_path)?;
    let mut next = next;
    next.serial = state.serial + 1;
    crate::state::save(&ctx.state_path, &next)
        .with_context(|| format!("failed to write state file {}", ctx.state_path.display()))?;
    println!(
        "\nRecorded in {} (serial {}). Nothing live was changed.",
        ctx.state_path.display(),
        next.serial
    );
    Ok(EXIT_OK)
}
