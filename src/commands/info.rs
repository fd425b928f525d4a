//! `reelfs info`: what is known about a file (content hash, stored bytes, media
//! facts, proxies), a slice (its plan), or the image sequences in a folder. The
//! path is resolved by the view layer, as the mount and `cat` resolve it.

use super::{CommandError, Result};
use crate::archive::objects::{DamagedRange, TreeEntry};
use crate::archive::{Archive, EntryKind, Hash};
use crate::media::facts::{self, MediaFacts};
use crate::media::sequence;
use crate::view::proxy::ProxyTarget;
use crate::view::{self, Target};
use std::path::Path;

/// A stored proxy of a source, named as the mount shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxyListing {
    pub profile: String,
    pub settings_version: i64,
    pub blob: String,
    /// None when the proxy's content is missing from the catalog.
    pub size: Option<u64>,
    /// First frame that did not decode (the proxy holds the frames before it).
    pub partial_at: Option<i64>,
    pub note: String,
    /// `.proxy/PROFILE/NAME`, relative to the source's folder.
    pub name: String,
    pub damaged: Vec<DamagedRange>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    /// Octal.
    pub mode: String,
    pub mtime_ns: i64,
    pub content_hash: String,
    pub stored_bytes: u64,
    pub logical_bytes: u64,
    /// The recorded owner (null: not recorded).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The facts in force (any recorded timecode applied); None when not media or damaged.
    pub media: Option<MediaFacts>,
    pub damaged: bool,
    pub probe_error: Option<String>,
    pub proxies: Vec<ProxyListing>,
    /// The content id as a user reads it: `blake3:…`, or `reelfs-layout:…` for a
    /// file with huge holes (archive/content_hash.rs), as the xattr shows it.
    #[serde(skip)]
    pub content_label: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SequenceInfo {
    /// `name.%06d.dpx`
    pub pattern: String,
    pub stem: String,
    pub first: u64,
    pub last: u64,
    /// Files present.
    pub frames: usize,
    /// Frame numbers from first to last, holes included.
    pub span: u64,
    /// Missing frame numbers, `N` or `N-M`.
    pub gaps: Vec<String>,
    /// The key the sequence's proxies are stored under.
    pub sequence_key: String,
    pub bytes: u64,
    /// What the first frame's header says.
    pub timecode: Option<String>,
    pub frame_rate: Option<String>,
    pub proxies: Vec<ProxyListing>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FolderInfo {
    pub path: String,
    pub sequences: Vec<SequenceInfo>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Info {
    File(Box<FileInfo>),
    Folder(FolderInfo),
    Slice(Box<SliceInfo>),
}

/// A virtual slice (`clip.mov@IN-OUT[+H]`): the clip it cuts and its plan,
/// as `reelfs slice` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SliceInfo {
    pub path: String,
    /// Mount path of the clip it cuts.
    pub source: String,
    pub plan: crate::media::slice::SlicePlan,
}

/// `info` of `spec`, any path the mount shows (`BRANCH[@COMMIT]/PATH`, a
/// slice `clip@IN-OUT`, `.proxy/PROFILE/NAME`, `.history/...`), resolved by the
/// view layer as `cat` and `slice` resolve it: a file, a slice, a proxy, or a
/// folder holding image sequences (a folder without one is an error that
/// points at `ls`).
pub fn info(archive: &Path, spec: &str) -> Result<Info> {
    let a = Archive::open(archive)?;
    // Leading and trailing '/' were always accepted (shell completion leaves
    // the trailing one on a folder).
    let r = view::resolve(&a, spec.trim_matches('/'))?;
    let not_a_file = |kind: &str| {
        CommandError::invalid(format!("{spec} is a {kind} with no image sequence; `reelfs ls {} {spec}` lists it", archive.display()))
    };
    match r.target {
        Target::File { entry, .. } if entry.kind.is_special() => {
            let what = entry.extra.target.as_ref().map(|t| format!(" pointing to {t}")).unwrap_or_default();
            Err(CommandError::invalid(format!(
                "{spec} is a {}{what}: info describes files and folders; `reelfs ls -l` shows it",
                entry.kind.word()
            )))
        }
        Target::File { entry, .. } => Ok(Info::File(Box::new(file_info(&a, spec, &entry)?))),
        Target::Staged { .. } => Err(CommandError::invalid(format!(
            "{spec} was written through the mount and is not committed yet: `reelfs commit {} BRANCH` first, then `reelfs info` shows its facts",
            archive.display()
        ))),
        Target::Slice(s) => Ok(Info::Slice(Box::new(SliceInfo { path: spec.to_string(), source: s.source_path.clone(), plan: (*s.plan).clone() }))),
        Target::Proxy(x) => Ok(Info::File(Box::new(proxy_info(&a, spec, &x)?))),
        Target::Sequence(seq) => {
            let parent = r.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let tree = view::resolve::committed_tree(&a, &view::resolve(&a, parent)?.target)?;
            let Some(tree) = tree else { return Err(not_a_file("folder")) };
            let mut f = folder_info(&a, archive, spec, &tree)?;
            f.sequences.retain(|s| s.pattern == seq.pattern);
            Ok(Info::Folder(f))
        }
        t @ (Target::Dir { .. } | Target::Branch { .. } | Target::Commit { .. }) => match view::resolve::committed_tree(&a, &t)? {
            Some(tree) => Ok(Info::Folder(folder_info(&a, archive, spec, &tree)?)),
            None => Err(not_a_file("folder")),
        },
        t @ (Target::Root | Target::History | Target::HistoryBranch { .. } | Target::ProxyDir { .. }) => Err(not_a_file(t.kind_word())),
    }
}

/// A committed file: its entry, stored bytes, the media facts in force, proxies.
fn file_info(a: &Archive, spec: &str, e: &TreeEntry) -> Result<FileInfo> {
    let stored_bytes = a.catalog.blob_stored_bytes(&e.hash)?;
    let (media, err) = facts::stored(a, &e.hash)?.unwrap_or((None, None));
    // A timecode recorded with `reelfs tc set` is kept by branch path and
    // commit; the mount's xattrs look it up the same way.
    let media = media.map(|f| match a.resolve(spec) {
        Ok(r) => facts::in_force(a, r.commit.as_ref(), &r.path, &e.hash, &f),
        Err(_) => f.with_user_fact(None),
    });
    let plain = crate::archive::content_hash::is_plain_blake3(&a.catalog, &e.hash)?;
    Ok(FileInfo {
        path: spec.to_string(),
        size: e.size,
        mode: format!("{:o}", e.mode),
        mtime_ns: e.mtime_ns,
        content_hash: e.hash.to_hex(),
        stored_bytes,
        logical_bytes: e.size,
        uid: e.owner.map(|o| o.uid),
        gid: e.owner.map(|o| o.gid),
        media,
        damaged: err.is_some(),
        probe_error: err,
        proxies: proxies_of_file(a, e)?,
        content_label: crate::archive::content_hash::label(&e.hash, plain),
    })
}

/// A stored proxy, as a file of its own (read-only, dated like its source).
fn proxy_info(a: &Archive, spec: &str, x: &ProxyTarget) -> Result<FileInfo> {
    let blob = &x.rec.blob;
    let (media, err) = facts::stored(a, blob)?.unwrap_or((None, None));
    let plain = crate::archive::content_hash::is_plain_blake3(&a.catalog, blob)?;
    Ok(FileInfo {
        path: spec.to_string(),
        size: x.size,
        mode: "444".to_string(),
        mtime_ns: x.source.mtime_ns,
        content_hash: blob.to_hex(),
        stored_bytes: a.catalog.blob_stored_bytes(blob)?,
        logical_bytes: x.size,
        uid: None,
        gid: None,
        media,
        damaged: err.is_some(),
        probe_error: err,
        proxies: Vec::new(),
        content_label: crate::archive::content_hash::label(blob, plain),
    })
}

/// The stored proxies of a file's content.
pub fn proxies_of_file(a: &Archive, e: &TreeEntry) -> Result<Vec<ProxyListing>> {
    proxies_of(a, &e.hash, |ext| crate::archive::proxies::proxy_file_name(&e.name, ext))
}

/// The stored proxies of a source (content hash or sequence key), named by `name(ext)`.
pub fn proxies_of(a: &Archive, source: &Hash, name: impl Fn(&str) -> String) -> Result<Vec<ProxyListing>> {
    let mut out = Vec::new();
    for p in a.catalog.proxies_of(source)? {
        let ext = crate::media::proxy::Rung::parse(&p.profile).map(|r| r.ext()).unwrap_or("bin");
        out.push(ProxyListing {
            size: a.catalog.blob_size(&p.blob)?,
            name: format!(".proxy/{}/{}", p.profile, name(ext)),
            blob: p.blob.to_hex(),
            profile: p.profile,
            settings_version: p.settings_version,
            partial_at: p.partial_at,
            note: p.note,
            damaged: p.damaged,
        });
    }
    Ok(out)
}

/// The image sequences in a folder: frames, gaps, what the first frame's header
/// says, proxies.
fn folder_info(a: &Archive, archive: &Path, path: &str, tree: &Hash) -> Result<FolderInfo> {
    let entries = a.list_dir(tree)?;
    let files = entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| (e.name.clone(), e.clone()));
    let seqs = sequence::group(files);
    if seqs.is_empty() {
        return Err(CommandError::invalid(format!(
            "{path} is a folder with no image sequence; `reelfs ls {} {path}` lists it",
            archive.display()
        )));
    }
    let mut out = Vec::new();
    for s in &seqs {
        let key = s.key_by(|e| e.hash);
        let header = match s.frames.first() {
            Some((_, _, e)) => {
                let r = a.blob_reader(&e.hash)?;
                let mut buf = vec![0u8; (r.size as usize).min(256 << 10)];
                let n = r.read_at(0, &mut buf)?;
                sequence::frame_header(&s.ext, &buf[..n])
            }
            None => sequence::FrameHeader::default(),
        };
        let stem = s.stem();
        out.push(SequenceInfo {
            pattern: s.pattern(),
            first: s.first(),
            last: s.last(),
            frames: s.frames.len(),
            span: s.span(),
            gaps: s.gaps().iter().map(|(x, y)| if x == y { x.to_string() } else { format!("{x}-{y}") }).collect(),
            sequence_key: key.to_hex(),
            bytes: s.frames.iter().map(|f| f.2.size).sum::<u64>(),
            timecode: header.timecode,
            frame_rate: header.rate.map(|(n, d)| format!("{n}/{d}")),
            proxies: proxies_of(a, &key, |ext| format!("{stem}.{ext}"))?,
            stem,
        });
    }
    Ok(FolderInfo { path: path.to_string(), sequences: out })
}
