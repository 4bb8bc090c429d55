//! Saved plans (`plan --out FILE`): the plan document plus what apply needs
//! to record, so `apply FILE` runs exactly what was reviewed and never plans
//! again.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::document::PlanDocument;

/// The saved plan file's format version.
pub const SAVED_PLAN_VERSION: u32 = 1;

/// The colour a router is on after the plan is applied, recorded into the
/// state even when the router needs no cut-over (so drift and rollback know
/// where it was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterRecord {
    /// The router.
    pub router: String,
    /// Its backend kind.
    pub backend: String,
    /// The colour it is on after the plan.
    pub live: Option<String>,
}

/// A plan as the engine made it: the document people review, and the router
/// records apply writes into the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// The document.
    pub document: PlanDocument,
    /// Routers whose live colour needs recording without a cut-over.
    pub records: Vec<RouterRecord>,
}

/// The file `plan --out` writes.
#[derive(Debug, Serialize, Deserialize)]
struct SavedPlan {
    saved_plan_version: u32,
    #[serde(flatten)]
    planned: Planned,
}

/// A saved plan that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The file could not be read or written.
    #[error("cannot access saved plan {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a saved plan of this version.
    #[error("{path} is not a cutover saved plan: {source}")]
    Format {
        /// The file.
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Made by another version of the format.
    #[error(
        "{path} is a saved plan of format {found}; this cutover reads format {SAVED_PLAN_VERSION}"
    )]
    Version {
        /// The file.
        path: String,
        /// The version found.
        found: u32,
    },
}

/// Write a saved plan (atomically: temp file then rename).
pub fn write(path: &Path, planned: &Planned) -> Result<(), SavedPlanError> {
    let io = |source| SavedPlanError::Io {
        path: path.display().to_string(),
        source,
    };
    let saved = SavedPlan {
        saved_plan_version: SAVED_PLAN_VERSION,
        planned: planned.clone(),
    };
    let mut bytes = serde_json::to_vec_pretty(&saved).expect("plan documents always serialize");
    bytes.push(b'\n');
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, &bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Read a saved plan.
pub fn read(path: &Path) -> Result<Planned, SavedPlanError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| SavedPlanError::Io {
        path: p.clone(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| SavedPlanError::Format {
            path: p.clone(),
            source,
        })?;
    let found = value
        .get("saved_plan_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as u32;
    if found != SAVED_PLAN_VERSION {
        return Err(SavedPlanError::Version { path: p, found });
    }
    let saved: SavedPlan = serde_json::from_value(value)
        .map_err(|source| SavedPlanError::Format { path: p, source })?;
    Ok(saved.planned)
}
