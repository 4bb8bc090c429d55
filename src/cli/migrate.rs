//! `cutover state migrate --to KIND`: move the state between the local file
//! and the shared backend the configuration names (docs/backends.md), with
//! its lineage and serial, so that adopting a backend (or leaving one) is a
//! move, not a new state.
//!
//! Both states are locked for the move; what an interrupted apply left in
//! the source (its journal) is folded first; the target must hold no state,
//! or exactly this one (a rerun after a crash). A target holding another
//! lineage is refused: it is another configuration's state. The source is
//! kept: the local file is renamed `<file>.migrated` (so nothing reads it by
//! mistake; delete it once the move is committed), a shared backend's copy
//! is left as it was.

use anyhow::{bail, Context as _};
use clap::ValueEnum;

use super::{context, Global, EXIT_OK};
use crate::state::backend::{lock_now, Backend, LocalFile, Stamp};

/// Where `state migrate` moves the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The local file (the `state` setting, `cutover.state.json`).
    Local,
    /// The `backend "pg" {}` the configuration names.
    Pg,
    /// The `backend "git" {}` the configuration names.
    Git,
}

/// Run `cutover state migrate --to TARGET`.
pub async fn run(g: &Global, to: Target) -> anyhow::Result<u8> {
    let ctx = context::load_unchecked(g)?;
    let local = LocalFile::new(&ctx.state_path);
    let shared = ctx.backend.as_ref();
    let configured = shared.kind();
    let (from, into): (&dyn Backend, &dyn Backend) = match to {
        Target::Local if configured == "local" => bail!(
            "--to local: the configuration names no shared backend, so the state already is the local file {}",
            local.describe()
        ),
        Target::Local => (shared, &local),
        Target::Pg | Target::Git => {
            let wanted = if to == Target::Pg { "pg" } else { "git" };
            if configured != wanted {
                bail!(
                    "--to {wanted}: the configuration names {}; add `backend \"{wanted}\" {{ ... }}` to the `cutover {{}}` block first (docs/backends.md)",
                    if configured == "local" { "no shared backend".to_string() } else { format!("backend \"{configured}\"") }
                );
            }
            (&local, shared)
        }
    };
    let from_lock = lock_now(from, "state migrate")?;
    let into_lock = lock_now(into, "state migrate")?;
    let Some(state) = context::read_state(from, Some(&from_lock))? else {
        bail!("there is no state at {} to migrate", from.describe());
    };
    let there = crate::state::open(into, crate::state::Access::Locked(&into_lock))?.state;
    match there {
        Some(t) if t == state => {
            outln!(
                "{} already holds this state (lineage {}, serial {}): nothing to copy.",
                into.describe(),
                state.lineage,
                state.serial
            );
        }
        Some(t) if t.lineage == state.lineage && t.serial > state.serial => bail!(
            "{} already holds this state, newer than {} (serial {} there, {} here): nothing to move; the older copy in {} is stale, and the team's state is the one in {}",
            into.describe(),
            from.describe(),
            t.serial,
            state.serial,
            from.describe(),
            into.describe()
        ),
        Some(t) => bail!(
            "{} already holds a state ({}), not this one ({}): refusing to overwrite it. If it is another configuration's, give this one its own (`name` for pg, `branch` or `path` for git); if it is a stale copy of this one, remove it by hand",
            into.describe(),
            Stamp::of(&t),
            Stamp::of(&state)
        ),
        None => {
            into.write_state(&into_lock, None, &state)?;
            // Read back: the move is done only when the target says so.
            let back = into.read_state()?;
            if back.as_ref() != Some(&state) {
                bail!("{} did not keep the state it was given; the source is unchanged", into.describe());
            }
            outln!(
                "Copied the state (lineage {}, serial {}) from {} to {}.",
                state.lineage,
                state.serial,
                from.describe(),
                into.describe()
            );
        }
    }
    if from.kind() == "local" {
        let kept = ctx.state_path.with_extension("json.migrated");
        std::fs::rename(&ctx.state_path, &kept).with_context(|| {
            format!(
                "failed to rename {} to {}",
                ctx.state_path.display(),
                kept.display()
            )
        })?;
        outln!(
            "Renamed {} to {} so that nothing reads it by mistake; commit that, and delete it once the team uses {}.",
            ctx.state_path.display(),
            kept.display(),
            into.describe()
        );
    } else {
        outln!(
            "The copy in {} is left as it was. Remove the `backend` block from the `cutover {{}}` block and commit {}.",
            from.describe(),
            ctx.state_path.display()
        );
    }
    drop(into_lock);
    from_lock.release()?;
    Ok(EXIT_OK)
}
