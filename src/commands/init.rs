//! `reelfs init`: a new, empty archive.

use crate::archive::store::StoreConfig;
use crate::archive::{Archive, ArchiveError};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    pub archive: PathBuf,
    pub branch: String,
    pub group: Option<String>,
    /// `s3://bucket/prefix` when the packs live in an object store.
    pub store: Option<String>,
}

/// Create an archive at `archive` (private to the caller; with `group`, shared
/// read-only with that group).
pub fn init(archive: &Path, group: Option<&str>) -> super::Result<InitReport> {
    init_with_store(archive, group, None, None, None)
}

/// Create an archive, its packs in the bucket `store` names (`s3://BUCKET/PREFIX`)
/// when given; only the URL, endpoint and region go into reelfs.toml.
pub fn init_with_store(
    archive: &Path,
    group: Option<&str>,
    store: Option<&str>,
    endpoint: Option<String>,
    region: Option<String>,
) -> super::Result<InitReport> {
    let store = match store {
        None => {
            Archive::init_shared(archive, group)?;
            None
        }
        Some(url) => {
            let sc = StoreConfig::new(url, endpoint, region).map_err(ArchiveError::Invalid)?;
            let url = sc.url.clone();
            Archive::init_remote(archive, group, sc)?;
            Some(url)
        }
    };
    Ok(InitReport { archive: archive.to_path_buf(), branch: "main".into(), group: group.map(String::from), store })
}
