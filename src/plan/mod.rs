//! Planning: desired state (config) + what is live + the state file -> a
//! [`document::PlanDocument`].
//!
//! Planning never touches anything live; the engine refreshes first and hands
//! the planner what it read ([`Live`]). The planner is a pure function so that
//! every ordering rule can be tested without a router.

pub mod diff;
pub mod document;
pub mod saved;
pub mod sensitive;

pub use diff::{plan, Live, PlanError};
pub use document::PlanDocument;
