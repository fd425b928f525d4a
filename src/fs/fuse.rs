//! The FUSE adapter: translates `fuser` calls into `FsCore` calls and errors
//! into errno. No filesystem logic lives here.

use super::core::{Attr, FsCore, FsError, NodeType};
use super::owners::Caller;
use super::write::Falloc;
use crate::archive::objects::DeviceNumber;
use crate::archive::EntryKind;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner, OpenAccMode, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr, Request,
};
use std::ffi::OsStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Names can change when a branch gets a new commit, so entries and attributes
/// are cached by the kernel for a second; archived file contents never change
/// behind an inode, so their pages are kept across opens (FOPEN_KEEP_CACHE; a
/// branch file being written drops its cache on open, see `open`).
const TTL: Duration = Duration::from_secs(1);

/// `st_blksize` of every node (see `attr`).
const PREFERRED_IO_SIZE: u32 = 16 << 20;

pub struct FuseAdapter {
    pub core: FsCore,
    uid: u32,
    gid: u32,
    /// Ask the kernel for writeback caching at INIT (see `init`).
    writeback: bool,
}

impl FuseAdapter {
    pub fn new(core: FsCore) -> FuseAdapter {
        // SAFETY: trivial libc getters.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        FuseAdapter { core, uid, gid, writeback: false }
    }

    /// How a handle of a branch file opened with `mode` is cached. A write-only
    /// one skips the page cache (FOPEN_DIRECT_IO): otherwise the kernel copies
    /// every write(2) into page-cache pages in the writer's own thread before
    /// each round trip, and with nothing reading those pages back through it
    /// that copy is half the kernel time of a `cp` into the mount. No reader
    /// can depend on them: a write-only descriptor can be neither read nor
    /// mapped. Other handles stay right: the kernel drops their cached pages
    /// of each range a direct handle writes, and what they then read from the
    /// daemon is the writer's content (fs/followers.rs). With writeback caching
    /// on, writes are meant to land in the page cache, so every handle keeps it.
    fn write_only(&self, mode: OpenAccMode) -> FopenFlags {
        if mode == OpenAccMode::O_WRONLY && !self.writeback {
            FopenFlags::FOPEN_DIRECT_IO
        } else {
            FopenFlags::empty()
        }
    }

    /// Ask the kernel to cache writes (FUSE_WRITEBACK_CACHE) when it can.
    pub fn with_writeback(mut self, on: bool) -> FuseAdapter {
        self.writeback = on;
        self
    }

    /// The kernel was handed a new entry (create, mkdir): one reference.
    fn remember(&self, ino: u64) {
        if !self.core.remember(ino) {
            log::warn!("inode {ino} was dropped before the kernel got it; it will be looked up again");
        }
    }

    fn attr(&self, a: &Attr) -> FileAttr {
        let t = if a.mtime_ns >= 0 { UNIX_EPOCH + Duration::from_nanos(a.mtime_ns as u64) } else { UNIX_EPOCH };
        let ctime = if a.ctime_ns >= 0 { UNIX_EPOCH + Duration::from_nanos(a.ctime_ns as u64) } else { UNIX_EPOCH };
        let atime = match self.core.atime_ns(a.ino) {
            Some(ns) => time_of(ns),
            None => t,
        };
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime,
            mtime: t,
            ctime,
            crtime: t,
            kind: file_type(a.kind),
            // The mode as archived, so `cp -a`/`rsync -a` copies match the
            // originals. Permission bits do not decide writability: archived
            // files, slices, proxies and every node of a --read-only mount
            // answer writes with EROFS; only branch files and folders change.
            perm: (a.mode & 0o7777) as u16,
            nlink: a.nlink,
            // The archived owner; entries archived before owners were recorded
            // show as the mount's user, as everything did then.
            uid: a.owner.map_or(self.uid, |o| o.uid),
            gid: a.owner.map_or(self.gid, |o| o.gid),
            rdev: a.kind.rdev(),
            // The preferred I/O size `cp`, `cat` and friends size their
            // buffers by. Each write(2) into the mount costs a round trip to
            // the daemon for `security.capability` besides its 1 MiB requests
            // (the kernel strips privileges per write(2)), and each round
            // trip is two wake-ups that wait behind other work on a busy
            // machine: 16 MiB writes make that one round trip per 16 MiB, not
            // one per MiB (strace of `cp` into the mount: 2,048 getxattr
            // requests for 2 GiB at 1 MiB).
            blksize: PREFERRED_IO_SIZE,
            flags: 0,
        }
    }
}

fn errno(e: &FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::NotDir => Errno::ENOTDIR,
        FsError::IsDir => Errno::EISDIR,
        FsError::ReadOnly => Errno::EROFS,
        FsError::NoAttr => Errno::NO_XATTR,
        FsError::BadHandle => Errno::EBADF,
        FsError::NoSpace(_) => Errno::ENOSPC,
        FsError::Io(_) => Errno::EIO,
        FsError::Exists => Errno::EEXIST,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::CrossDevice => Errno::EXDEV,
        FsError::Invalid => Errno::EINVAL,
        FsError::TooBig => Errno::EFBIG,
        FsError::NameTooLong => Errno::ENAMETOOLONG,
        FsError::NotSupported => Errno::EOPNOTSUPP,
        FsError::NotPermitted => Errno::EPERM,
        FsError::XattrRange => Errno::ERANGE,
        FsError::XattrTooBig => Errno::E2BIG,
    }
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Ask for the largest reads the kernel allows and many requests in flight:
        // each FUSE read is a round trip, so fewer, bigger, parallel ones win.
        let _ = config.set_max_readahead(1 << 20).or_else(|max| config.set_max_readahead(max));
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        if self.writeback {
            // Without writeback caching every write(2) waits for its own round
            // trip to the daemon (two wake-ups per MiB each way, which on a busy
            // machine wait behind other work: `perf sched` showed `cp` into the
            // mount bound by them, not by CPU or disk). With it, write(2) fills
            // the page cache and the kernel sends dirty pages in the largest
            // requests it allows (max_pages: 1 MiB here), many in flight.
            // What the kernel then owns is answered where it matters: it keeps
            // size and mtime/ctime between flushes and sends them in a setattr;
            // it may READ through a handle opened O_WRONLY (branch write handles
            // read through their buffer); it does O_APPEND itself with its own
            // size (the daemon writes at the offset it is given); close and
            // fsync write the dirty pages back first, so "durable when close or
            // fsync returns" holds; permissions stay `default_permissions`.
            match config.add_capabilities(fuser::InitFlags::FUSE_WRITEBACK_CACHE) {
                Ok(()) => log::debug!("kernel writeback caching on"),
                Err(_) => log::info!("the kernel offers no writeback caching; every write goes to the daemon"),
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str() else { return reply.error(Errno::ENOENT) };
        // Counted: the kernel holds the inode until it sends `forget`.
        match self.core.lookup_ref(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &self.attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// Also serves BATCH_FORGET: fuser's default `batch_forget` calls this
    /// once per inode (its `ForgetOne` type is not exported to override it).
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.core.stat(ino.0) {
            Ok(a) => reply.attr(&TTL, &self.attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let truncate = (flags.0 & libc::O_TRUNC) != 0;
        // Archived content never changes behind an inode, so its pages are kept;
        // a branch file may be rewritten, so its cache is dropped on open.
        let keep = match self.core.getattr(ino.0) {
            Ok(_) => !self.core.is_mutable(ino.0),
            Err(e) => return reply.error(errno(&e)),
        };
        let cache = if keep { FopenFlags::FOPEN_KEEP_CACHE } else { self.write_only(flags.acc_mode()) };
        match self.core.open_with(ino.0, write, truncate) {
            Ok(fh) => reply.opened(FileHandle(fh), cache),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.core.read_buf(fh.0, offset, size) {
            Ok(data) => {
                reply.data(&data);
                data.recycle();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        match self.core.release(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// close(): written data becomes durable here, so a full disk is reported
    /// to the writer's close() rather than lost.
    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock: LockOwner, reply: ReplyEmpty) {
        match self.core.fsync_fh(fh.0) {
            Ok(()) => reply.ok(),
            Err(FsError::BadHandle) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.core.fsync_fh(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        match self.core.write_fh(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn create(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, flags: i32, reply: fuser::ReplyCreate) {
        let Some(name) = name.to_str() else { return reply.error(Errno::EINVAL) };
        match self.core.create_open_as(parent.0, name, mode & !umask, Some(&caller(req))) {
            Ok((a, fh)) => {
                self.remember(a.ino);
                reply.created(&TTL, &self.attr(&a), Generation(0), FileHandle(fh), self.write_only(OpenFlags(flags).acc_mode()))
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let Some(name) = name.to_str() else { return reply.error(Errno::EINVAL) };
        match self.core.mkdir_as(parent.0, name, mode & !umask, Some(&caller(req))) {
            Ok(a) => {
                self.remember(a.ino);
                reply.entry(&TTL, &self.attr(&a), Generation(0))
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &std::path::Path, reply: ReplyEntry) {
        let Some(name) = link_name.to_str() else { return reply.error(Errno::EINVAL) };
        // Targets are kept as UTF-8 text in the tree, like names.
        let Some(target) = target.to_str() else { return reply.error(Errno::EINVAL) };
        match self.core.symlink_as(parent.0, name, target, Some(&caller(req))) {
            Ok(a) => {
                self.remember(a.ino);
                reply.entry(&TTL, &self.attr(&a), Generation(0))
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.core.readlink(ino.0) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let Some(name) = name.to_str() else { return reply.error(Errno::EINVAL) };
        let kind = match mode & libc::S_IFMT {
            libc::S_IFIFO => EntryKind::Fifo,
            libc::S_IFSOCK => EntryKind::Socket,
            libc::S_IFCHR => EntryKind::CharDevice,
            libc::S_IFBLK => EntryKind::BlockDevice,
            // A regular file by mknod is a create (as on ext4).
            libc::S_IFREG | 0 => {
                return match self.core.create_open_as(parent.0, name, mode & !umask & 0o7777, Some(&caller(req))) {
                    Ok((a, fh)) => {
                        let _ = self.core.release(fh);
                        self.remember(a.ino);
                        reply.entry(&TTL, &self.attr(&a), Generation(0))
                    }
                    Err(e) => reply.error(errno(&e)),
                };
            }
            _ => return reply.error(Errno::EINVAL),
        };
        let rdev = DeviceNumber { major: libc::major(rdev as libc::dev_t), minor: libc::minor(rdev as libc::dev_t) };
        match self.core.mknod_as(parent.0, name, kind, rdev, mode & !umask & 0o7777, Some(&caller(req))) {
            Ok(a) => {
                self.remember(a.ino);
                reply.entry(&TTL, &self.attr(&a), Generation(0))
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let Some(newname) = newname.to_str() else { return reply.error(Errno::EINVAL) };
        match self.core.link(ino.0, newparent.0, newname) {
            Ok(a) => {
                // The kernel counts the new entry as one more reference to the inode.
                self.remember(a.ino);
                reply.entry(&TTL, &self.attr(&a), Generation(0))
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = name.to_str() else { return reply.error(Errno::ENOENT) };
        match self.core.unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = name.to_str() else { return reply.error(Errno::ENOENT) };
        match self.core.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (Some(name), Some(newname)) = (name.to_str(), newname.to_str()) else { return reply.error(Errno::EINVAL) };
        if flags.bits() != 0 {
            return reply.error(Errno::EINVAL); // RENAME_EXCHANGE / NOREPLACE are not supported
        }
        match self.core.rename(parent.0, name, newparent.0, newname) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mtime_ns = mtime.map(|t| {
            let st = match t {
                fuser::TimeOrNow::SpecificTime(st) => st,
                fuser::TimeOrNow::Now => SystemTime::now(),
            };
            st.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
        });
        // Sent only under writeback caching: the ctime the kernel keeps and shows.
        let ctime_ns = ctime.map(|t| ns_of(fuser::TimeOrNow::SpecificTime(t)));
        // Owner first: the kernel sends the mode a chown leaves (setuid
        // cleared) in the same request, and that mode must win.
        if uid.is_some() || gid.is_some() {
            if let Err(e) = self.core.chown_at(ino.0, uid, gid, &caller(req), ctime_ns) {
                return reply.error(errno(&e));
            }
        }
        if let Some(t) = atime {
            if let Err(e) = self.core.set_atime(ino.0, ns_of(t)) {
                return reply.error(errno(&e));
            }
        }
        // A chown stored the ctime with the owner; nothing else is left to store.
        let chowned = uid.is_some() || gid.is_some();
        let ctime_ns = if chowned && mode.is_none() && size.is_none() && mtime_ns.is_none() { None } else { ctime_ns };
        match self.core.setattr_at(ino.0, mode, size, mtime_ns, ctime_ns) {
            Ok(a) => reply.attr(&TTL, &self.attr(&self.core.with_nlink(a))),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fallocate(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, length: u64, mode: i32, reply: ReplyEmpty) {
        let mode = match mode {
            0 => Falloc::Extend,
            libc::FALLOC_FL_KEEP_SIZE => Falloc::KeepSize,
            m if m == libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE => Falloc::PunchHole,
            _ => return reply.error(Errno::EOPNOTSUPP),
        };
        match self.core.fallocate(ino.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        ino_in: INodeNo,
        _fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        _fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: fuser::CopyFileRangeFlags,
        reply: fuser::ReplyWrite,
    ) {
        if flags.bits() != 0 {
            return reply.error(Errno::EINVAL); // copy_file_range(2) defines no flags
        }
        // The reply carries a u32: a longer copy is done in parts, which the
        // caller's loop (as with a short write) continues.
        let len = len.min(u32::MAX as u64 & !0xfff);
        match self.core.copy_range(ino_in.0, offset_in, ino_out.0, offset_out, len) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.core.getattr(ino.0) {
            Ok(a) if a.kind == NodeType::Dir => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let entries = match self.core.readdir(ino.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(&e)),
        };
        let parent = self.core.lookup(ino.0, "..").map(|a| a.ino).unwrap_or(ino.0);
        let mut all: Vec<(u64, FileType, String)> =
            vec![(ino.0, FileType::Directory, ".".into()), (parent, FileType::Directory, "..".into())];
        all.extend(entries.into_iter().map(|(n, a)| (a.ino, file_type(a.kind), n)));
        for (i, (ino, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.core.statfs() {
            Ok(s) => reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let Some(name) = name.to_str() else { return reply.error(Errno::NO_XATTR) };
        match self.core.getxattr(ino.0, name) {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() <= size as usize => reply.data(&v),
            Ok(_) => reply.error(Errno::ERANGE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.core.listxattr(ino.0) {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in names {
                    buf.extend_from_slice(n.as_bytes());
                    buf.push(0);
                }
                if size == 0 {
                    reply.size(buf.len() as u32)
                } else if buf.len() <= size as usize {
                    reply.data(&buf)
                } else {
                    reply.error(Errno::ERANGE)
                }
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, value: &[u8], flags: i32, _position: u32, reply: ReplyEmpty) {
        // A name that is not UTF-8 is in no namespace the mount keeps.
        let Some(name) = name.to_str() else { return reply.error(Errno::EOPNOTSUPP) };
        match self.core.setxattr(ino.0, name, value, flags) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(name) = name.to_str() else { return reply.error(Errno::NO_XATTR) };
        match self.core.removexattr(ino.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: fuser::AccessFlags, reply: ReplyEmpty) {
        match self.core.getattr(ino.0) {
            Ok(_) if mask.bits() & libc::W_OK != 0 && !self.core.is_mutable(ino.0) => reply.error(Errno::EROFS),
            Ok(_) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }
}

/// The kernel's file type of a node type.
fn file_type(t: NodeType) -> FileType {
    match t {
        NodeType::Dir => FileType::Directory,
        NodeType::File => FileType::RegularFile,
        NodeType::Symlink => FileType::Symlink,
        NodeType::Fifo => FileType::NamedPipe,
        NodeType::Socket => FileType::Socket,
        NodeType::CharDevice(_) => FileType::CharDevice,
        NodeType::BlockDevice(_) => FileType::BlockDevice,
    }
}

/// The process behind a request, as the owner rules see it.
fn caller(req: &Request) -> Caller {
    Caller::of_request(req.uid(), req.gid(), req.pid())
}

fn time_of(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn ns_of(t: fuser::TimeOrNow) -> i64 {
    let st = match t {
        fuser::TimeOrNow::SpecificTime(st) => st,
        fuser::TimeOrNow::Now => SystemTime::now(),
    };
    match st.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map(|n| -n).unwrap_or(i64::MIN),
    }
}

/// Current time, for callers that need a fallback timestamp.
pub fn now() -> SystemTime {
    SystemTime::now()
}
