//! What `stat` shows of a node. A leaf module shared by the core and the
//! write path.

use super::inodes::{Node, NodeKind};
use crate::archive::objects::EntryExtra;
use crate::archive::EntryKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    Dir,
    File,
    Symlink,
    Fifo,
    Socket,
    /// With its device number (`makedev(major, minor)`).
    CharDevice(u32),
    BlockDevice(u32),
}

impl NodeType {
    /// The type of a tree entry of `kind` (with its device numbers).
    pub fn special(kind: EntryKind, extra: &EntryExtra) -> NodeType {
        let rdev = extra.rdev.map(|d| libc::makedev(d.major, d.minor) as u32).unwrap_or(0);
        match kind {
            EntryKind::Dir => NodeType::Dir,
            EntryKind::File => NodeType::File,
            EntryKind::Symlink => NodeType::Symlink,
            EntryKind::Fifo => NodeType::Fifo,
            EntryKind::Socket => NodeType::Socket,
            EntryKind::CharDevice => NodeType::CharDevice(rdev),
            EntryKind::BlockDevice => NodeType::BlockDevice(rdev),
        }
    }
    /// The device number `stat` shows (0 unless a device).
    pub fn rdev(self) -> u32 {
        match self {
            NodeType::CharDevice(r) | NodeType::BlockDevice(r) => r,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub ino: u64,
    pub kind: NodeType,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    /// Last change of content or metadata (see `ctime_of`).
    pub ctime_ns: i64,
    pub nlink: u32,
    /// None: not recorded (shown as the mount's user).
    pub owner: Option<crate::archive::objects::Owner>,
}

/// The ctime `stat` shows for an entry: its recorded metadata change, or its
/// mtime when that is later (a write moves mtime, and with it ctime, without
/// touching the entry's metadata).
pub fn ctime_of(mtime_ns: i64, extra: &EntryExtra) -> i64 {
    extra.ctime_ns.map_or(mtime_ns, |c| c.max(mtime_ns))
}

impl Attr {
    /// The attributes recorded in a node when it was made (a branch node's
    /// may have changed since: the write path asks the branch).
    pub fn of_node(n: &Node) -> Attr {
        let kind = if let NodeKind::Special { kind, extra, .. } = &n.kind {
            NodeType::special(*kind, extra)
        } else if matches!(n.kind, NodeKind::File { .. } | NodeKind::Slice { .. } | NodeKind::Proxy { .. } | NodeKind::BFile { .. }) {
            NodeType::File
        } else {
            NodeType::Dir
        };
        Attr {
            ino: n.ino,
            kind,
            size: n.size,
            mode: n.mode,
            mtime_ns: n.mtime_ns,
            ctime_ns: n.mtime_ns,
            nlink: if kind == NodeType::Dir { 2 } else { 1 },
            owner: n.owner,
        }
    }
}
