//! The `.proxy/` namespace of the mount: each folder holding media with stored
//! proxies shows `.proxy/<profile>/<stem>.<ext>` (thumb .jpg, preview .mp4,
//! editorial .mov), the source's stem so an NLE's relink by name finds them.
//! Only committed proxies are shown, so a proxy is never half-written; `.proxy`
//! itself is listed only when the folder has at least one.
//!
//! Names are resolved by `view::proxy` (shared with the CLI and the server);
//! this child module of `core` gives the listings inode numbers and the
//! proxies their xattrs.

use super::{Attr, FsCore, FsResult};
use crate::archive::Hash;
use crate::fs::inodes::{Node, NodeKind};
use crate::media::sequence;

pub use crate::view::proxy::PROXY_DIR;
use crate::view::proxy::{profiles_in, proxies_in, ProxyTarget as Shown};

impl FsCore {
    fn proxy_node(&self, parent: &Node, s: &Shown) -> Node {
        self.inodes.child(
            parent,
            &s.name,
            NodeKind::Proxy { blob: s.rec.blob, source: s.source.hash, source_name: s.source.name.clone() },
            s.size,
            0o444,
            s.source.mtime_ns,
        )
    }

    /// Readdir hook for `.proxy` and `.proxy/<profile>` (None: not one of them).
    pub(super) fn proxy_readdir(&self, p: &Node) -> FsResult<Option<Vec<(String, Attr)>>> {
        match &p.kind {
            NodeKind::ProxyDir { tree, profile: None } => {
                let profiles = profiles_in(self, tree, true)?;
                let mut out = Vec::new();
                for prof in profiles {
                    let n = self.inodes.child(
                        p,
                        &prof,
                        NodeKind::ProxyDir { tree: *tree, profile: Some(prof.clone()) },
                        4096,
                        0o555,
                        p.mtime_ns,
                    );
                    out.push((prof, self.attr_of(&n)));
                }
                Ok(Some(out))
            }
            NodeKind::ProxyDir { tree, profile: Some(profile) } => {
                let mut out = Vec::new();
                for s in proxies_in(self, tree, profile)? {
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
        if profiles_in(self, tree, frames >= 2)?.is_empty() {
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
