//! The `.proxy/` namespace: each folder holding media with stored proxies
//! shows `.proxy/<profile>/<stem>.<ext>` (thumb .jpg, preview .mp4, editorial
//! .mov), the source's stem so an NLE's relink by name finds them. Only
//! committed proxies are shown, so a proxy is never half-written; `.proxy`
//! exists only in a folder that has at least one. Image sequences show as one
//! proxy named after the sequence's stem.

use super::{Access, Result, Target, ViewError};
use crate::archive::objects::{ProxyRecord, TreeEntry};
use crate::archive::proxies::proxy_file_name;
use crate::archive::{EntryKind, Hash};
use crate::media::proxy::Rung;
use crate::media::sequence;

pub const PROXY_DIR: &str = ".proxy";

/// A proxy as the mount shows it.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    pub name: String,
    pub profile: String,
    /// The source file (for a sequence: its pattern as the name, its key as the hash).
    pub source: TreeEntry,
    pub rec: ProxyRecord,
    /// Bytes of the proxy itself.
    pub size: u64,
}

/// An image sequence of a folder, named by its FFmpeg pattern.
#[derive(Debug, Clone)]
pub struct SequenceTarget {
    pub pattern: String,
    /// The sequence key (proxies of a sequence are stored under it).
    pub key: Hash,
    /// (frame number, file name, entry), in frame order.
    pub frames: Vec<(u64, String, TreeEntry)>,
}

/// The image sequences among a folder's entries, with their keys.
pub fn sequences_of(entries: &[TreeEntry]) -> Vec<(sequence::Sequence<TreeEntry>, Hash)> {
    let files = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File && sequence::frame_name(&e.name).is_some())
        .map(|e| (e.name.clone(), e.clone()));
    sequence::group(files)
        .into_iter()
        .map(|s| {
            let key = s.key_by(|e| e.hash);
            (s, key)
        })
        .collect()
}

/// The proxies of one profile shown in the folder whose tree is `tree`, by name.
pub fn proxies_in(ctx: &impl Access, tree: &Hash, profile: &str) -> Result<Vec<ProxyTarget>> {
    let ext = Rung::parse(profile).map(|r| r.ext()).unwrap_or("bin");
    ctx.read(|a| {
        let mut out: Vec<ProxyTarget> = Vec::new();
        let entries = a.list_dir(tree)?;
        // An image sequence shows as one proxy named after its stem, with
        // its FFmpeg pattern (`A001.%07d.dpx`) as the source name.
        for (seq, key) in sequences_of(&entries) {
            let Some(rec) = a.catalog.proxy(&key, profile)? else { continue };
            let mtime_ns = seq.frames.iter().map(|f| f.2.mtime_ns).max().unwrap_or(0);
            let size = a.catalog.blob_size(&rec.blob)?.unwrap_or(0);
            let source = TreeEntry {
                name: seq.pattern(),
                kind: EntryKind::File,
                hash: key,
                size: 0,
                mode: 0o444,
                mtime_ns,
                owner: None,
                extra: Default::default(),
            };
            out.push(ProxyTarget { name: format!("{}.{ext}", seq.stem()), profile: profile.to_string(), source, rec, size });
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
            out.push(ProxyTarget { name, profile: profile.to_string(), source: e, rec, size });
        }
        out.sort_by(|x, y| x.name.cmp(&y.name));
        Ok(out)
    })
}

/// Profiles shown under a folder's `.proxy`: those of its files, and (when
/// `sequences` says the folder may hold image sequences) of its sequences.
pub fn profiles_in(ctx: &impl Access, tree: &Hash, sequences: bool) -> Result<Vec<String>> {
    ctx.read(|a| {
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

/// `.proxy` in a folder with committed tree `tree`. None: a real entry
/// named `.proxy` is there (it wins, and is looked up as itself).
pub fn proxy_dir(ctx: &impl Access, tree: &Hash, path: &str) -> Result<Option<Target>> {
    if ctx.read(|a| a.catalog.tree_lookup(tree, PROXY_DIR))?.is_some() {
        return Ok(None);
    }
    if profiles_in(ctx, tree, true)?.is_empty() {
        return Err(ViewError::NotFound(format!("{path}/{PROXY_DIR} (no proxies here; `reelfs proxy` renders them)")));
    }
    Ok(Some(Target::ProxyDir { tree: *tree, profile: None }))
}

/// A name inside `.proxy` or `.proxy/<profile>`. None: `parent` is neither.
pub fn lookup(ctx: &impl Access, parent: &Target, name: &str) -> Result<Option<Target>> {
    match parent {
        Target::ProxyDir { tree, profile: None } => {
            if !profiles_in(ctx, tree, true)?.iter().any(|x| x == name) {
                return Err(ViewError::NotFound(format!("{PROXY_DIR}/{name}")));
            }
            Ok(Some(Target::ProxyDir { tree: *tree, profile: Some(name.to_string()) }))
        }
        Target::ProxyDir { tree, profile: Some(profile) } => {
            let found = proxies_in(ctx, tree, profile)?.into_iter().find(|s| s.name == name);
            found.map(|p| Some(Target::Proxy(p))).ok_or_else(|| ViewError::NotFound(format!("{PROXY_DIR}/{profile}/{name}")))
        }
        Target::Proxy(p) => Err(ViewError::NotDir(format!("{PROXY_DIR}/{}/{}", p.profile, p.name))),
        _ => Ok(None),
    }
}

/// An image sequence of the folder `tree` named by its pattern (`A001.%07d.dpx`).
pub fn sequence(ctx: &impl Access, tree: &Hash, name: &str) -> Result<Option<Target>> {
    if !name.contains('%') {
        return Ok(None);
    }
    let entries = ctx.read(|a| a.list_dir(tree))?;
    for (seq, key) in sequences_of(&entries) {
        if seq.pattern() == name {
            return Ok(Some(Target::Sequence(SequenceTarget { pattern: seq.pattern(), key, frames: seq.frames })));
        }
    }
    Ok(None)
}
