//! `reelfs ls`: the branches, or a folder's entries with their media facts.

use super::Result;
use crate::archive::{Archive, EntryKind};
use std::path::Path;

/// A branch as `ls --json` lists it at the top.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LsBranch {
    pub name: String,
    /// Always "branch" (entries of a folder say "file" or "dir").
    pub kind: &'static str,
    pub head: Option<String>,
}

/// The facts `ls` shows of a media file (the keys of `ls --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LsMedia {
    pub duration_frames: Option<u64>,
    pub duration_seconds: Option<f64>,
    pub timecode: Option<String>,
    pub drop_frame: Option<bool>,
    pub frame_rate: Option<String>,
    pub frame_rate_fps: Option<f64>,
    pub codec: Option<String>,
    pub reel: Option<String>,
    pub timecode_source: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LsEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Octal, as `ls -l` users read it.
    pub mode: String,
    pub mtime_ns: i64,
    pub hash: String,
    /// The recorded owner (null: not recorded, an entry from before owners were kept).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    #[serde(flatten)]
    pub media: Option<LsMedia>,
    /// A symlink's `target`, a device's `rdev` {major, minor}, a hard link's
    /// `link_group` (names with the same group are one file); absent otherwise.
    #[serde(flatten)]
    pub extra: crate::archive::objects::EntryExtra,
    /// Present for files that were probed as media: true when FFmpeg found them damaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<bool>,
    /// The facts in force (a recorded timecode applied), for a long listing.
    #[serde(skip)]
    pub facts: Option<crate::media::facts::MediaFacts>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Listing {
    Branches(Vec<LsBranch>),
    Entries(Vec<LsEntry>),
}

/// List `spec` (`BRANCH[@COMMIT][/PATH]`); an empty spec lists the branches.
pub fn ls(archive: &Path, spec: &str) -> Result<Listing> {
    let a = Archive::open(archive)?;
    if spec.is_empty() {
        let branches = a.branches()?;
        return Ok(Listing::Branches(
            branches.into_iter().map(|(name, h)| LsBranch { name, kind: "branch", head: h.map(|h| h.to_hex()) }).collect(),
        ));
    }
    let r = a.resolve(spec)?;
    let entries = match r.entry.kind {
        EntryKind::Dir if r.commit.is_none() => Vec::new(),
        EntryKind::Dir => a.list_dir(&r.entry.hash)?,
        _ => vec![r.entry.clone()],
    };
    let mut out = Vec::new();
    for e in entries {
        let probed = if e.kind == EntryKind::File { crate::media::facts::stored(&a, &e.hash)? } else { None };
        let in_branch = if r.entry.kind == EntryKind::File {
            r.path.clone()
        } else {
            format!("{}/{}", r.path, e.name).trim_start_matches('/').to_string()
        };
        let (facts, damaged) = match probed {
            Some((f, err)) => {
                (f.map(|f| crate::media::facts::in_force(&a, r.commit.as_ref(), &in_branch, &e.hash, &f)), Some(err.is_some()))
            }
            None => (None, None),
        };
        let media = facts.as_ref().map(|f| LsMedia {
            duration_frames: f.duration_frames,
            duration_seconds: f.duration_seconds,
            timecode: f.timecode.clone(),
            drop_frame: Some(f.drop_frame),
            frame_rate: f.frame_rate.clone(),
            frame_rate_fps: f.frame_rate_fps,
            codec: f.codec.clone(),
            reel: f.reel.clone(),
            timecode_source: f.timecode_source.clone(),
        });
        out.push(LsEntry {
            mode: format!("{:o}", e.mode),
            hash: e.hash.to_hex(),
            uid: e.owner.map(|o| o.uid),
            gid: e.owner.map(|o| o.gid),
            name: e.name,
            kind: e.kind,
            size: e.size,
            mtime_ns: e.mtime_ns,
            extra: e.extra,
            media,
            damaged,
            facts,
        });
    }
    Ok(Listing::Entries(out))
}
