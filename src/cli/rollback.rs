//! `cutover rollback [ROUTER...]`: switch routers back to the colour they had
//! before the last cut-over (recorded in the state), after that colour passes
//! its health gate. The configuration is not changed; the next `plan` shows
//! the difference.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;

use super::{context, plan, Global, EXIT_ERROR, EXIT_OK};
use crate::plan::diff::{fingerprint, router_spec};
use crate::plan::document::*;
use crate::plan::saved::Planned;
use crate::state::lock::StateLock;

/// Flags of `cutover rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Routers to roll back (`public` or `router.public`); default: every
    /// router with a recorded previous colour.
    pub routers: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How long to wait for the state lock held by another apply.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: Duration,
    /// Print progress as JSON lines (docs/events.md) and nothing else on
    /// stdout; needs --auto-approve.
    #[arg(long)]
    pub json: bool,
}

/// Run `cutover rollback`.
pub async fn run(g: &Global, args: RollbackArgs) -> anyhow::Result<u8> {
    if args.json && !args.auto_approve {
        bail!("rollback --json cannot ask for confirmation: pass --auto-approve");
    }
    let engine = plan::engine_for(None);
    let ctx = context::load(g, Some(&engine))?;
    let config = &ctx.loaded.config;
    let mut engine = engine;
    engine.scrubber = crate::plan::sensitive::Scrubber::new(&config.secrets);
    let _lock = StateLock::acquire(&ctx.state_path, "rollback", args.lock_timeout)?;
    let Some(state) = context::read_state(&ctx.state_path)? else {
        bail!(
            "no state at {}: nothing was applied, so there is nothing to roll back",
            ctx.state_path.display()
        );
    };
    let wanted: Vec<String> = if args.routers.is_empty() {
        state
            .routers
            .iter()
            .filter(|(_, r)| r.previous.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        args.routers
            .iter()
            .map(|r| r.strip_prefix("router.").unwrap_or(r).to_string())
            .collect()
    };
    if wanted.is_empty() {
        bail!(
            "no router has a previous colour recorded in {}: nothing to roll back",
            ctx.state_path.display()
        );
    }
    let live = engine.refresh(config, Some(&state)).await?;
    let mut steps = Vec::new();
    for name in &wanted {
        let Some(rec) = state.routers.get(name) else {
            bail!("router.{name} is not in the state")
        };
        let Some(to) = rec.previous.clone() else {
            bail!("router.{name} has no previous colour recorded: it has never cut over")
        };
        let Some(env) = config.environments.get(&to) else {
            bail!("router.{name} would roll back to {to}, but environment.{to} is no longer in the configuration")
        };
        let spec = router_spec(config, name)
            .with_context(|| format!("router.{name} is no longer in the configuration"))?;
        let target = spec
            .colour(&to)
            .cloned()
            .expect("every environment is a colour");
        let from = live.routers.get(name).and_then(|r| r.live.clone());
        let release = |env: &str| {
            live.environments
                .get(env)
                .and_then(|l| l.release.clone())
                .or_else(|| state.environments.get(env).map(|e| e.release.clone()))
        };
        let gate = format!("health.{to}");
        if !steps.iter().any(|s: &Step| s.id == gate) {
            steps.push(Step {
                id: gate.clone(),
                depends_on: vec![],
                kind: StepKind::HealthGate {
                    environment: to.clone(),
                    endpoints: env.endpoints.clone(),
                    health: env.health.clone(),
                    release: None,
                },
            });
        }
        steps.push(Step {
            id: format!("cutover.{name}"),
            depends_on: vec![gate],
            kind: StepKind::Cutover {
                router: name.clone(),
                from_release: from.as_deref().and_then(release),
                to_release: release(&to),
                from,
                to,
                spec,
                target,
                backend: config.routers[name].backend.kind.clone(),
                verify: config.routers[name].verify.clone(),
                reason: None,
            },
        });
    }
    steps.sort_by_key(|s| matches!(s.kind, StepKind::Cutover { .. }));
    let mut summary = Summary {
        cutover: steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Cutover { .. }))
            .count(),
        health_gates: steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::HealthGate { .. }))
            .count(),
        ..Default::default()
    };
    summary.outcome = outcome(&summary, 0);
    let document = PlanDocument {
        format_version: FORMAT_VERSION.into(),
        cutover_version: env!("CARGO_PKG_VERSION").into(),
        lineage: Some(state.lineage.clone()),
        serial: state.serial,
        drift: vec![],
        steps,
        summary,
        rollback: vec![],
        fingerprint: fingerprint(&live),
    };
    let scrubber = crate::plan::sensitive::Scrubber::new(&config.secrets);
    let planned = Planned {
        document: scrubber.scrub(&document),
        records: vec![],
        execution: Some(document),
    };
    if args.json {
        super::progress::print_json_line(&super::progress::plan_line(&planned.document));
    } else {
        println!("cutover will roll back, in this order:");
        print!(
            "{}",
            crate::render::human::plan(&planned.document, &context::style(g))
        );
    }
    if !args.auto_approve
        && !context::confirm(
            "Roll back?",
            "rollback needs confirmation: run it from a terminal or pass --auto-approve",
        )?
    {
        println!("Rollback cancelled: nothing was changed.");
        return Ok(EXIT_ERROR);
    }
    let observer: Arc<dyn crate::engine::observer::Observer> = if args.json {
        Arc::new(super::progress::JsonLines::new(&planned.document))
    } else {
        Arc::new(super::progress::Lines::default())
    };
    context::check_state_writable(&ctx.state_path)?;
    let report = engine
        .apply(&planned, state, ctx.state_path.clone(), observer)
        .await?;
    if args.json {
        super::progress::print_json_line(&super::progress::summary_line(&report));
    }
    if report.failed.is_none() {
        // Mark the routers, so the next plan says why they are not where the
        // configuration puts them (the next cut-over clears the mark).
        if let Some(mut st) = context::read_state(&ctx.state_path)? {
            let mut marked = false;
            for name in &wanted {
                if let Some(r) = st.routers.get_mut(name) {
                    marked |= !r.rolled_back;
                    r.rolled_back = true;
                }
            }
            if marked {
                st.serial += 1;
                crate::state::save(&ctx.state_path, &st).with_context(|| {
                    format!("failed to write state file {}", ctx.state_path.display())
                })?;
            }
        }
    }
    match report.failed {
        None if args.json => Ok(EXIT_OK),
        None => {
            println!("\nRollback complete. The configuration still names the colour you rolled back from: `cutover plan` shows the cut-over it would make again.");
            Ok(EXIT_OK)
        }
        Some((id, e)) => {
            eprintln!(
                "error: rollback stopped at {id}: {e}; no router moved to an unhealthy colour"
            );
            Ok(EXIT_ERROR)
        }
    }
}
