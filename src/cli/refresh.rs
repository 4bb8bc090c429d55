//! `plan --refresh-only` / `apply --refresh-only`: record the live world in
//! the state (a router switched by hand, a process that died) without
//! changing anything live.

use std::time::Duration;

use super::{context, plan, Global, EXIT_CHANGES, EXIT_OK};

/// Run a refresh-only plan (`apply == false`) or apply.
pub async fn run(
    g: &Global,
    apply: bool,
    lock_timeout: Duration,
    detailed_exitcode: bool,
) -> anyhow::Result<u8> {
    let (engine, ctx) = plan::engine_and_config(g, None, &plan::Choices::default())?;
    let config = &ctx.loaded.config;
    let backend = ctx.backend.as_ref();
    let lock = if apply {
        let lock = context::lock(backend, "apply --refresh-only", lock_timeout)?;
        Some(lock)
    } else {
        None
    };
    let state = context::state_for(&ctx, lock.as_ref())?.unwrap_or_else(crate::state::new_state);
    let refreshed = engine.refresh_only(config, &state).await?;
    if !refreshed.drift.is_empty() {
        outln!("Changes outside cutover since the last apply:\n");
        for d in &refreshed.drift {
            outln!("  # {}", d.message);
        }
        outln!();
    }
    if refreshed.is_empty(&state) {
        outln!("The state already matches the live world: nothing to record.");
        return Ok(EXIT_OK);
    }
    outln!("cutover will record the live world in the state (nothing live changes):\n");
    for line in &refreshed.changed {
        outln!("  ~ {line}");
    }
    if !apply {
        outln!("\nTo record it: cutover apply --refresh-only");
        return Ok(if detailed_exitcode {
            EXIT_CHANGES
        } else {
            EXIT_OK
        });
    }
    let lock = lock.expect("an apply holds the lock");
    context::check_state_writable(backend, &lock)?;
    let serial = engine.record_refresh((backend, &lock), &state, &refreshed)?;
    outln!(
        "\nRecorded in {} (serial {serial}). Nothing live was changed.",
        backend.describe()
    );
    Ok(EXIT_OK)
}
