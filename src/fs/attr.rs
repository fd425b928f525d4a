//! What `stat` shows of a node. A leaf module shared by the core and the
//! write path.

use super::inodes::{Node, NodeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    Dir,
    File,
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub ino: u64,
    pub kind: NodeType,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    pub nlink: u32,
    /// None: not recorded (shown as the mount's user).
    pub owner: Option<crate::archive::objects::Owner>,
}

impl Attr {
    /// The attributes recorded in a node when it was made (a branch node's
    /// may have changed since: the write path asks the branch).
    pub fn of_node(n: &Node) -> Attr {
        let kind = if matches!(n.kind, NodeKind::File { .. } | NodeKind::Slice { .. } | NodeKind::Proxy { .. } | NodeKind::BFile { .. }) {
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
            nlink: if kind == NodeType::Dir { 2 } else { 1 },
            owner: n.owner,
        }
    }
}
