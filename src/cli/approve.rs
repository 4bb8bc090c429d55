//! `cutover approve [ROUTER...]`: release an apply that waits for approval
//! before its cut-over, from another terminal or a CI job. The
//! configuration is read only to find the state backend; the approval goes
//! through it (state/approval.rs), without taking the lock the waiting
//! apply holds.

use clap::Args;

use super::{context, Global, EXIT_OK};
use crate::render;
use crate::state::approval;

/// Flags of `cutover approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Routers to approve (`public` or `router.public`); default: every
    /// router the waiting apply waits for.
    #[arg(value_name = "ROUTER")]
    pub routers: Vec<String>,
    /// Print what was approved as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `cutover approve`: exit 0 once approved (or approved already), 1
/// when nothing was approved (the error says why and what to do).
pub async fn run(g: &Global, args: ApproveArgs) -> anyhow::Result<u8> {
    let ctx = context::load(g, None)?;
    let backend = ctx.backend.as_ref();
    let approved = backend.approve(&args.routers, &approval::approver())?;
    let state = backend.describe();
    if args.json {
        let view = render::approval::approved_json(&state, &approved);
        outln!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        let now = std::time::SystemTime::now();
        out!("{}", render::approval::approved(&state, &approved, now));
    }
    Ok(EXIT_OK)
}
