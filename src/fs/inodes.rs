//! Inode numbers, stable while the kernel knows them.
//!
//! An inode is identified by (parent inode, name, content hash): the same name
//! showing new content after a commit gets a new inode, so the kernel never
//! serves cached pages of the old content under the new one.
//!
//! The table is bounded by what the kernel holds: each lookup answered to the
//! kernel is one reference (`remember`), each FUSE `forget` gives references
//! back, and a node with none left is dropped. Nodes made only to list a folder
//! (readdir hands out inode numbers without references) wait in a bounded LRU,
//! so listing a huge folder does not pin it in memory.

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
    /// A symlink, FIFO, socket or device node of a commit's tree (immutable).
    /// `hash` is its entry's hash, so a changed link is a new inode.
    Special { kind: crate::archive::EntryKind, extra: crate::archive::objects::EntryExtra, hash: Hash },
    /// A symlink, FIFO, socket or device node in a branch (committed or made
    /// through the mount), by path like `BFile`, so a rename keeps its inode.
    BSpecial { branch: String, path: String },
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
    /// Archived owner (None: not recorded, or a node whose owner is read anew).
    pub owner: Option<crate::archive::objects::Owner>,
}

type Key = (u64, String, Option<Hash>);

/// The key of a hard-link group's one inode: parent 0 is no inode, so it never
/// meets a (parent, name) key.
fn link_key((branch, group): (&str, u64)) -> Key {
    (0, format!("{branch}\0{group}"), None)
}

/// Nodes without kernel references kept (so a folder listed and then stat'ed
/// entry by entry keeps its numbers): ~16 k nodes, a few MB.
pub const UNREFERENCED_NODES: usize = 16 * 1024;

struct Slot {
    node: Node,
    key: Key,
    /// References the kernel holds (lookups answered minus forgotten).
    lookups: u64,
}

struct Table {
    nodes: HashMap<u64, Slot>,
    by_key: HashMap<Key, u64>,
    next: u64,
    /// Nodes with no kernel reference, least recently made or used first.
    unreferenced: hashlink::LinkedHashSet<u64>,
}

impl Table {
    fn remove(&mut self, ino: u64) -> Option<Node> {
        let slot = self.nodes.remove(&ino)?;
        if self.by_key.get(&slot.key) == Some(&ino) {
            self.by_key.remove(&slot.key);
        }
        self.unreferenced.remove(&ino);
        Some(slot.node)
    }
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
        let mut t =
            Table { nodes: HashMap::new(), by_key: HashMap::new(), next: ROOT_INO + 1, unreferenced: hashlink::LinkedHashSet::new() };
        let root = Node {
            ino: ROOT_INO,
            parent: ROOT_INO,
            name: String::new(),
            path: String::new(),
            kind: NodeKind::Root,
            size: 0,
            mode: 0o755,
            mtime_ns: 0,
            owner: None,
        };
        // The root is never forgotten (the kernel holds it for the whole mount).
        t.nodes.insert(ROOT_INO, Slot { node: root, key: (0, String::new(), None), lookups: u64::MAX });
        Inodes { t: RwLock::new(t) }
    }

    pub fn get(&self, ino: u64) -> Option<Node> {
        self.t.read().ok()?.nodes.get(&ino).map(|s| s.node.clone())
    }

    /// The kernel was given this inode (a lookup, create or mkdir reply): one
    /// more reference. False if the node is gone (forgotten meanwhile): the
    /// caller looks it up again.
    pub fn remember(&self, ino: u64) -> bool {
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let Some(slot) = t.nodes.get_mut(&ino) else { return false };
        slot.lookups = slot.lookups.saturating_add(1);
        t.unreferenced.remove(&ino);
        true
    }

    /// FUSE forget: the kernel drops `n` references. Returns the node if that
    /// was the last one (it is gone from the table now).
    pub fn forget(&self, ino: u64, n: u64) -> Option<Node> {
        if ino == ROOT_INO {
            return None;
        }
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let slot = t.nodes.get_mut(&ino)?;
        slot.lookups = slot.lookups.saturating_sub(n);
        if slot.lookups > 0 {
            return None;
        }
        t.remove(ino)
    }

    /// References the kernel holds on `ino` (None: not in the table).
    pub fn lookups(&self, ino: u64) -> Option<u64> {
        self.t.read().ok()?.nodes.get(&ino).map(|s| s.lookups)
    }

    /// The inode for a child, allocating one the first time it is seen. Attributes
    /// are refreshed (a branch root's mtime moves with its head).
    pub fn child(&self, parent: &Node, name: &str, kind: NodeKind, size: u64, mode: u32, mtime_ns: i64) -> Node {
        self.child_owned(parent, name, kind, size, mode, mtime_ns, None)
    }

    /// `child` with the entry's archived owner.
    #[allow(clippy::too_many_arguments)]
    pub fn child_owned(
        &self,
        parent: &Node,
        name: &str,
        kind: NodeKind,
        size: u64,
        mode: u32,
        mtime_ns: i64,
        owner: Option<crate::archive::objects::Owner>,
    ) -> Node {
        let content = match &kind {
            NodeKind::Dir { tree } | NodeKind::ProxyDir { tree, .. } => Some(*tree),
            NodeKind::Proxy { blob, .. } => Some(*blob),
            NodeKind::File { blob } | NodeKind::Slice { blob } => Some(*blob),
            NodeKind::Special { hash, .. } => Some(*hash),
            _ => None,
        };
        let key = (parent.ino, name.to_string(), content);
        self.child_keyed(key, parent, name, kind, size, mode, mtime_ns, owner)
    }

    /// A branch file or special entry that is one of a hard-link group: every
    /// name of the group is one inode, keyed by (branch, group) rather than by
    /// (parent, name), so `stat` shows one number and the kernel keeps one
    /// page cache for all the names. The node answers to the name looked up last.
    #[allow(clippy::too_many_arguments)]
    pub fn child_linked(
        &self,
        parent: &Node,
        name: &str,
        kind: NodeKind,
        group: (&str, u64),
        size: u64,
        mode: u32,
        mtime_ns: i64,
        owner: Option<crate::archive::objects::Owner>,
    ) -> Node {
        self.child_keyed(link_key(group), parent, name, kind, size, mode, mtime_ns, owner)
    }

    /// A node becomes one name of a hard-link group (`link` of a file that had
    /// one name): it keeps its number and is found by the group's key from now on.
    pub fn join_link_group(&self, ino: u64, group: (&str, u64)) {
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let key = link_key(group);
        let Some(slot) = t.nodes.get_mut(&ino) else { return };
        let old = std::mem::replace(&mut slot.key, key.clone());
        if t.by_key.get(&old) == Some(&ino) {
            t.by_key.remove(&old);
        }
        t.by_key.insert(key, ino);
    }

    /// Nodes named by branch path `from` answer to `to` now (a name of a
    /// hard-link group went away and the inode lives on under another).
    pub fn repoint_branch_path(&self, branch: &str, from: &str, to: &str) {
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        for n in t.nodes.values_mut().map(|s| &mut s.node) {
            if let NodeKind::BFile { branch: b, path } | NodeKind::BSpecial { branch: b, path } = &mut n.kind {
                if b == branch && path == from {
                    *path = to.to_string();
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn child_keyed(
        &self,
        key: Key,
        parent: &Node,
        name: &str,
        kind: NodeKind,
        size: u64,
        mode: u32,
        mtime_ns: i64,
        owner: Option<crate::archive::objects::Owner>,
    ) -> Node {
        let path = if parent.path.is_empty() { name.to_string() } else { format!("{}/{}", parent.path, name) };
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let node = match t.by_key.get(&key).copied() {
            Some(ino) => {
                let node = Node { ino, parent: parent.ino, name: name.to_string(), path, kind, size, mode, mtime_ns, owner };
                if let Some(slot) = t.nodes.get_mut(&ino) {
                    slot.node = node.clone();
                    if slot.lookups == 0 {
                        t.unreferenced.to_back(&ino);
                    }
                }
                node
            }
            None => {
                let ino = t.next;
                t.next += 1;
                let node = Node { ino, parent: parent.ino, name: name.to_string(), path, kind, size, mode, mtime_ns, owner };
                t.by_key.insert(key.clone(), ino);
                t.nodes.insert(ino, Slot { node: node.clone(), key, lookups: 0 });
                t.unreferenced.insert(ino);
                while t.unreferenced.len() > UNREFERENCED_NODES {
                    let Some(old) = t.unreferenced.pop_front() else { break };
                    t.remove(old);
                }
                node
            }
        };
        node
    }

    /// A rename in a branch: the kernel keeps the renamed inode, so its node
    /// (and every node below a renamed folder) must now answer to the new path.
    #[allow(clippy::too_many_arguments)] // both ends of the move, as the kernel names them and as the branch does
    pub fn rename_branch_path(&self, parent: u64, name: &str, newparent: &Node, newname: &str, branch: &str, from: &str, to: &str) {
        let mut t = match self.t.write() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        // Whatever was at the target name is replaced.
        let new_key = (newparent.ino, newname.to_string(), None);
        t.by_key.remove(&new_key);
        // A name of a hard-link group is keyed by its group, not its name: it
        // keeps its key, and is found below by its path.
        let ino = t.by_key.remove(&(parent, name.to_string(), None));
        if let Some(ino) = ino {
            t.by_key.insert(new_key.clone(), ino);
            if let Some(slot) = t.nodes.get_mut(&ino) {
                slot.key = new_key;
            }
        }
        let new_full = if newparent.path.is_empty() { newname.to_string() } else { format!("{}/{}", newparent.path, newname) };
        let prefix = format!("{from}/");
        for n in t.nodes.values_mut().map(|s| &mut s.node) {
            let (b, p) = match &mut n.kind {
                NodeKind::BDir { branch, path } | NodeKind::BFile { branch, path } | NodeKind::BSpecial { branch, path } => (branch, path),
                _ => continue,
            };
            if b != branch {
                continue;
            }
            if Some(n.ino) == ino || p == from {
                *p = to.to_string();
                n.parent = newparent.ino;
                n.name = newname.to_string();
                n.path = new_full.clone();
            } else if let Some(rest) = p.strip_prefix(&prefix).map(str::to_string) {
                *p = format!("{to}/{rest}");
                n.path = format!("{new_full}/{rest}");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn root(i: &Inodes) -> Node {
        i.get(ROOT_INO).unwrap()
    }

    #[test]
    fn forget_drops_a_node_with_its_last_reference_and_numbers_are_not_reused() {
        let i = Inodes::new();
        let a = i.child(&root(&i), "a", NodeKind::Branch { name: "a".into() }, 0, 0o755, 0);
        assert!(i.remember(a.ino) && i.remember(a.ino));
        assert!(i.forget(a.ino, 1).is_none());
        assert_eq!(i.lookups(a.ino), Some(1));
        assert!(i.forget(a.ino, 1).is_some());
        assert!(i.get(a.ino).is_none());
        assert!(!i.remember(a.ino), "a forgotten node cannot be remembered");
        let b = i.child(&root(&i), "a", NodeKind::Branch { name: "a".into() }, 0, 0o755, 0);
        assert_ne!(b.ino, a.ino);
        // The root stays whatever the kernel says.
        assert!(i.forget(ROOT_INO, u64::MAX).is_none());
        assert!(i.get(ROOT_INO).is_some());
    }

    #[test]
    fn nodes_only_listed_are_bounded_and_referenced_ones_stay() {
        let i = Inodes::new();
        let r = root(&i);
        let kept = i.child(&r, "kept", NodeKind::Branch { name: "kept".into() }, 0, 0o755, 0);
        assert!(i.remember(kept.ino));
        let first = i.child(&r, "n0", NodeKind::Branch { name: "n0".into() }, 0, 0o755, 0);
        for n in 1..UNREFERENCED_NODES + 500 {
            let name = format!("n{n}");
            i.child(&r, &name, NodeKind::Branch { name: name.clone() }, 0, 0o755, 0);
        }
        assert_eq!(i.len(), UNREFERENCED_NODES + 2, "root + kept + the newest unreferenced");
        assert!(i.get(kept.ino).is_some());
        assert!(i.get(first.ino).is_none(), "the oldest listed-only node went first");
    }
}
