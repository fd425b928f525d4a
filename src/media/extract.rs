//! The clips of a branch that a pull (an EDL event, an OTIO clip, a manual
//! range) can be matched against: probed media with video, a frame rate and a
//! timecode, and what the archive knows of their damage. `reelfs extract`
//! itself is `commands::extract`.

use super::slice;
use crate::archive::{Archive, EntryKind, Hash};
use crate::timecode::{FrameRate, TcRange, Timecode};
use std::path::Path;

/// A probed clip in a branch that a pull can be matched against.
#[derive(Debug, Clone)]
pub struct Clip {
    pub path: String,
    pub blob: Hash,
    pub reel: Option<String>,
    pub stem: String,
    pub rate: FrameRate,
    pub start: Timecode,
    pub frames: u64,
    pub facts: super::facts::MediaFacts,
}

impl Clip {
    pub(crate) fn contains(&self, r: &TcRange) -> bool {
        r.start.frames() >= self.start.frames() && r.end.frames() <= self.start.frames() + self.frames as i64
    }
    /// EDL reel fields are often truncated to 8 characters; compare case-blind.
    pub(crate) fn matches_reel(&self, reel: &str) -> bool {
        let r = reel.trim().to_ascii_uppercase();
        if r.is_empty() {
            return false;
        }
        let cands = [self.reel.clone().unwrap_or_default(), self.stem.clone()];
        cands.iter().any(|c| {
            let c = c.to_ascii_uppercase();
            !c.is_empty() && (c == r || (r.len() >= 8 && c.starts_with(&r)) || c.split(['_', '.', ' ']).next() == Some(r.as_str()))
        })
    }
}

/// Every clip with video and a frame rate below `spec` (`BRANCH[/PATH]`).
pub fn index_clips(archive: &Archive, spec: &str) -> crate::archive::Result<Vec<Clip>> {
    let root = archive.resolve(spec)?;
    let mut out = Vec::new();
    let mut stack = vec![(root.entry.clone(), format!("{}/{}", root.branch, root.path).trim_end_matches('/').to_string())];
    if root.commit.is_none() {
        return Ok(out);
    }
    while let Some((e, path)) = stack.pop() {
        match e.kind {
            EntryKind::Dir => {
                for c in archive.list_dir(&e.hash)? {
                    let p = format!("{path}/{}", c.name);
                    stack.push((c, p));
                }
            }
            // Links are not followed: a clip is indexed where it is stored.
            EntryKind::Symlink | EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDevice | EntryKind::BlockDevice => {}
            EntryKind::File => {
                let Some((Some(facts), _)) = super::facts::stored(archive, &e.hash)? else { continue };
                let facts =
                    super::facts::in_force(archive, root.commit.as_ref(), path.split_once('/').map_or("", |p| p.1), &e.hash, &facts);
                let Ok((rate, start, frames)) = slice::timing(&path, &facts) else { continue };
                let stem = Path::new(&e.name).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                out.push(Clip { path, blob: e.hash, reel: facts.reel.clone(), stem, rate, start, frames, facts });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Why the archive holds `clip` as damaged, if it does: `check --deep` found chunks of
/// its bytes damaged, or its proxy render found frames that do not decode. A catalog
/// error here only means "not known to be damaged"; the pull itself will report it.
pub fn damage_of(archive: &Archive, clip: &Clip) -> Option<String> {
    let cat = &archive.catalog;
    let bad_chunks = cat
        .extents(&clip.blob)
        .ok()?
        .iter()
        .any(|e| cat.has_chunk(&e.chunk).unwrap_or(false) && !cat.has_good_chunk(&e.chunk).unwrap_or(true));
    if bad_chunks {
        return Some("check --deep found damaged chunks in its archived bytes".into());
    }
    for p in cat.proxies_of(&clip.blob).ok()? {
        let noted = p.note.to_ascii_lowercase();
        if p.partial_at.is_some() || noted.contains("damaged") || noted.contains("do not decode") {
            return Some(format!("its {} proxy render found frames that do not decode: {}", p.profile, p.note));
        }
    }
    None
}
