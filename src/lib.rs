//! cutover: a declarative reconciler for blue-green deployments.
//!
//! Layers run one way: [`cli`] -> [`engine`] -> [`plan`] / [`graph`] /
//! [`state`] -> [`config`]; [`render`] reads only the plan document and state.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod graph;
pub mod plan;
pub mod render;
pub mod state;
