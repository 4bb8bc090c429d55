//! The state on a branch of a git remote (`backend "git" {}`):
//! docs/backends.md.

use std::path::Path;

use crate::config::model::GitSettings;

/// The backend `settings` name.
pub fn open(
    _settings: &GitSettings,
    _dir: &Path,
) -> anyhow::Result<Box<dyn super::backend::Backend>> {
    anyhow::bail!("the git backend is not built yet")
}
