//! Proxies in the archive: rendered files stored as ordinary blobs (chunks in
//! packs, through the ingest pipeline), indexed by the `proxies` table under the
//! source's content hash, the profile and its settings version, and recorded in
//! the pack as `RecordKind::Proxy` so a rebuilt catalog keeps them.
//!
//! The archive layer knows nothing of rendering: `media::proxy` renders into a
//! folder under `ARCHIVE/cache/`, and `store` makes the result visible in one
//! catalog commit, after the packs holding it are fsynced.

use super::error::{IoContext, Result};
use super::ingest::store_local_files;
use super::objects::{DamagedRange, EntryKind, Hash, ProxyRecord, RecordKind, TreeEntry};
use super::repo::Archive;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// One rendered rung, waiting in a temporary folder to be stored.
#[derive(Debug, Clone)]
pub struct RenderedProxy {
    pub profile: String,
    pub settings_version: i64,
    pub path: PathBuf,
    pub partial_at: Option<i64>,
    pub note: String,
    /// Frames that show the last good picture (a damaged source sample).
    pub damaged: Vec<DamagedRange>,
}

/// Store the rungs rendered for `source` in one commit. Each becomes a blob, a
/// Proxy record in the same packs, and a `proxies` row.
pub fn store(archive: &mut Archive, source: &Hash, rungs: &[RenderedProxy], interrupt: Arc<AtomicBool>) -> Result<Vec<ProxyRecord>> {
    if rungs.is_empty() {
        return Ok(Vec::new());
    }
    let paths: Vec<PathBuf> = rungs.iter().map(|r| r.path.clone()).collect();
    store_local_files(archive, &paths, interrupt, |sink, stored| {
        let mut out = Vec::with_capacity(rungs.len());
        for (r, (blob, _size)) in rungs.iter().zip(stored) {
            let rec = ProxyRecord {
                source: *source,
                profile: r.profile.clone(),
                settings_version: r.settings_version,
                blob: *blob,
                partial_at: r.partial_at,
                note: r.note.clone(),
                damaged: r.damaged.clone(),
            };
            sink.append(RecordKind::Proxy, &serde_json::to_vec(&rec).unwrap_or_default())?;
            sink.catalog().set_proxy(&rec)?;
            out.push(rec);
        }
        Ok(out)
    })
}

/// A fresh folder under `ARCHIVE/cache/proxy-render/` for one render. Leftovers
/// from an interrupted render are removed by `clean_render_dirs`.
pub fn render_dir(archive_root: &Path, source: &Hash) -> Result<PathBuf> {
    let base = archive_root.join("cache").join("proxy-render");
    let dir = base.join(format!("{}-{}-{}", source.short(), std::process::id(), super::objects::now_ns()));
    std::fs::create_dir_all(&dir).at(&dir)?;
    Ok(dir)
}

/// Remove render folders left by killed runs (call under the writer lock, or when
/// no other proxy worker runs: folders of live processes are kept).
pub fn clean_render_dirs(archive_root: &Path) {
    let base = archive_root.join("cache").join("proxy-render");
    let Ok(rd) = std::fs::read_dir(&base) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok());
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = pid.is_some_and(|p| p == std::process::id() as i32 || unsafe { libc::kill(p, 0) } == 0);
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Files below `BRANCH[@COMMIT][/PATH]` (or the file it names), with their
/// paths `BRANCH/…`. Sorted by path.
pub fn files_below(archive: &Archive, spec: &str) -> Result<Vec<(String, TreeEntry)>> {
    let r = archive.resolve(spec)?;
    let base = if r.path.is_empty() { r.branch.clone() } else { format!("{}/{}", r.branch, r.path) };
    let mut out = Vec::new();
    match r.entry.kind {
        EntryKind::File => out.push((base, r.entry)),
        EntryKind::Dir if r.commit.is_some() => walk(archive, &r.entry.hash, &base, &mut out)?,
        // An empty branch has nothing; a link is never followed to a file to
        // render (it has no picture of its own).
        _ => {}
    }
    Ok(out)
}

fn walk(archive: &Archive, tree: &Hash, prefix: &str, out: &mut Vec<(String, TreeEntry)>) -> Result<()> {
    for e in archive.list_dir(tree)? {
        let p = format!("{prefix}/{}", e.name);
        match e.kind {
            EntryKind::File => out.push((p, e)),
            EntryKind::Dir => walk(archive, &e.hash, &p, out)?,
            _ => {}
        }
    }
    Ok(())
}

/// Every file on every branch head.
pub fn all_files(archive: &Archive) -> Result<Vec<(String, TreeEntry)>> {
    let mut out = Vec::new();
    for (name, head) in archive.branches()? {
        if head.is_some() {
            out.extend(files_below(archive, &name)?);
        }
    }
    Ok(out)
}

/// The mount's and `info`'s name for a proxy: the source's stem plus the rung's
/// extension (`A001C003.mov` -> `.proxy/editorial/A001C003.mov`).
pub fn proxy_file_name(source_name: &str, ext: &str) -> String {
    let stem = match source_name.rfind('.') {
        Some(i) if i > 0 => &source_name[..i],
        _ => source_name,
    };
    format!("{stem}.{ext}")
}
