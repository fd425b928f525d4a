//! `reelfs info`: what is known about a file (content hash, stored bytes, media
//! facts, proxies), or about the image sequences in a folder.

use super::{CommandError, Result};
use crate::archive::objects::{DamagedRange, TreeEntry};
use crate::archive::{Archive, EntryKind, Hash};
use crate::media::facts::{self, MediaFacts};
use crate::media::sequence;
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
}

/// `info` of `spec` (`BRANCH[@COMMIT]/PATH`): a file, or a folder holding image
/// sequences (a folder without one is an error that points at `ls`).
pub fn info(archive: &Path, spec: &str) -> Result<Info> {
    let a = Archive::open(archive)?;
    let r = a.resolve(spec)?;
    if r.entry.kind.is_special() {
        let what = r.entry.extra.target.as_ref().map(|t| format!(" pointing to {t}")).unwrap_or_default();
        return Err(CommandError::invalid(format!(
            "{spec} is a {}{what}: info describes files and folders; `reelfs ls -l` shows it",
            r.entry.kind.word()
        )));
    }
    if r.entry.kind != EntryKind::File {
        return Ok(Info::Folder(folder_info(&a, archive, spec, &r.entry)?));
    }
    let stored_bytes = a.catalog.blob_stored_bytes(&r.entry.hash)?;
    let (media, err) = facts::stored(&a, &r.entry.hash)?.unwrap_or((None, None));
    let media = media.map(|f| facts::in_force(&a, r.commit.as_ref(), &r.path, &r.entry.hash, &f));
    let plain = crate::archive::content_hash::is_plain_blake3(&a.catalog, &r.entry.hash)?;
    let e = &r.entry;
    Ok(Info::File(Box::new(FileInfo {
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
        proxies: proxies_of_file(&a, e)?,
        content_label: crate::archive::content_hash::label(&e.hash, plain),
    })))
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
fn folder_info(a: &Archive, archive: &Path, path: &str, dir: &TreeEntry) -> Result<FolderInfo> {
    let entries = a.list_dir(&dir.hash)?;
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
