//! cutover's integration tests: one binary (STYLE.md), with the CLI driven
//! end to end and every router tested for real.

#[path = "../support/caddy.rs"]
mod caddy_support;
#[path = "../support/git_remote.rs"]
mod git_remote_support;
#[path = "../support/haproxy.rs"]
mod haproxy_support;
#[path = "../support/moto.rs"]
mod moto_support;
#[path = "../support/nginx.rs"]
mod nginx_support;
#[path = "../support/ports.rs"]
mod ports_support;
#[path = "../support/postgres.rs"]
mod postgres_support;
#[path = "../support/prometheus.rs"]
mod prometheus_support;
#[path = "../support/webhook.rs"]
mod webhook_support;

// The `aws_alb` router against moto's server (a build without the `aws`
// feature has no such router to test).
#[cfg(feature = "aws")]
mod alb_e2e;
mod analysis;
mod approve;
mod bad_input;
mod batch;
mod caddy_e2e;
mod cli;
mod crash;
mod drain;
mod examples;
mod faults;
mod fleet;
mod fleet_nginx;
mod fmt_and_state;
mod fold;
mod git_backend;
mod haproxy_e2e;
mod hooks;
mod install;
mod instances;
mod locks;
mod migrate;
mod nginx_e2e;
mod notify;
mod outputs;
mod pg_backend;
mod plan_gates;
mod readiness;
mod safety;
mod secrets;
mod shared_crash;
mod signals;
mod status;
mod support;
mod tls;
mod views;
