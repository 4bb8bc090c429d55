//! cutover's integration tests: one binary (STYLE.md), with the CLI driven
//! end to end and every router tested for real.

#[path = "../support/haproxy.rs"]
mod haproxy_support;

mod bad_input;
mod cli;
mod haproxy_e2e;
mod support;
