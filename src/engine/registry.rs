//! The providers this build knows, by backend kind.

use std::collections::BTreeMap;
use std::sync::Arc;

use cutover_provider::{EnvironmentProvider, RouterProvider};

/// Environment and router providers by block name.
#[derive(Clone)]
pub struct Providers {
    environments: BTreeMap<&'static str, Arc<dyn EnvironmentProvider>>,
    routers: BTreeMap<&'static str, Arc<dyn RouterProvider>>,
}

impl Providers {
    /// The built-in providers.
    pub fn builtin() -> Self {
        let mut environments: BTreeMap<&'static str, Arc<dyn EnvironmentProvider>> =
            BTreeMap::new();
        environments.insert("process", Arc::new(cutover_process::Process));
        environments.insert("exec", Arc::new(cutover_exec::ExecEnvironment));
        let mut routers: BTreeMap<&'static str, Arc<dyn RouterProvider>> = BTreeMap::new();
        routers.insert("haproxy", Arc::new(cutover_haproxy::Haproxy));
        routers.insert("exec", Arc::new(cutover_exec::ExecRouter));
        routers.insert("caddy", Arc::new(cutover_caddy::Caddy));
        routers.insert("nginx", Arc::new(cutover_nginx::Nginx));
        Providers {
            environments,
            routers,
        }
    }

    /// The provider for an environment backend kind.
    pub fn environment(&self, kind: &str) -> Option<Arc<dyn EnvironmentProvider>> {
        self.environments.get(kind).cloned()
    }

    /// The provider for a router backend kind.
    pub fn router(&self, kind: &str) -> Option<Arc<dyn RouterProvider>> {
        self.routers.get(kind).cloned()
    }
}
