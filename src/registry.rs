//! The provider registry: the one list of the backends this build has.
//!
//! The config layer asks it which backend blocks exist (an `environment`'s
//! `process {}` / `exec {}`, a `router`'s `haproxy {}` ...), and the engine
//! asks it for the provider of a kind. Adding a router is its crate, its
//! `Cargo.toml` lines, and one line in [`Providers::builtin`]
//! (docs/providers.md).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use cutover_provider::{EnvironmentProvider, Fleet, RouterProvider};

/// Environment and router providers by block name.
#[derive(Clone, Default)]
pub struct Providers {
    environments: BTreeMap<&'static str, Arc<dyn EnvironmentProvider>>,
    routers: BTreeMap<&'static str, Arc<dyn RouterProvider>>,
}

static BUILTIN: LazyLock<Providers> = LazyLock::new(|| {
    let builtin = Providers::default()
        .with_environment("process", Arc::new(cutover_process::Process))
        .with_environment("exec", Arc::new(cutover_exec::ExecEnvironment))
        // One instance, or several (`instances = [...]`): a Fleet of it.
        .with_router("haproxy", Arc::new(Fleet::new(cutover_haproxy::Haproxy)))
        .with_router("caddy", Arc::new(Fleet::new(cutover_caddy::Caddy)))
        .with_router("nginx", Arc::new(Fleet::new(cutover_nginx::Nginx)))
        .with_router("exec", Arc::new(cutover_exec::ExecRouter));
    // The AWS SDK is a long build: behind the default-on `aws` feature.
    #[cfg(feature = "aws")]
    let builtin = builtin.with_router("aws_alb", Arc::new(cutover_alb::AwsAlb));
    builtin
});

/// Backend blocks this build leaves out, and the cargo feature that has
/// them, for the error that names one.
pub const LEFT_OUT: &[(&str, &str)] = if cfg!(feature = "aws") {
    &[]
} else {
    &[("aws_alb", "aws")]
};

impl Providers {
    /// The providers built into cutover.
    pub fn builtin() -> Self {
        BUILTIN.clone()
    }

    /// These providers and `provider` for environment blocks named `kind`.
    pub fn with_environment(
        mut self,
        kind: &'static str,
        provider: Arc<dyn EnvironmentProvider>,
    ) -> Self {
        self.environments.insert(kind, provider);
        self
    }

    /// These providers and `provider` for router blocks named `kind`.
    pub fn with_router(mut self, kind: &'static str, provider: Arc<dyn RouterProvider>) -> Self {
        self.routers.insert(kind, provider);
        self
    }

    /// The provider for an environment backend kind.
    pub fn environment(&self, kind: &str) -> Option<Arc<dyn EnvironmentProvider>> {
        self.environments.get(kind).cloned()
    }

    /// The provider for a router backend kind.
    pub fn router(&self, kind: &str) -> Option<Arc<dyn RouterProvider>> {
        self.routers.get(kind).cloned()
    }

    /// The environment backend blocks, in name order.
    pub fn environment_kinds(&self) -> Vec<&'static str> {
        self.environments.keys().copied().collect()
    }

    /// The router backend blocks, in name order.
    pub fn router_kinds(&self) -> Vec<&'static str> {
        self.routers.keys().copied().collect()
    }
}

/// The environment backend blocks built in, for the config layer.
pub fn environment_kinds() -> &'static [&'static str] {
    static KINDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| BUILTIN.environment_kinds());
    &KINDS
}

/// The router backend blocks built in, for the config layer.
pub fn router_kinds() -> &'static [&'static str] {
    static KINDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| BUILTIN.router_kinds());
    &KINDS
}
