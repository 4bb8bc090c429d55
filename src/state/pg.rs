//! The state in PostgreSQL (`backend "pg" {}`): docs/backends.md.

use std::path::Path;

use crate::config::model::PgSettings;

/// The backend `settings` name.
pub fn open(
    _settings: &PgSettings,
    _dir: &Path,
) -> anyhow::Result<Box<dyn super::backend::Backend>> {
    anyhow::bail!("the pg backend is not built yet")
}
