//! Where an archive's packs live, as its reelfs.toml says: the local `packs/`
//! folder (the default) or an S3-compatible bucket (`[store] url = "s3://..."`).
//!
//! Only the store's address goes into reelfs.toml; credentials come from the
//! environment (AWS_ACCESS_KEY_ID, ...) or the AWS profile files each time a
//! command runs, so an archive folder can be copied or shared without leaking
//! them.

#[cfg(feature = "s3")]
pub mod attach;
#[cfg(feature = "s3")]
pub mod cache;
#[cfg(feature = "s3")]
pub mod credentials;
#[cfg(feature = "s3")]
pub mod follow;
#[cfg(feature = "s3")]
pub mod journal;
#[cfg(feature = "s3")]
pub mod lease;
#[cfg(feature = "s3")]
pub mod migrate;
#[cfg(feature = "s3")]
pub mod object;
#[cfg(feature = "s3")]
pub mod publish;
#[cfg(feature = "s3")]
pub mod queue;
#[cfg(feature = "s3")]
pub mod snapshot;
#[cfg(feature = "s3")]
pub mod uploads;

use super::config::{byte_size, Config};
use super::error::{ArchiveError, Result};
use super::pack_store::{self, PackStore};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// `[store]` in reelfs.toml: where the packs are when they are not in `packs/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoreConfig {
    /// `s3://bucket/prefix`: packs are objects below the prefix.
    pub url: String,
    /// An S3-compatible server's URL (MinIO, Ceph RGW, a test server); absent for AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Most bytes of pack data kept in the local read cache (ARCHIVE/cache/packs).
    #[serde(with = "byte_size", default = "default_cache_limit")]
    pub cache_limit: u64,
    /// How long one request is retried (with back-off) before it fails.
    #[serde(default = "default_retry_seconds")]
    pub retry_seconds: u64,
    /// How long a writer's lease on the bucket lasts unless renewed: a writer
    /// that dies holds the archive no longer than this.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
}

/// A minute: renewed every 20 s by a live writer; a dead one blocks others
/// for at most a minute.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;

fn default_lease_seconds() -> u64 {
    DEFAULT_LEASE_SECONDS
}

/// 20 GiB: a working set of several hours of camera originals' hot chunks on
/// an edit bay's local disk, small next to the archive.
pub const DEFAULT_CACHE_LIMIT: u64 = 20 << 30;

fn default_cache_limit() -> u64 {
    DEFAULT_CACHE_LIMIT
}

/// One minute rides out a server restart or a network blip; a server that is
/// gone longer than that is a clear error rather than a hung read.
pub const DEFAULT_RETRY_SECONDS: u64 = 60;

fn default_retry_seconds() -> u64 {
    DEFAULT_RETRY_SECONDS
}

/// An `s3://bucket/prefix` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing '/'; may be empty.
    pub prefix: String,
}

impl S3Url {
    pub fn parse(url: &str) -> std::result::Result<S3Url, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("'{url}' is not a store URL: write s3://BUCKET/PREFIX (for example s3://studio-archive/show-x)"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules, so a typo is caught here, not by a 400 from the server.
        let ok_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !ok_bucket {
            return Err(format!("'{bucket}' in '{url}' is not an S3 bucket name (3-63 lowercase letters, digits, '-' and '.')"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") || prefix.contains('\0') {
            return Err(format!("the prefix in '{url}' must be plain names separated by '/' (no '.', '..' or empty parts)"));
        }
        Ok(S3Url { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }

    pub fn display(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl StoreConfig {
    pub fn new(url: &str, endpoint: Option<String>, region: Option<String>) -> std::result::Result<StoreConfig, String> {
        let parsed = S3Url::parse(url)?;
        if let Some(e) = &endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!("--endpoint '{e}' must be a URL like https://s3.example.com or http://127.0.0.1:9000"));
            }
        }
        Ok(StoreConfig {
            url: parsed.display(),
            endpoint,
            region,
            cache_limit: DEFAULT_CACHE_LIMIT,
            retry_seconds: DEFAULT_RETRY_SECONDS,
            lease_seconds: DEFAULT_LEASE_SECONDS,
        })
    }
}

/// The pack store of the archive at `root`, as its reelfs.toml says. One per
/// archive per process: an object store keeps a runtime, connections and a
/// cache index that every `Archive` opened on it shares.
pub fn for_archive(root: &Path) -> Result<Arc<dyn PackStore>> {
    let cfg_path = root.join("reelfs.toml");
    if !cfg_path.is_file() {
        // Not an archive: opening it says so, with what to do.
        return Ok(pack_store::local_store(root));
    }
    let cfg = Config::load(&cfg_path)?;
    match &cfg.store {
        None => Ok(pack_store::local_store(root)),
        Some(sc) => shared(root, sc),
    }
}

fn shared(root: &Path, sc: &StoreConfig) -> Result<Arc<dyn PackStore>> {
    static OPEN: OnceLock<Mutex<HashMap<(PathBuf, String), Arc<dyn PackStore>>>> = OnceLock::new();
    let key = (root.canonicalize().unwrap_or_else(|_| root.to_path_buf()), format!("{sc:?}"));
    let mut open = OPEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = open.get(&key) {
        return Ok(s.clone());
    }
    let s = open_remote(root, sc)?;
    open.insert(key, s.clone());
    Ok(s)
}

#[cfg(feature = "s3")]
fn open_remote(root: &Path, sc: &StoreConfig) -> Result<Arc<dyn PackStore>> {
    Ok(Arc::new(object::ObjectPackStore::s3(root, sc)?))
}

/// The bucket behind the archive at `root` as its own store (not shared with
/// the archive's pack reads: a follower's polls then never wait behind a
/// mount's reads). `None` when the packs are local.
#[cfg(feature = "s3")]
pub fn object_store_for(root: &Path) -> Result<Option<object::ObjectPackStore>> {
    let cfg = Config::load(&root.join("reelfs.toml"))?;
    match &cfg.store {
        None => Ok(None),
        Some(sc) => Ok(Some(object::ObjectPackStore::s3_metadata(root, sc)?)),
    }
}

#[cfg(not(feature = "s3"))]
fn open_remote(root: &Path, sc: &StoreConfig) -> Result<Arc<dyn PackStore>> {
    Err(ArchiveError::Config {
        path: root.join("reelfs.toml"),
        msg: format!("the packs are in {} but this reelfs was built without S3 support (feature `s3`); use a build with it", sc.url),
    })
}

/// A new archive's store, checked before anything is created: the bucket is
/// reachable with the credentials at hand and holds no other archive's packs.
pub fn for_new_archive(root: &Path, sc: &StoreConfig) -> Result<Arc<dyn PackStore>> {
    let s = open_remote(root, sc)?;
    let existing = s.list().map_err(|e| ArchiveError::Invalid(format!("cannot use {}: {e}; check the bucket, --endpoint, --region and the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)", sc.url)))?;
    if !existing.is_empty() {
        return Err(ArchiveError::Invalid(format!(
            "{} already holds {} packs of another archive; choose an empty prefix for a new archive",
            sc.url,
            existing.len()
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_and_refuse_what_is_not_a_bucket_path() {
        assert_eq!(S3Url::parse("s3://show-x/archive/a").unwrap(), S3Url { bucket: "show-x".into(), prefix: "archive/a".into() });
        assert_eq!(S3Url::parse("s3://show-x").unwrap().prefix, "");
        assert_eq!(S3Url::parse("s3://show-x/p/").unwrap().display(), "s3://show-x/p");
        for bad in ["show-x/p", "s3://", "s3://UPPER/p", "s3://a/p", "s3://b-/p", "s3://bucket/../x", "s3://bucket/a//b", "http://bucket/p"]
        {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
        assert!(StoreConfig::new("s3://bucket/p", Some("127.0.0.1:9000".into()), None).is_err());
    }
}
