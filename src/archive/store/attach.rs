//! `reelfs attach DIR s3://bucket/prefix`: a working archive folder on a new
//! host from the bucket alone: the newest catalog snapshot the writer
//! published (snapshot.rs), verified, and the writer's reelfs.toml with this
//! host's endpoint and region.
//!
//! Everything is assembled in a hidden folder beside DIR and renamed into
//! place only once complete and checked, so a failure (no snapshot, a
//! damaged one, the server gone mid-download) leaves no half-attached folder.

use super::object::ObjectPackStore;
use super::{snapshot, StoreConfig};
use crate::archive::catalog::Catalog;
use crate::archive::config::Config;
use crate::archive::error::{ArchiveError, IoContext, Result};
use crate::archive::{pack_store, perms};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct AttachReport {
    pub archive: PathBuf,
    pub store: String,
    /// The snapshot the catalog came from, and who published it when.
    pub snapshot: u64,
    pub published_by: String,
    pub published: u64,
    pub branches: Vec<String>,
}

/// Removes the half-made folder unless it was renamed into place.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

pub fn attach(dir: &Path, sc: StoreConfig) -> Result<AttachReport> {
    if dir.exists() {
        let empty = dir.is_dir() && std::fs::read_dir(dir).at(dir)?.next().is_none();
        if !empty {
            return Err(ArchiveError::AlreadyExists { path: dir.into() });
        }
    }
    let name = dir.file_name().ok_or_else(|| ArchiveError::Invalid(format!("'{}' names no folder to attach into", dir.display())))?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).at(parent)?;
    let tmp = parent.join(format!(".{}.attaching-{}", name.to_string_lossy(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).at(&tmp)?;
    let mut scratch = Scratch(Some(tmp.clone()));
    perms::Policy::from_dir_mode(perms::PRIVATE_DIR).apply_dir(&tmp)?;
    let policy = perms::Policy::inherited(&tmp)?;
    policy.create_dir_all(&tmp.join("packs"))?;
    policy.create_dir_all(&tmp.join("cache"))?;

    let head = {
        let store = ObjectPackStore::s3(&tmp, &sc)?;
        let inner = store.inner();
        let reach = |e: ArchiveError| {
            ArchiveError::Invalid(format!(
                "cannot read {}: {e}; check the URL, --endpoint, --region and the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
                sc.url
            ))
        };
        let head = match snapshot::read_head(inner) {
            Ok(Some((h, _))) => h,
            Ok(None) => {
                return Err(ArchiveError::Invalid(format!(
                    "{} holds no published catalog (no catalog/HEAD): check the prefix; for an archive whose writer never \
                     published one, run any write on the writer host (for example `reelfs branch ARCHIVE attach-check`) and try again",
                    sc.url
                )))
            }
            Err(e @ ArchiveError::Inconsistent(_)) => return Err(e),
            Err(e) => return Err(reach(e)),
        };
        snapshot::fetch(inner, &head, &tmp.join("catalog.db"))?;
        head
    };

    // The writer's config (chunker seed, compression), with this host's way to the bucket.
    let cfg_tmp = tmp.join("reelfs.toml.tmp");
    std::fs::write(&cfg_tmp, &head.config).at(&cfg_tmp)?;
    let mut cfg = Config::load(&cfg_tmp).map_err(|e| {
        ArchiveError::Inconsistent(format!(
            "{}/catalog/HEAD carries a reelfs.toml this reelfs cannot read ({e}); is this reelfs older than the writer's?",
            sc.url
        ))
    })?;
    let mut store = cfg.store.clone().unwrap_or_else(|| sc.clone());
    store.url = sc.url.clone();
    if sc.endpoint.is_some() {
        store.endpoint = sc.endpoint.clone();
    }
    if sc.region.is_some() {
        store.region = sc.region.clone();
    }
    cfg.store = Some(store);
    let text = cfg.to_toml().map_err(|msg| ArchiveError::Config { path: cfg_tmp.clone(), msg })?;
    std::fs::write(&cfg_tmp, text).at(&cfg_tmp)?;

    let branches = {
        let cat = Catalog::open_read_only(&tmp.join("catalog.db"))?;
        cat.branches()?.into_iter().map(|(b, _)| b).collect::<Vec<_>>()
    };
    snapshot::write_local(&tmp, &snapshot::Local { seq: head.seq, fingerprint: snapshot::fingerprint(&tmp.join("catalog.db"))? })?;
    drop(policy.create_new_file(&tmp.join("lock"))?);
    // reelfs.toml last: its presence is what makes the folder an archive.
    std::fs::rename(&cfg_tmp, tmp.join("reelfs.toml")).at(&tmp)?;
    pack_store::fsync_dir(&tmp)?;
    // An empty DIR is replaced by the rename; anything else was refused above.
    std::fs::rename(&tmp, dir).at(dir)?;
    scratch.0 = None;
    pack_store::fsync_dir(parent)?;
    Ok(AttachReport {
        archive: dir.to_path_buf(),
        store: sc.url,
        snapshot: head.seq,
        published_by: head.host,
        published: head.published,
        branches,
    })
}
