//! Inode numbers, stable for the life of a mount.
//!
//! An inode is identified by (parent inode, name, content hash): the same name
//! showing new content after a commit gets a new inode, so the kernel never
//! serves cached pages of the old content under the new one.

use crate::archive::Hash;
use std::collections::HashMap;
use std::sync::RwLock;

pub const ROOT_INO: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// The mount root: one directory per branch.
    Root,
    /// A branch's root directory; its tree is the branch head, looked up anew.
    Branch { name: String },
    /// A directory inside a commit's tree (immutable).
    Dir { tree: Hash },
    /// A file (immutable content).
    File { blob: Hash },
    /// A virtual timecode slice of a file (`clip.mov@IN-OUT`), resolved on lookup.
    Slice { blob: Hash },
    /// A folder inside a branch, named by path: the head tree plus the staging overlay.
    BDir { branch: String, path: String },
    /// A file inside a branch, named by path, so it keeps its inode while written.
    BFile { branch: String, path: String },
    /// `.proxy/` of the folder whose tree is `tree` (profile None), or one of its
    /// `.proxy/<profile>/` folders.
    ProxyDir { tree: Hash, profile: Option<String> },
    /// A stored proxy (`.proxy/<profile>/<stem>.<ext>`) of the file named
    /// `source_name` whose content is `source`.
    Proxy { blob: Hash, source: Hash, source_name: String },
    /// An old version, read-only: `<branch>@<prefix>` at the root or a folder of
    /// `.history/<branch>/`; behaves like `Dir` over the commit's root tree.
    Commit { commit: Hash, tree: Hash },
    /// `.history/`: one folder per branch.
    History,
    /// `.history/<branch>/`: one folder per commit of the branch.
    HistoryBranch { branch: String },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub ino: u64,
    pub parent: u64,
    pub name: String,
    /// Path below the mount root, for log lines and xattrs.
    pub path: String,
    pub kind: NodeKind,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
}

type Key = (u64, String, Option<Hash>);

#[derive(Default)]
struct Table {
    nodes: HashMap<u64, Node>,
    by_key: HashMap<Key, u64>,
    next: u64,
}

pub struct Inodes {
    t: RwLock<Table>,
}

impl Default for Inodes {
    fn default() -> Self {
        Self::new()
    }
}

impl Inodes {
    pub fn new() -> Inodes {
        let mut t = Table { next: ROOT_INO + 1, ..Default::default() };
        t.nodes.insert(
            ROOT_INO,
            Node { ino: ROOT_INO, parent: ROOT_INO, name: String::new(), path: String::new(), kind: NodeKind::Root, size: 0, mode: 0o755, mtime_ns: 0 },
        );
        Inodes { t: RwLock::new(t) }
    }

    pub fn get(&self, ino: u64) -> Option<Node> {
        self.t.read().ok()?.nodes.get(&ino).cloned()
    }

    /// The inode for a child, allocating one the first time it is seen. Attributes
    /// are refreshed (a branch root's mtime moves with its head).
    pub fn child(&self, parent: &Node, name: &str, kind: NodeKind, size: u64, mode: u32, mtime_ns: i64) -> Node {
        let content = match &kind {
            NodeKind::Dir { tree } | NodeKind::ProxyDir { tree, .. } => Some(*tree),
            NodeKind::Proxy { blob, .. } => Some(*blob),
            NodeKind::File { blob } | NodeKind::Slice { blob } => Some(*blob),
            _ => None,
        };
        let key = (parent.ino, name.to_string(), content);
        let path = if parent.path.is_empty() { name.to_string() } else { format!("{}/{}", parent.path, name) };
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let ino = match t.by_key.get(&key) {
            Some(i) => *i,
            None => {
                let i = t.next;
                t.next += 1;
                t.by_key.insert(key, i);
                i
            }
        };
        let node = Node { ino, parent: parent.ino, name: name.to_string(), path, kind, size, mode, mtime_ns };
        t.nodes.insert(ino, node.clone());
        node
    }

    /// A rename in a branch: the kernel keeps the renamed inode, so its node
    /// (and every node below a renamed folder) must now answer to the new path.
    pub fn rename_branch_path(&self, parent: u64, name: &str, newparent: &Node, newname: &str, branch: &str, from: &str, to: &str) {
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        // Whatever was at the target name is replaced.
        t.by_key.remove(&(newparent.ino, newname.to_string(), None));
        let Some(ino) = t.by_key.remove(&(parent, name.to_string(), None)) else { return };
        t.by_key.insert((newparent.ino, newname.to_string(), None), ino);
        let new_full = if newparent.path.is_empty() { newname.to_string() } else { format!("{}/{}", newparent.path, newname) };
        let prefix = format!("{from}/");
        for n in t.nodes.values_mut() {
            let (b, p) = match &mut n.kind {
                NodeKind::BDir { branch, path } | NodeKind::BFile { branch, path } => (branch, path),
                _ => continue,
            };
            if b != branch {
                continue;
            }
            if n.ino == ino {
                *p = to.to_string();
                n.parent = newparent.ino;
                n.name = newname.to_string();
                n.path = new_full.clone();
            } else if let Some(rest) = p.strip_prefix(&prefix) {
                *p = format!("{to}/{rest}");
                if let Some(r) = n.path.rsplit_once(&format!("/{}/", name)).map(|_| ()) {
                    let _ = r;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.t.read().map(|t| t.nodes.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
