//! `cutover apply [PLANFILE]`: plan (or read the saved plan), confirm, run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use super::{context, plan, progress, Global, EXIT_ERROR, EXIT_OK};
use crate::engine::observer::Observer;
use crate::plan::saved::{self, Planned};
use crate::state::lock::StateLock;

/// Flags of `cutover apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `cutover plan --out FILE`: apply exactly it.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How many steps may run at once (default: the config's, or 10).
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// Allow in-place changes to a colour that serves live traffic and keeps
    /// serving it (refused otherwise: deploy to the idle colour and cut over).
    #[arg(long)]
    pub allow_live_changes: bool,
    /// Only record the live world (routers switched by hand, processes that
    /// died) in the state; change nothing live.
    #[arg(long)]
    pub refresh_only: bool,
    /// How long to wait for the state lock held by another apply (e.g. 30s).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: Duration,
    /// Print progress as JSON lines (docs/events.md) and nothing else on
    /// stdout; needs --auto-approve or a PLANFILE.
    #[arg(long)]
    pub json: bool,
}

/// Run `cutover apply`.
pub async fn run(g: &Global, args: ApplyArgs) -> anyhow::Result<u8> {
    if args.refresh_only {
        return super::refresh::run(g, true, args.lock_timeout, false).await;
    }
    if args.json && !args.auto_approve && args.plan_file.is_none() {
        bail!("apply --json cannot ask for confirmation: pass --auto-approve, or apply a reviewed saved plan (cutover plan --out FILE; cutover apply --json FILE)");
    }
    let mut engine = plan::engine_for(args.parallelism);
    engine.options.allow_live_changes = args.allow_live_changes;
    let ctx = context::load(g, Some(&engine))?;
    engine.scrubber = crate::plan::sensitive::Scrubber::new(&ctx.loaded.config.secrets);
    if args.parallelism.is_none() {
        engine.parallelism = ctx.loaded.config.settings.parallelism.max(1);
    }
    let style = context::style(g);
    let lock = StateLock::acquire(&ctx.state_path, "apply", args.lock_timeout)?;
    let state = context::read_state(&ctx.state_path, Some(&lock))?;

    let planned: Planned = match &args.plan_file {
        Some(file) => {
            let mut planned = saved::read(file)?;
            check_saved_plan(&planned, state.as_ref(), file)?;
            saved::rehydrate(&mut planned, &ctx.loaded.config).map_err(|e| {
                anyhow::anyhow!("{} cannot be applied: {e}; make a new plan", file.display())
            })?;
            // The live world must still be what the plan saw.
            let live = engine.refresh(&ctx.loaded.config, state.as_ref()).await?;
            let now: std::collections::BTreeMap<String, String> =
                crate::plan::diff::fingerprint(&live)
                    .into_iter()
                    .map(|(k, v)| (k, engine.scrubber.text(&v)))
                    .collect();
            let moved: Vec<String> = planned
                .document
                .fingerprint
                .iter()
                .filter(|(k, v)| now.get(*k) != Some(*v))
                .map(|(k, v)| {
                    format!(
                        "  {k}: planned against {v}, now {}",
                        now.get(k).map_or("(gone)", String::as_str)
                    )
                })
                .collect();
            if !moved.is_empty() {
                bail!(
                    "the live world has moved on since {} was made:\n{}\nRun `cutover plan` again and review the new plan.",
                    file.display(),
                    moved.join("\n")
                );
            }
            planned
        }
        None => {
            let planned = engine.plan(&ctx.loaded.config, state.as_ref()).await?;
            if !args.json {
                plan::print_human(&planned, &style);
            }
            if !planned.document.summary.has_changes() && planned.records.is_empty() {
                if args.json {
                    progress::print_json_line(&progress::plan_line(&planned.document));
                    let report = crate::engine::ApplyReport {
                        serial: state.as_ref().map_or(0, |s| s.serial),
                        ..Default::default()
                    };
                    progress::print_json_line(&progress::summary_line(&report));
                }
                return Ok(EXIT_OK);
            }
            if !args.auto_approve
                && !context::confirm(
                    "Do you want to perform these actions?",
                    "apply needs confirmation: run it from a terminal, pass --auto-approve, or apply a saved plan (cutover plan --out FILE; cutover apply FILE)",
                )?
            {
                println!("Apply cancelled: nothing was changed.");
                return Ok(EXIT_ERROR);
            }
            planned
        }
    };

    context::check_state_writable(&ctx.state_path)?;
    let state = state.unwrap_or_else(crate::state::new_state);
    let observer: Arc<dyn Observer> = if args.json {
        progress::print_json_line(&progress::plan_line(&planned.document));
        Arc::new(progress::JsonLines::new(&planned.document))
    } else {
        println!();
        Arc::new(progress::Lines::default())
    };
    let report = engine
        .apply(&planned, state, ctx.state_path.clone(), observer)
        .await?;
    if args.json {
        progress::print_json_line(&progress::summary_line(&report));
        if let Some((id, error)) = &report.failed {
            eprintln!("error: apply stopped at {id}: {error}");
            return Ok(EXIT_ERROR);
        }
        return Ok(EXIT_OK);
    }
    println!();
    match &report.failed {
        None => {
            println!(
                "Apply complete after {:.1}s: {} step(s) done. State serial {}.",
                report.elapsed.as_secs_f64(),
                report.done.len(),
                report.serial
            );
            for hint in &planned.document.rollback {
                println!(
                    "Way back: cutover rollback router.{}   (switches back to {}{})",
                    hint.router,
                    hint.to,
                    hint.release
                        .as_ref()
                        .map(|r| format!(", which keeps running {r}"))
                        .unwrap_or_default()
                );
            }
            Ok(EXIT_OK)
        }
        Some((id, error)) => {
            eprintln!("error: apply stopped at {id}: {error}");
            for (router, colour) in &report.reverted {
                eprintln!("  switched router.{router} back to {colour}: the routers of one apply move together or not at all");
            }
            for (router, why) in &report.revert_failed {
                eprintln!("  COULD NOT switch router.{router} back: {why}; check it by hand");
            }
            eprintln!(
                "  done: {}",
                if report.done.is_empty() {
                    "nothing".to_string()
                } else {
                    report.done.join(", ")
                }
            );
            eprintln!(
                "  not run: {}",
                if report.not_run.is_empty() {
                    "nothing".to_string()
                } else {
                    report.not_run.join(", ")
                }
            );
            eprintln!("What was done is recorded in {} (serial {}). Fix the cause and run `cutover plan` to see what is left.", ctx.state_path.display(), report.serial);
            Ok(EXIT_ERROR)
        }
    }
}

/// Refuse a saved plan made against another state, or an older one.
fn check_saved_plan(
    planned: &Planned,
    state: Option<&crate::state::model::State>,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let doc = &planned.document;
    match (doc.lineage.as_deref(), state) {
        (Some(plan_lineage), Some(st)) if plan_lineage != st.lineage => bail!(
            "{} was made against another state (lineage {plan_lineage}); this state has lineage {}. Make a new plan with `cutover plan --out`.",
            file.display(),
            st.lineage
        ),
        (Some(plan_lineage), None) => {
            bail!("{} was made against a state (lineage {plan_lineage}) that no longer exists here", file.display())
        }
        (None, Some(st)) => bail!(
            "{} was made before any state existed, but the state now exists (serial {}); make a new plan",
            file.display(),
            st.serial
        ),
        _ => {}
    }
    if let Some(st) = state {
        if st.serial != doc.serial {
            bail!(
                "{} is stale: it was made against state serial {}, and the state is now at serial {}. Run `cutover plan --out` again.",
                file.display(),
                doc.serial,
                st.serial
            );
        }
    }
    Ok(())
}
