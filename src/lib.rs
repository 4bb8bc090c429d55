//! cutover: a declarative reconciler for blue-green deployments.
//!
//! Layers run one way: [`cli`] -> [`engine`] -> [`plan`] / [`state`] ->
//! [`config`] -> [`graph`] -> [`addr`]; [`render`] reads only the plan
//! document and state.
#![deny(missing_docs)]

pub mod addr;
pub mod cli;
pub mod config;
pub mod engine;
pub mod graph;
pub mod plan;
pub mod registry;
pub mod render;
pub mod state;
