//! `store migrate`: move an archive's packs from `packs/` to a bucket — copy,
//! verify, switch — under the writer lock, so no pack appears meanwhile.
//!
//! 1. Copy: each pack the catalog knows is uploaded (a multipart upload,
//!    visible only when complete) unless the bucket already has it.
//! 2. Verify: the object is read back from the bucket (never from a cache) and
//!    its BLAKE3 compared with the local file's. Each verified pack is written
//!    to `ARCHIVE/migrate.state`, so an interrupted migration resumes where it
//!    stopped instead of copying or re-reading it again.
//! 3. Switch: only when every pack is verified is `[store]` written to
//!    reelfs.toml (a temporary file renamed over it). Until then the archive
//!    reads its local packs and nothing a user sees has changed; after it, the
//!    local packs are unused and left for the user to remove once satisfied.

use super::object::ObjectPackStore;
use super::StoreConfig;
use crate::archive::config::Config;
use crate::archive::error::{ArchiveError, IoContext, Result};
use crate::archive::pack_store::{self, PackStore};
use crate::archive::progress::{ProgressHandle, Unit};
use crate::archive::read_at::ReadAt;
use crate::archive::repo::Archive;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct MigrateReport {
    pub store: String,
    pub packs: u64,
    /// Packs uploaded by this run.
    pub copied: u64,
    pub bytes_copied: u64,
    /// Packs found verified by an earlier, interrupted run.
    pub resumed: u64,
    /// Packs the bucket already held (from an interrupted run) that this run verified.
    pub already_there: u64,
    /// The archive now reads its packs from the bucket.
    pub switched: bool,
}

fn stopped(root: &Path) -> ArchiveError {
    ArchiveError::Invalid(format!(
        "interrupted: {} still reads its local packs; run the same `reelfs store migrate` again to resume (packs verified so far are not copied again)",
        root.display()
    ))
}

const STATE: &str = "migrate.state";
const PIECE: usize = 8 << 20;

fn file_hash(src: &dyn ReadAt, len: u64, interrupt: &AtomicBool, progress: &ProgressHandle) -> std::io::Result<Option<blake3::Hash>> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; PIECE];
    let mut off = 0u64;
    while off < len {
        if interrupt.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = ((len - off) as usize).min(PIECE);
        src.read_exact_at(off, &mut buf[..n])?;
        h.update(&buf[..n]);
        off += n as u64;
        progress.advance(n as u64);
    }
    Ok(Some(h.finalize()))
}

pub fn migrate(root: &Path, sc: StoreConfig, interrupt: &AtomicBool, progress: &ProgressHandle) -> Result<MigrateReport> {
    let a = Archive::open_writer(root)?;
    if let Some(cur) = &a.config.store {
        return Err(ArchiveError::Invalid(format!("{} already keeps its packs in {}; nothing to migrate", root.display(), cur.url)));
    }
    let local = pack_store::local_store(root);
    // The bucket's own store, opened directly: not the shared one a later
    // `Archive::open` gets, whose config does not say S3 yet.
    let remote = ObjectPackStore::s3(root, &sc)?;
    remote.abort_interrupted()?;
    let packs = a.catalog.pack_names()?;
    let in_bucket: HashMap<String, ()> = remote
        .list()
        .map_err(|e| {
            ArchiveError::Invalid(format!("cannot use {}: {e}; check the bucket, --endpoint, --region and the AWS credentials", sc.url))
        })?
        .into_iter()
        .map(|n| (n, ()))
        .collect();
    let known: std::collections::HashSet<&str> = packs.iter().map(|p| p.1.as_str()).collect();
    if let Some(stranger) = in_bucket.keys().find(|n| !known.contains(n.as_str())) {
        return Err(ArchiveError::Invalid(format!(
            "{} holds {} which is not a pack of {}: choose an empty prefix",
            sc.url,
            stranger,
            root.display()
        )));
    }
    let state_path = root.join(STATE);
    // `NAME BLAKE3` per verified pack (the hash for whoever audits the move).
    let verified: HashMap<String, String> = std::fs::read_to_string(&state_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(n, h)| (n.to_string(), h.to_string())))
        .collect();
    let mut state = std::fs::OpenOptions::new().create(true).append(true).open(&state_path).at(&state_path)?;
    let mut rep = MigrateReport { store: sc.url.clone(), packs: packs.len() as u64, ..Default::default() };
    let total: u64 = packs.iter().map(|p| p.2).sum();
    progress.begin("migrate", Unit::Bytes, total * 2);
    for (_, name, size) in &packs {
        if interrupt.load(Ordering::Relaxed) {
            progress.finish();
            return Err(stopped(root));
        }
        progress.message(name);
        let src = local.open(name)?;
        let have = in_bucket.contains_key(name);
        if have && verified.contains_key(name) {
            rep.resumed += 1;
            progress.advance(size * 2);
            continue;
        }
        let want = file_hash(&*src, *size, interrupt, progress).at(local.locate(name))?;
        let Some(want) = want else { continue };
        if have && remote.size(name)? == Some(*size) {
            rep.already_there += 1;
        } else {
            if have {
                // A different object under the pack's name: replace it.
                remote.delete(name)?;
            }
            let mut up = remote.begin(name)?;
            let mut buf = vec![0u8; PIECE];
            let mut off = 0u64;
            while off < *size {
                if interrupt.load(Ordering::Relaxed) {
                    up.abort()?;
                    progress.finish();
                    return Err(stopped(root));
                }
                let n = ((size - off) as usize).min(PIECE);
                src.read_exact_at(off, &mut buf[..n]).at(local.locate(name))?;
                up.write(&buf[..n])?;
                off += n as u64;
            }
            up.seal()?;
            rep.copied += 1;
            rep.bytes_copied += size;
        }
        // Read it back from the bucket itself, past the local cache.
        remote.forget_cached(name);
        let obj = remote.open(name)?;
        let got = file_hash(&*obj, obj.len(), interrupt, progress).at(remote.locate(name))?;
        remote.forget_cached(name);
        let Some(got) = got else { continue };
        if obj.len() != *size || got != want {
            return Err(ArchiveError::BadPack {
                path: remote.locate(name).into(),
                msg: format!(
                    "read back from the bucket it differs from {} (BLAKE3 {} vs {}); run the migration again",
                    local.locate(name),
                    got.to_hex(),
                    want.to_hex()
                ),
            });
        }
        writeln!(state, "{name} {}", want.to_hex()).and_then(|_| state.sync_data()).at(&state_path)?;
    }
    if interrupt.load(Ordering::Relaxed) {
        progress.finish();
        return Err(stopped(root));
    }
    progress.finish();
    // Switch: reelfs.toml names the bucket from now on.
    let toml = root.join("reelfs.toml");
    let cfg = Config { store: Some(sc), ..Config::load(&toml)? };
    let text = cfg.to_toml().map_err(|msg| ArchiveError::Config { path: toml.clone(), msg })?;
    let tmp = root.join("reelfs.toml.tmp");
    std::fs::write(&tmp, text).and_then(|_| std::fs::File::open(&tmp)?.sync_all()).at(&tmp)?;
    std::fs::rename(&tmp, &toml).at(&toml)?;
    pack_store::fsync_dir(root)?;
    let _ = std::fs::remove_file(&state_path);
    rep.switched = true;
    drop(a);
    // Open and close as a writer on the bucket: that publishes the catalog
    // (snapshot.rs), so other hosts can `reelfs attach` at once. The
    // migration is done either way; a failure only delays that.
    match Archive::open_writer(root) {
        Ok(w) => drop(w),
        Err(e) => log::warn!("could not publish the catalog to {}: {e}; the next write from {} does", rep.store, root.display()),
    }
    Ok(rep)
}
