//! Restore files and folders byte-identical, with mode and mtime.
//!
//! Each file is written to a temporary name beside its destination and renamed
//! into place only after its whole-content BLAKE3 matches: a damaged chunk makes
//! the restore fail loudly and never leaves wrong bytes under the real name.

use super::error::{ArchiveError, IoContext, Result};
use super::objects::{EntryKind, Hash, TreeEntry};
use super::repo::Archive;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// How far ahead of the writer chunks are loaded (must fit the store's cache).
const READ_AHEAD: u64 = 32 << 20;

#[derive(Debug, Default, serde::Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub bytes: u64,
    pub failed: Vec<(String, String)>,
}

pub struct RestoreOptions<'a> {
    pub progress: bool,
    pub interrupt: &'a AtomicBool,
}

/// Restore `specs` (`BRANCH[@COMMIT]/PATH`) into `dest`. As with `cp -r`: if
/// `dest` is an existing folder each item goes inside it under its own name;
/// otherwise a single item is restored as `dest`.
pub fn restore(archive: &Archive, specs: &[String], dest: &Path, opts: &RestoreOptions) -> Result<RestoreReport> {
    let mut items = Vec::new();
    for s in specs {
        items.push(archive.resolve(s)?);
    }
    let into_dir = dest.is_dir();
    if !into_dir && items.len() > 1 {
        return Err(ArchiveError::Invalid(format!("{}: not a folder; to restore several items give an existing folder", dest.display())));
    }
    let mut plan: Vec<(TreeEntry, PathBuf)> = Vec::new();
    let mut dirs: Vec<(TreeEntry, PathBuf)> = Vec::new();
    for r in &items {
        let target = if into_dir { dest.join(&r.entry.name) } else { dest.to_path_buf() };
        collect(archive, &r.entry, &target, &mut plan, &mut dirs)?;
    }
    let total: u64 = plan.iter().map(|(e, _)| e.size).sum();
    let pb = opts.progress.then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} restore [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    for (_, d) in &dirs {
        std::fs::create_dir_all(d).at(d)?;
    }
    let mut rep = RestoreReport::default();
    for (e, target) in &plan {
        if opts.interrupt.load(Ordering::Relaxed) {
            return Err(ArchiveError::Interrupted);
        }
        if let Some(pb) = &pb {
            pb.set_message(target.display().to_string());
        }
        match restore_file(archive, e, target, pb.as_ref(), opts.interrupt) {
            Ok(()) => {
                rep.files += 1;
                rep.bytes += e.size;
            }
            Err(err) => rep.failed.push((target.display().to_string(), err.to_string())),
        }
    }
    // Folder mtimes last: creating files inside would otherwise bump them.
    for (e, d) in dirs.iter().rev() {
        set_mode_mtime(d, e)?;
    }
    // Everything restored is on disk before we report success.
    let anchor = if into_dir { dest.to_path_buf() } else { dest.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| ".".into()) };
    let anchor = if anchor.as_os_str().is_empty() { std::path::PathBuf::from(".") } else { anchor };
    let f = File::open(&anchor).at(&anchor)?;
    use std::os::unix::io::AsRawFd;
    // SAFETY: syncfs on an open descriptor of the destination filesystem.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(ArchiveError::Io { path: anchor, source: std::io::Error::last_os_error() });
    }
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    Ok(rep)
}

fn collect(archive: &Archive, e: &TreeEntry, target: &Path, plan: &mut Vec<(TreeEntry, PathBuf)>, dirs: &mut Vec<(TreeEntry, PathBuf)>) -> Result<()> {
    match e.kind {
        EntryKind::File => plan.push((e.clone(), target.to_path_buf())),
        EntryKind::Dir => {
            dirs.push((e.clone(), target.to_path_buf()));
            if e.size > 0 || archive.catalog.has_tree(&e.hash)? {
                for c in archive.list_dir(&e.hash)? {
                    collect(archive, &c, &target.join(&c.name), plan, dirs)?;
                }
            }
        }
    }
    Ok(())
}

fn set_mode_mtime(p: &Path, e: &TreeEntry) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if e.mode != 0 {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(e.mode)).at(p)?;
    }
    if e.mtime_ns != 0 {
        let t = filetime::FileTime::from_unix_time(e.mtime_ns.div_euclid(1_000_000_000), e.mtime_ns.rem_euclid(1_000_000_000) as u32);
        filetime::set_file_mtime(p, t).at(p)?;
    }
    Ok(())
}

fn restore_file(archive: &Archive, e: &TreeEntry, target: &Path, pb: Option<&indicatif::ProgressBar>, interrupt: &AtomicBool) -> Result<()> {
    let reader = std::sync::Arc::new(archive.blob_reader(&e.hash)?);
    let ra = reader.read_ahead(0, reader.size, READ_AHEAD);
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.reelfs-restore"));
    let result = (|| {
        let mut f = File::create(&tmp).at(&tmp)?;
        let mut hasher = super::content_hash::ContentHasher::new(reader.zero_run_bytes());
        let mut buf = vec![0u8; 8 << 20];
        let mut off = 0u64;
        while off < reader.size {
            if interrupt.load(Ordering::Relaxed) {
                return Err(ArchiveError::Interrupted);
            }
            ra.advance(off);
            // Zero runs become holes (seek), so a sparse file restores sparse.
            let n = match reader.read_piece(off, &mut buf)? {
                super::read::Piece::Data(0) => {
                    return Err(ArchiveError::Inconsistent(format!("{}: content ends early at {off}", target.display())));
                }
                super::read::Piece::Data(n) => {
                    hasher.data(&buf[..n]);
                    f.write_all(&buf[..n]).at(&tmp)?;
                    n as u64
                }
                super::read::Piece::Zeros(n) => {
                    hasher.zeros(n);
                    std::io::Seek::seek(&mut f, std::io::SeekFrom::Current(n as i64)).at(&tmp)?;
                    n
                }
            };
            off += n;
            if let Some(pb) = pb {
                pb.inc(n);
            }
        }
        f.set_len(reader.size).at(&tmp)?;
        if hasher.finalize() != e.hash {
            return Err(ArchiveError::Damaged {
                chunk: "(whole file)".into(),
                pack: "-".into(),
                offset: 0,
                what: format!("restored content of {} does not match its BLAKE3 {}", target.display(), e.hash),
            });
        }
        // Durability comes from one syncfs when the whole restore is done: a
        // per-file fsync would stall the stream once per file.
        drop(f);
        set_mode_mtime(&tmp, e)?;
        std::fs::rename(&tmp, target).at(target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Stream a file's bytes to a writer (for `reelfs cat`), verifying as it goes.
pub fn cat(archive: &Archive, hash: &Hash, out: &mut dyn Write) -> Result<u64> {
    let reader = std::sync::Arc::new(archive.blob_reader(hash)?);
    let ra = reader.read_ahead(0, reader.size, READ_AHEAD);
    let mut buf = vec![0u8; 4 << 20];
    let mut off = 0u64;
    while off < reader.size {
        ra.advance(off);
        let n = reader.read_at(off, &mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).at("<stdout>")?;
        off += n as u64;
    }
    Ok(off)
}
