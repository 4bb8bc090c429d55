//! state
pub mod model;
