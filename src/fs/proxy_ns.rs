//! The `.proxy/` namespace of the mount: each folder holding media with stored
//! proxies shows `.proxy/<profile>/<stem>.<ext>` (thumb .jpg, preview .mp4,
//! editorial .mov), the source's stem so an NLE's relink by name finds them.
//! Only committed proxies are shown, so a proxy is never half-written; `.proxy`
//! itself is listed only when the folder has at least one.
//!
//! A child module of `core` (it uses the core's archive handle and inode table);
//! the core calls it through three hooks: lookup, readdir, xattrs.

use super::{Attr, FsCore, FsError, FsResult};
use crate::archive::objects::{ProxyRecord, TreeEntry};
use crate::archive::proxies::proxy_file_name;
use crate::archive::{EntryKind, Hash};
use crate::fs::inodes::{Node, NodeKind};
use crate::media::proxy::Rung;
use crate::media::sequence;

pub const PROXY_DIR: &str = ".proxy";

/// A proxy as the mount shows it.
struct Shown {
    name: String,
    source: TreeEntry,
    rec: ProxyRecord,
    size: u64,
}

impl FsCore {
    /// The committed tree of a folder that may show `.proxy`.
    fn proxy_parent_tree(&self, p: &Node) -> FsResult<Option<Hash>> {
        match &p.kind {
            NodeKind::ProxyDir { .. } | NodeKind::Proxy { .. } | NodeKind::Root => Ok(None),
            // Any folder with a committed tree (a branch, a folder in it, an old commit).
            _ => Ok(self.dir_tree(p).ok().flatten()),
        }
    }

    fn proxies_in(&self, tree: &Hash, profile: &str) -> FsResult<Vec<Shown>> {
        let ext = Rung::parse(profile).map(|r| r.ext()).unwrap_or("bin");
        self.with_archive(|a| {
            let mut out: Vec<Shown> = Vec::new();
            let entries = a.list_dir(tree)?;
            // An image sequence shows as one proxy named after its stem, with
            // its FFmpeg pattern (`A001.%07d.dpx`) as the source name.
            for (seq, key) in sequences_of(&entries) {
                let Some(rec) = a.catalog.proxy(&key, profile)? else { continue };
                let mtime_ns = seq.frames.iter().map(|f| f.2.mtime_ns).max().unwrap_or(0);
                let size = a.catalog.blob_size(&rec.blob)?.unwrap_or(0);
                let source = TreeEntry { name: seq.pattern(), kind: EntryKind::File, hash: key, size: 0, mode: 0o444, mtime_ns, owner: None };
                out.push(Shown { name: format!("{}.{ext}", seq.stem()), source, rec, size });
            }
            for e in entries {
                if e.kind != EntryKind::File {
                    continue;
                }
                let Some(rec) = a.catalog.proxy(&e.hash, profile)? else { continue };
                let name = proxy_file_name(&e.name, ext);
                // Two sources with one stem (A.mov, A.mp4): the first by name wins.
                if out.iter().any(|s| s.name == name) {
                    continue;
                }
                let size = a.catalog.blob_size(&rec.blob)?.unwrap_or(0);
                out.push(Shown { name, source: e, rec, size });
            }
            out.sort_by(|x, y| x.name.cmp(&y.name));
            Ok(out)
        })
    }

    /// Profiles shown under a folder's `.proxy`: those of its files, and (when
    /// `sequences` says the folder may hold image sequences) of its sequences.
    fn profiles_in(&self, tree: &Hash, sequences: bool) -> FsResult<Vec<String>> {
        self.with_archive(|a| {
            let mut out = a.catalog.proxy_profiles_in_tree(tree)?;
            if sequences {
                for (_, key) in sequences_of(&a.list_dir(tree)?) {
                    out.extend(a.catalog.proxy_profiles_of(&key)?);
                }
                out.sort();
                out.dedup();
            }
            Ok(out)
        })
    }

    fn proxy_node(&self, parent: &Node, s: &Shown) -> Node {
        self.inodes.child(parent, &s.name, NodeKind::Proxy { blob: s.rec.blob, source: s.source.hash, source_name: s.source.name.clone() }, s.size, 0o444, s.source.mtime_ns)
    }

    /// Lookup hook: `.proxy` in a folder, and names inside `.proxy/…`.
    /// None: not a proxy name; the ordinary lookup goes on.
    pub(super) fn proxy_lookup(&self, p: &Node, name: &str) -> FsResult<Option<Attr>> {
        match &p.kind {
            NodeKind::ProxyDir { tree, profile: None } => {
                let profiles = self.profiles_in(tree, true)?;
                if !profiles.iter().any(|x| x == name) {
                    return Err(FsError::NotFound);
                }
                let n = self.inodes.child(p, name, NodeKind::ProxyDir { tree: *tree, profile: Some(name.to_string()) }, 4096, 0o555, p.mtime_ns);
                Ok(Some(self.attr_of(&n)))
            }
            NodeKind::ProxyDir { tree, profile: Some(profile) } => {
                let found = self.proxies_in(tree, profile)?.into_iter().find(|s| s.name == name).ok_or(FsError::NotFound)?;
                let n = self.proxy_node(p, &found);
                Ok(Some(self.attr_of(&n)))
            }
            NodeKind::Proxy { .. } => Err(FsError::NotDir),
            _ if name == PROXY_DIR => {
                let Some(tree) = self.proxy_parent_tree(p)? else { return Ok(None) };
                // A real file or folder named `.proxy` wins.
                if self.with_archive(|a| a.catalog.tree_lookup(&tree, name))?.is_some() {
                    return Ok(None);
                }
                if self.profiles_in(&tree, true)?.is_empty() {
                    return Err(FsError::NotFound);
                }
                let n = self.inodes.child(p, PROXY_DIR, NodeKind::ProxyDir { tree, profile: None }, 4096, 0o555, p.mtime_ns);
                Ok(Some(self.attr_of(&n)))
            }
            _ => Ok(None),
        }
    }

    /// Readdir hook for `.proxy` and `.proxy/<profile>` (None: not one of them).
    pub(super) fn proxy_readdir(&self, p: &Node) -> FsResult<Option<Vec<(String, Attr)>>> {
        match &p.kind {
            NodeKind::ProxyDir { tree, profile: None } => {
                let profiles = self.profiles_in(tree, true)?;
                let mut out = Vec::new();
                for prof in profiles {
                    let n = self.inodes.child(p, &prof, NodeKind::ProxyDir { tree: *tree, profile: Some(prof.clone()) }, 4096, 0o555, p.mtime_ns);
                    out.push((prof, self.attr_of(&n)));
                }
                Ok(Some(out))
            }
            NodeKind::ProxyDir { tree, profile: Some(profile) } => {
                let mut out = Vec::new();
                for s in self.proxies_in(tree, profile)? {
                    let n = self.proxy_node(p, &s);
                    out.push((s.name.clone(), self.attr_of(&n)));
                }
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    /// Readdir of an ordinary folder: add `.proxy` when it has any proxy.
    pub(super) fn proxy_dir_entry(&self, p: &Node, tree: &Hash, out: &mut Vec<(String, Attr)>) -> FsResult<()> {
        if out.iter().any(|(n, _)| n == PROXY_DIR) {
            return Ok(());
        }
        // Only a folder with two or more frame-like names can hold a sequence:
        // other folders cost no extra listing.
        let frames = out.iter().filter(|(n, _)| sequence::frame_name(n).is_some()).take(2).count();
        if self.profiles_in(tree, frames >= 2)?.is_empty() {
            return Ok(());
        }
        let n = self.inodes.child(p, PROXY_DIR, NodeKind::ProxyDir { tree: *tree, profile: None }, 4096, 0o555, p.mtime_ns);
        out.push((PROXY_DIR.to_string(), self.attr_of(&n)));
        Ok(())
    }

    /// `user.reelfs.*` of a proxy: its source (path in the mount), profile and state.
    pub(super) fn proxy_xattrs(&self, n: &Node) -> FsResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        if let NodeKind::Proxy { blob, source, source_name } = &n.kind {
            // <folder>/.proxy/<profile>/<name> -> <folder>/<source>
            let parts: Vec<&str> = n.path.rsplitn(4, '/').collect();
            let (profile, folder) = (parts.get(1).copied().unwrap_or(""), parts.get(3).copied().unwrap_or(""));
            let src_path = if folder.is_empty() { source_name.clone() } else { format!("{folder}/{source_name}") };
            out.push(("user.reelfs.source".into(), src_path));
            out.push(("user.reelfs.source_hash".into(), format!("blake3:{source}")));
            out.push(("user.reelfs.profile".into(), profile.to_string()));
            out.push(("user.reelfs.hash".into(), format!("blake3:{blob}")));
            out.push(("user.reelfs.location".into(), "disk".into()));
            // The row of this source and profile (two sources may share a proxy's bytes).
            if let Some(r) = self.with_archive(|a| a.catalog.proxy(source, profile))? {
                out.push(("user.reelfs.settings_version".into(), r.settings_version.to_string()));
                if let Some(f) = r.partial_at {
                    out.push(("user.reelfs.partial_at".into(), f.to_string()));
                }
                if !r.note.is_empty() {
                    out.push(("user.reelfs.note".into(), r.note));
                }
            }
        }
        Ok(out)
    }
}

/// The image sequences among a folder's entries, with their keys.
fn sequences_of(entries: &[TreeEntry]) -> Vec<(sequence::Sequence<TreeEntry>, Hash)> {
    let files = entries.iter().filter(|e| e.kind == EntryKind::File && sequence::frame_name(&e.name).is_some()).map(|e| (e.name.clone(), e.clone()));
    sequence::group(files)
        .into_iter()
        .map(|s| {
            let key = s.key_by(|e| e.hash);
            (s, key)
        })
        .collect()
}
