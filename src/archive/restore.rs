//! Restore files and folders byte-identical, with mode and mtime.
//!
//! Each file is written under a temporary name in a private folder at the top of
//! the destination and renamed into place only after its whole-content BLAKE3
//! matches: a damaged chunk makes the restore fail loudly and never leaves wrong
//! bytes under the real name. See `restore` for how links in DEST are handled.

use super::dest;
use super::error::{ArchiveError, IoContext, Result};
use super::objects::{EntryKind, Hash, TreeEntry};
use super::repo::Archive;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// How far ahead of the writer chunks are loaded (must fit the store's cache).
const READ_AHEAD: u64 = 32 << 20;

#[derive(Debug, Default, serde::Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub bytes: u64,
    pub failed: Vec<(String, String)>,
    /// Symlinks, FIFOs, sockets and devices made.
    #[serde(default)]
    pub specials: u64,
    /// Names restored as hard links to a file restored before them.
    #[serde(default)]
    pub hard_links: u64,
    /// Entries left out on purpose, with why (device nodes when not root):
    /// warnings, not failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<(String, String)>,
}

pub struct RestoreOptions<'a> {
    /// Bytes written so far, and the file being written.
    pub progress: super::progress::ProgressHandle,
    pub interrupt: &'a AtomicBool,
}

/// Restore `specs` (`BRANCH[@COMMIT]/PATH`) into `dest`. As with `cp -r`: if
/// `dest` is an existing folder each item goes inside it under its own name;
/// otherwise a single item is restored as `dest`.
///
/// `dest` may be reached through links in its own path (the user typed it);
/// below it nothing is followed: folders are opened relative to their parent's
/// descriptor with O_NOFOLLOW (a link where a folder belongs is replaced by the
/// folder), and files are written in a private temporary folder at the top of the
/// destination under short fresh names, then renamed over their final names (a
/// link there is replaced, its target untouched). The temporary folder is
/// removed at the end, on error and on interrupt.
pub fn restore(archive: &Archive, specs: &[String], dest: &Path, opts: &RestoreOptions) -> Result<RestoreReport> {
    let mut items = Vec::new();
    for s in specs {
        items.push(archive.resolve(s)?);
    }
    let into_dir = dest.is_dir();
    if !into_dir && items.len() > 1 {
        return Err(ArchiveError::Invalid(format!("{}: not a folder; to restore several items give an existing folder", dest.display())));
    }
    let (base_path, single_name) = if into_dir {
        (dest.to_path_buf(), None)
    } else {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| ArchiveError::Invalid(format!("{}: give a folder, or a file name to restore one item as", dest.display())))?;
        (dest.parent().map(Path::to_path_buf).unwrap_or_default(), Some(name))
    };
    let mut trees = Vec::new();
    for r in &items {
        let name = single_name.clone().unwrap_or_else(|| r.entry.name.clone());
        dest::check_component(&name)?;
        trees.push((name, collect(archive, &r.entry)?));
    }
    let base = dest::OutDir::create(archive.root(), &base_path)?;
    let total: u64 = trees.iter().map(|(_, n)| n.bytes()).sum();
    opts.progress.begin("restore", super::progress::Unit::Bytes, total);
    let tmp = TempFolder::create(&base)?;
    let mut ctx = Ctx {
        archive,
        tmp: &tmp,
        pb: &opts.progress,
        interrupt: opts.interrupt,
        rep: RestoreReport::default(),
        link_groups: Default::default(),
    };
    for (name, node) in &trees {
        if let Err(e) = restore_node(&mut ctx, base.fd(), &base_path, name, node) {
            opts.progress.finish();
            return Err(e);
        }
    }
    let rep = std::mem::take(&mut ctx.rep);
    drop(tmp);
    // Everything restored is on disk before we report success.
    rustix::fs::syncfs(base.fd()).map_err(|e| ArchiveError::Io { path: base_path.clone(), source: e.into() })?;
    opts.progress.finish();
    Ok(rep)
}

/// An archived entry and, for a folder, what it holds.
struct Node {
    entry: TreeEntry,
    children: Vec<Node>,
}

impl Node {
    fn bytes(&self) -> u64 {
        match self.entry.kind {
            EntryKind::File => self.entry.size,
            EntryKind::Dir => self.children.iter().map(Node::bytes).sum(),
            _ => 0,
        }
    }
}

fn collect(archive: &Archive, e: &TreeEntry) -> Result<Node> {
    let mut children = Vec::new();
    if e.kind == EntryKind::Dir && (e.size > 0 || archive.catalog.has_tree(&e.hash)?) {
        for c in archive.list_dir(&e.hash)? {
            // A name is one path component; a crafted catalog must not reach
            // outside the folder it is restored into.
            dest::check_component(&c.name)?;
            children.push(collect(archive, &c)?);
        }
    }
    Ok(Node { entry: e.clone(), children })
}

/// The private folder (0700) that files are written into before their rename.
struct TempFolder<'a> {
    parent: &'a dest::OutDir,
    name: String,
    fd: OwnedFd,
    /// Files in it now, removed if the restore stops before renaming them.
    live: std::cell::RefCell<Vec<String>>,
}

impl<'a> TempFolder<'a> {
    fn create(parent: &'a dest::OutDir) -> Result<TempFolder<'a>> {
        for _ in 0..64 {
            let name = dest::fresh_name(".reelfs-restore-");
            match rustix::fs::mkdirat(parent.fd(), name.as_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) => {
                    let fd = rustix::fs::openat(
                        parent.fd(),
                        name.as_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| io_err(&parent.path().join(&name), e))?;
                    return Ok(TempFolder { parent, name, fd, live: Default::default() });
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_err(&parent.path().join(&name), e)),
            }
        }
        Err(ArchiveError::Invalid(format!("{}: cannot find a free temporary folder name", parent.path().display())))
    }

    fn path(&self) -> PathBuf {
        self.parent.path().join(&self.name)
    }
}

impl Drop for TempFolder<'_> {
    fn drop(&mut self) {
        for n in self.live.borrow().iter() {
            let _ = rustix::fs::unlinkat(&self.fd, n.as_str(), AtFlags::empty());
        }
        let _ = rustix::fs::unlinkat(self.parent.fd(), self.name.as_str(), AtFlags::REMOVEDIR);
    }
}

struct Ctx<'a> {
    archive: &'a Archive,
    tmp: &'a TempFolder<'a>,
    pb: &'a super::progress::ProgressHandle,
    interrupt: &'a AtomicBool,
    rep: RestoreReport,
    /// Hard-link groups restored so far: the name of an extra link to the
    /// group's file kept in the temporary folder, so the group's other names
    /// are linked to it there (by descriptor, never through a path that a
    /// link could redirect) and renamed into place.
    link_groups: std::collections::HashMap<u64, String>,
}

fn io_err(path: &Path, e: Errno) -> ArchiveError {
    ArchiveError::Io { path: path.into(), source: e.into() }
}

/// Restore `node` as `name` in the folder open at `parent` (shown as `parent_path`).
fn restore_node(ctx: &mut Ctx, parent: BorrowedFd<'_>, parent_path: &Path, name: &str, node: &Node) -> Result<()> {
    if ctx.interrupt.load(Ordering::Relaxed) {
        return Err(ArchiveError::Interrupted);
    }
    let path = parent_path.join(name);
    match node.entry.kind {
        EntryKind::File => {
            ctx.pb.message(&path.display().to_string());
            let kept = node.entry.extra.link_group.and_then(|g| ctx.link_groups.get(&g).cloned());
            let done = match kept {
                Some(kept) => link_into_place(ctx, &kept, parent, name, &path),
                None => restore_file(ctx, &node.entry, parent, name, &path),
            };
            match done {
                Ok(()) => {
                    ctx.rep.files += 1;
                    ctx.rep.bytes += node.entry.size;
                }
                Err(ArchiveError::Interrupted) => return Err(ArchiveError::Interrupted),
                Err(err) => ctx.rep.failed.push((path.display().to_string(), err.to_string())),
            }
        }
        EntryKind::Symlink | EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDevice | EntryKind::BlockDevice => {
            match restore_special(ctx, &node.entry, parent, name, &path) {
                Ok(true) => ctx.rep.specials += 1,
                Ok(false) => {}
                Err(err) => ctx.rep.failed.push((path.display().to_string(), err.to_string())),
            }
        }
        EntryKind::Dir => {
            let dir = open_or_make_dir(parent, name, &path)?;
            for c in &node.children {
                restore_node(ctx, dir.as_fd(), &path, &c.entry.name, c)?;
            }
            // Folder mode and mtime last: creating files inside would bump the mtime,
            // and a read-only mode would stop us creating them.
            if let Some(x) = &node.entry.extra.xattrs {
                if let Err(why) = super::xattrs::apply(dir.as_fd(), x) {
                    ctx.rep.skipped.push((path.display().to_string(), why));
                }
            }
            set_mode_mtime(dir.as_fd(), &node.entry, &path)?;
        }
    }
    Ok(())
}

/// Open folder `name` of `parent` without following a link; create it if absent.
/// A link (or a dangling one) planted where the folder belongs is removed and a
/// real folder made: its target is never entered or changed.
fn open_or_make_dir(parent: BorrowedFd<'_>, name: &str, path: &Path) -> Result<OwnedFd> {
    let open = || rustix::fs::openat(parent, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty());
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(io_err(path, e)),
    }
    match open() {
        Ok(fd) => Ok(fd),
        Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
            let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err(path, e))?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Symlink {
                return Err(ArchiveError::Invalid(format!(
                    "{}: a file is in the way of a folder being restored; move it and restore again",
                    path.display()
                )));
            }
            log::info!("{}: replacing a symbolic link with the restored folder", path.display());
            rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(|e| io_err(path, e))?;
            rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)).map_err(|e| io_err(path, e))?;
            open().map_err(|e| io_err(path, e))
        }
        Err(e) => Err(io_err(path, e)),
    }
}

fn set_mode_mtime(fd: BorrowedFd<'_>, e: &TreeEntry, path: &Path) -> Result<()> {
    // Owner before mode: a chown clears setuid/setgid, which the mode then sets.
    set_owner(fd, e, path)?;
    if e.mode != 0 {
        rustix::fs::fchmod(fd, Mode::from_raw_mode(e.mode & 0o7777)).map_err(|err| io_err(path, err))?;
    }
    if e.mtime_ns != 0 {
        let times = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
            last_modification: rustix::fs::Timespec {
                tv_sec: e.mtime_ns.div_euclid(1_000_000_000),
                tv_nsec: e.mtime_ns.rem_euclid(1_000_000_000) as _,
            },
        };
        rustix::fs::futimens(fd, &times).map_err(|err| io_err(path, err))?;
    }
    Ok(())
}

/// As root, give the restored file or folder its recorded owner and group, by
/// number (tar's `--numeric-owner`: names differ between machines, ids are what
/// the archive saw). Anyone else cannot give files away, so what they restore
/// stays theirs, as with tar run by a user; an entry without a recorded owner
/// (archived before owners were kept) also stays the restoring user's.
fn set_owner(fd: BorrowedFd<'_>, e: &TreeEntry, path: &Path) -> Result<()> {
    let Some(o) = e.owner else { return Ok(()) };
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(o.uid)), Some(rustix::fs::Gid::from_raw(o.gid))).map_err(|err| io_err(path, err))
}

/// Make a symlink, FIFO, socket or device node as `name` in `parent`: created
/// under a fresh name in the temporary folder, given its owner and times there
/// without following it, then renamed over `name` (whatever was there, a link
/// included, is replaced; nothing is ever written through a link). A symlink is
/// made with its stored target as given, pointing wherever that is: it is never
/// followed, then or later in the restore (folders are opened O_NOFOLLOW). Device
/// nodes need root (mknod); anyone else gets a warning and the entry is skipped.
/// Returns whether the entry was made.
fn restore_special(ctx: &mut Ctx, e: &TreeEntry, parent: BorrowedFd<'_>, name: &str, target: &Path) -> Result<bool> {
    use rustix::fs::FileType;
    let is_device = matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice);
    // SAFETY: geteuid has no preconditions and cannot fail.
    if is_device && unsafe { libc::geteuid() } != 0 {
        ctx.rep.skipped.push((
            target.display().to_string(),
            format!("{} not restored: only root can make device nodes; restore as root to get it", e.kind.word()),
        ));
        return Ok(false);
    }
    let tmp_dir = ctx.tmp;
    let tmp = dest::fresh_name("s");
    let tmp_path = tmp_dir.path().join(&tmp);
    let perm = Mode::from_raw_mode(e.mode & 0o7777);
    let made = match e.kind {
        EntryKind::Symlink => {
            let link = e
                .extra
                .target
                .as_deref()
                .ok_or_else(|| ArchiveError::Inconsistent(format!("{}: symlink without a target", target.display())))?;
            rustix::fs::symlinkat(link, &tmp_dir.fd, tmp.as_str())
        }
        EntryKind::Fifo => rustix::fs::mknodat(&tmp_dir.fd, tmp.as_str(), FileType::Fifo, perm, 0),
        EntryKind::Socket => rustix::fs::mknodat(&tmp_dir.fd, tmp.as_str(), FileType::Socket, perm, 0),
        _ => {
            let d = e.extra.rdev.ok_or_else(|| ArchiveError::Inconsistent(format!("{}: device without numbers", target.display())))?;
            let ft = if e.kind == EntryKind::CharDevice { FileType::CharacterDevice } else { FileType::BlockDevice };
            rustix::fs::mknodat(&tmp_dir.fd, tmp.as_str(), ft, perm, rustix::fs::makedev(d.major, d.minor))
        }
    };
    made.map_err(|err| io_err(target, err))?;
    tmp_dir.live.borrow_mut().push(tmp.clone());
    let result = (|| {
        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if let (Some(o), 0) = (e.owner, unsafe { libc::geteuid() }) {
            rustix::fs::chownat(
                &tmp_dir.fd,
                tmp.as_str(),
                Some(rustix::fs::Uid::from_raw(o.uid)),
                Some(rustix::fs::Gid::from_raw(o.gid)),
                nofollow,
            )
            .map_err(|err| io_err(&tmp_path, err))?;
        }
        if e.kind != EntryKind::Symlink && e.mode != 0 {
            // mknod applied the umask; the archived mode is what the source had.
            rustix::fs::chmodat(&tmp_dir.fd, tmp.as_str(), perm, AtFlags::empty()).map_err(|err| io_err(&tmp_path, err))?;
        }
        if e.mtime_ns != 0 {
            let times = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
                last_modification: rustix::fs::Timespec {
                    tv_sec: e.mtime_ns.div_euclid(1_000_000_000),
                    tv_nsec: e.mtime_ns.rem_euclid(1_000_000_000) as _,
                },
            };
            rustix::fs::utimensat(&tmp_dir.fd, tmp.as_str(), &times, nofollow).map_err(|err| io_err(&tmp_path, err))?;
        }
        rename_into_place(tmp_dir, &tmp, parent, name, target)
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&tmp_dir.fd, tmp.as_str(), AtFlags::empty());
    }
    tmp_dir.live.borrow_mut().retain(|n| n != &tmp);
    result.map(|()| true)
}

/// Another name of a hard-link group whose file is already restored: a new
/// link to it (made in the temporary folder from the link kept there), renamed
/// over `name`.
fn link_into_place(ctx: &mut Ctx, kept: &str, parent: BorrowedFd<'_>, name: &str, target: &Path) -> Result<()> {
    let tmp_dir = ctx.tmp;
    let tmp = dest::fresh_name("h");
    rustix::fs::linkat(&tmp_dir.fd, kept, &tmp_dir.fd, tmp.as_str(), AtFlags::empty()).map_err(|err| io_err(target, err))?;
    tmp_dir.live.borrow_mut().push(tmp.clone());
    let result = rename_into_place(tmp_dir, &tmp, parent, name, target);
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&tmp_dir.fd, tmp.as_str(), AtFlags::empty());
    }
    tmp_dir.live.borrow_mut().retain(|n| n != &tmp);
    if result.is_ok() {
        ctx.rep.hard_links += 1;
    }
    result
}

/// Rename `tmp` (in the temporary folder) over `name` in `parent`.
fn rename_into_place(tmp_dir: &TempFolder, tmp: &str, parent: BorrowedFd<'_>, name: &str, target: &Path) -> Result<()> {
    rustix::fs::renameat(&tmp_dir.fd, tmp, parent, name).map_err(|err| match err {
        Errno::XDEV => ArchiveError::Invalid(format!(
            "{}: its folder is on another filesystem than {} (a mount point inside the destination); restore that folder separately",
            target.display(),
            tmp_dir.parent.path().display()
        )),
        Errno::ISDIR => ArchiveError::Invalid(format!(
            "{}: a folder is in the way of a file being restored; move it and restore again",
            target.display()
        )),
        err => io_err(target, err),
    })
}

fn restore_file(ctx: &mut Ctx, e: &TreeEntry, parent: BorrowedFd<'_>, name: &str, target: &Path) -> Result<()> {
    let reader = std::sync::Arc::new(ctx.archive.blob_reader(&e.hash)?);
    // With the file's outboard every byte is hashed once, against it; without
    // one (one block, layout ids, version-1 archives) each chunk is verified
    // against its id and the whole file hashed again.
    let file_cvs = super::block_copy::checked_file_outboard(&ctx.archive.catalog, &e.hash, reader.size)?;
    let tmp_dir = ctx.tmp;
    let (tmp, mut f) = dest::create_temp_in(tmp_dir.fd.as_fd(), &tmp_dir.path(), "")?;
    tmp_dir.live.borrow_mut().push(tmp.clone());
    let tmp_path = tmp_dir.path().join(&tmp);
    let xattr_warning = std::cell::Cell::new(None);
    let result = (|| {
        match &file_cvs {
            Some(cvs) => {
                let pb = ctx.pb;
                super::block_copy::copy_checked(&reader, &ctx.archive.catalog, cvs, &f, &tmp_path, target, ctx.interrupt, &mut |n| {
                    pb.advance(n)
                })?;
            }
            None => copy_verifying_chunks(ctx, &reader, &mut f, &tmp_path, target)?,
        }
        // Durability comes from one syncfs when the whole restore is done: a
        // per-file fsync would stall the stream once per file.
        let mode = if e.mode != 0 { e.mode } else { 0o644 };
        // Attributes before the mode: a read-only mode must not stop them.
        if let Some(x) = &e.extra.xattrs {
            if let Err(why) = super::xattrs::apply(f.as_fd(), x) {
                xattr_warning.set(Some(why));
            }
        }
        set_mode_mtime(f.as_fd(), &TreeEntry { mode, ..e.clone() }, target)?;
        drop(f);
        // The first name of a hard-link group: keep one more link to the file in
        // the temporary folder for the group's other names (removed at the end).
        let keep = match e.extra.link_group {
            Some(g) => {
                let kept = dest::fresh_name("g");
                rustix::fs::linkat(&tmp_dir.fd, tmp.as_str(), &tmp_dir.fd, kept.as_str(), AtFlags::empty())
                    .map_err(|err| io_err(target, err))?;
                tmp_dir.live.borrow_mut().push(kept.clone());
                Some((g, kept))
            }
            None => None,
        };
        rename_into_place(tmp_dir, &tmp, parent, name, target)?;
        Ok(keep)
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&tmp_dir.fd, tmp.as_str(), AtFlags::empty());
    }
    tmp_dir.live.borrow_mut().retain(|n| n != &tmp);
    if let Ok(Some((g, kept))) = &result {
        ctx.link_groups.insert(*g, kept.clone());
    }
    if let Some(why) = xattr_warning.take() {
        ctx.rep.skipped.push((target.display().to_string(), why));
    }
    result.map(|_| ())
}

/// Write `reader`'s bytes to `f` (an empty file), each chunk verified against
/// its id as it is loaded and the whole file hashed again against its id:
/// the path for files without an outboard.
fn copy_verifying_chunks(
    ctx: &Ctx,
    reader: &std::sync::Arc<super::BlobReader>,
    f: &mut std::fs::File,
    tmp_path: &Path,
    target: &Path,
) -> Result<()> {
    let ra = reader.read_ahead_for_copy(0, reader.size, READ_AHEAD);
    let mut hasher = super::content_hash::ContentHasher::new(reader.zero_run_bytes());
    let mut buf = vec![0u8; 8 << 20];
    let mut off = 0u64;
    while off < reader.size {
        if ctx.interrupt.load(Ordering::Relaxed) {
            return Err(ArchiveError::Interrupted);
        }
        ra.advance(off);
        // Stored raw data is copied inside the kernel from the pack (hashed
        // from the verified chunk); the rest is read and written below.
        let copied = reader.copy_data_to(off, buf.len() as u64, f, &mut |b| hasher.data(b))?;
        if copied > 0 {
            off += copied;
            ctx.pb.advance(copied);
            continue;
        }
        // Zero runs become holes (seek), so a sparse file restores sparse.
        let n = match reader.read_piece(off, &mut buf)? {
            super::read::Piece::Data(0) => {
                return Err(ArchiveError::Inconsistent(format!("{}: content ends early at {off}", target.display())));
            }
            super::read::Piece::Data(n) => {
                hasher.data(&buf[..n]);
                f.write_all(&buf[..n]).at(tmp_path)?;
                n as u64
            }
            super::read::Piece::Zeros(n) => {
                hasher.zeros(n);
                std::io::Seek::seek(f, std::io::SeekFrom::Current(n as i64)).at(tmp_path)?;
                n
            }
        };
        off += n;
        ctx.pb.advance(n);
    }
    f.set_len(reader.size).at(tmp_path)?;
    if hasher.finalize() != reader.hash {
        return Err(ArchiveError::Damaged {
            chunk: "(whole file)".into(),
            pack: "-".into(),
            offset: 0,
            what: format!("restored content of {} does not match its BLAKE3 {}", target.display(), reader.hash),
        });
    }
    Ok(())
}

/// Stream a file's bytes to a writer (for `reelfs cat`), verifying as it goes.
pub fn cat(archive: &Archive, hash: &Hash, out: &mut dyn Write) -> Result<u64> {
    copy_to(std::sync::Arc::new(archive.blob_reader(hash)?), out)
}

/// Stream a reader's bytes (committed or staged) to a writer with read-ahead,
/// verifying as it goes.
pub fn copy_to(reader: std::sync::Arc<super::BlobReader>, out: &mut dyn Write) -> Result<u64> {
    let ra = reader.read_ahead(0, reader.size, READ_AHEAD);
    // Each stored extent is written straight from its verified chunk's memory
    // (lent by the store's cache, which the read-ahead fills): no copy into a
    // buffer of our own. Zero runs are written from one buffer of zeros.
    let zeros = vec![0u8; 1 << 20];
    let mut off = 0u64;
    for re in reader.extents() {
        let e = &re.extent;
        let end = e.end().min(reader.size);
        if end <= off {
            continue;
        }
        if e.file_offset > off {
            return Err(ArchiveError::Inconsistent(format!("blob {} has a gap at offset {off}", reader.hash.short())));
        }
        ra.advance(off);
        let len = end - off;
        if e.is_zero_run() {
            let mut left = len;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                out.write_all(&zeros[..n]).at("<stdout>")?;
                left -= n as u64;
            }
        } else {
            let chunk = reader.store().chunk(&e.chunk, &re.loc)?;
            let start = (e.chunk_offset + (off - e.file_offset)) as usize;
            let Some(bytes) = chunk.get(start..start + len as usize) else {
                return Err(ArchiveError::Inconsistent(format!("extent past the end of chunk {}", e.chunk.short())));
            };
            out.write_all(bytes).at("<stdout>")?;
        }
        off = end;
    }
    if off < reader.size {
        return Err(ArchiveError::Inconsistent(format!("blob {} ends early at {off}", reader.hash.short())));
    }
    Ok(off)
}
