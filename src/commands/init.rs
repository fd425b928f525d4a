//! `reelfs init`: a new, empty archive.

use crate::archive::Archive;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    pub archive: PathBuf,
    pub branch: String,
    pub group: Option<String>,
}

/// Create an archive at `archive` (private to the caller; with `group`, shared
/// read-only with that group).
pub fn init(archive: &Path, group: Option<&str>) -> super::Result<InitReport> {
    Archive::init_shared(archive, group)?;
    Ok(InitReport { archive: archive.to_path_buf(), branch: "main".into(), group: group.map(String::from) })
}
