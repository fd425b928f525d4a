//! HLS over a clip's preview rungs: the ladder of stored previews with each
//! rung's fragment index (what `reelfs serve` answers `clip.mov.m3u8` with),
//! a timecode range as the frames it covers, and `reelfs hls`, which writes a
//! self-contained HLS folder (playlists plus the rungs' MP4 files) that any
//! static web server, a CDN or `ffmpeg -i file.m3u8` can play.

use super::{CommandError, Result};
use crate::archive::dest::OutDir;
use crate::archive::objects::TreeEntry;
use crate::archive::proxies::proxy_file_name;
use crate::archive::{Archive, BlobReader, Hash};
use crate::media::facts::{self, MediaFacts};
use crate::media::hls::{self, FragmentIndex, FrameRange, Variant, LADDER};
use crate::media::slice::BlobSource;
use crate::timecode::Timecode;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One stored preview rung of a clip, with its fragment index.
pub struct LadderRung {
    /// `preview-low`, `preview`, `preview-high`.
    pub profile: String,
    /// The proxy's content (the bytes the segments are ranges of).
    pub blob: Hash,
    pub reader: Arc<BlobReader>,
    pub index: FragmentIndex,
}

/// A clip's HLS ladder: every preview rung stored for its content.
pub struct Ladder {
    /// `BRANCH/PATH` as given.
    pub spec: String,
    pub entry: TreeEntry,
    /// The facts in force (a recorded timecode applied), when probed.
    pub facts: Option<MediaFacts>,
    /// Lowest rung first.
    pub rungs: Vec<LadderRung>,
}

impl Ladder {
    /// `A001C003.mov` -> `A001C003`, the stem its files are named by.
    pub fn stem(&self) -> String {
        proxy_file_name(&self.entry.name, "x").trim_end_matches(".x").to_string()
    }

    /// The frames `IN-OUT` (timecodes, out exclusive, as slice names write
    /// them) covers; frame N of a preview is frame N of the clip.
    pub fn frame_range(&self, in_label: &str, out_label: &str) -> Result<FrameRange> {
        let facts =
            self.facts.as_ref().ok_or_else(|| CommandError::invalid(format!("{}: not probed media, so it has no timecode", self.spec)))?;
        let (rate, start, frames) = crate::media::slice::timing(&self.spec, facts)?;
        let at = |label: &str| -> Result<i64> { Ok(Timecode::parse_for_media(label.trim(), rate)?.frames_since(&start)?) };
        let (first, end) = (at(in_label)?, at(out_label)?);
        let clip_end = start.checked_add(frames as i64).map(|t| t.to_string_with_sep(':')).unwrap_or_default();
        if end <= first {
            return Err(CommandError::invalid(format!(
                "{in_label}-{out_label}: the out point must come after the in point (out is exclusive)"
            )));
        }
        if first < 0 || end as u64 > frames {
            return Err(CommandError::invalid(format!(
                "{in_label}-{out_label} lies outside {}, which runs {} to {clip_end} (out exclusive)",
                self.spec,
                start.to_string_with_sep(':')
            )));
        }
        Ok(FrameRange { first: first as u64, end: end as u64 })
    }
}

/// The HLS ladder of the clip at `spec` (`BRANCH[@COMMIT]/PATH`). A clip with
/// no preview rendered is an error that says to run `reelfs proxy`.
pub fn ladder(a: &Archive, archive_root: &Path, spec: &str) -> Result<Ladder> {
    let r = a.resolve(spec)?;
    if r.entry.kind != crate::archive::EntryKind::File {
        return Err(CommandError::invalid(format!("{spec} is a folder; give a clip (BRANCH/PATH/clip.mov)")));
    }
    let facts = match facts::stored(a, &r.entry.hash)? {
        Some((Some(f), _)) => Some(facts::in_force(a, r.commit.as_ref(), &r.path, &r.entry.hash, &f)),
        _ => None,
    };
    let mut rungs = Vec::new();
    for profile in LADDER {
        let Some(rec) = a.catalog.proxy(&r.entry.hash, profile)? else { continue };
        let reader = Arc::new(a.blob_reader(&rec.blob)?);
        let index = hls::index(&BlobSource(reader.clone()))
            .map_err(|e| CommandError::invalid(format!("{spec}: its {profile} proxy cannot be streamed: {e}")))?;
        rungs.push(LadderRung { profile: profile.to_string(), blob: rec.blob, reader, index });
    }
    if rungs.is_empty() {
        return Err(CommandError::invalid(format!(
            "{spec} has no preview proxy to stream; render them with `reelfs proxy {} {spec}` (add --profiles preview-high for a 1080p rung)",
            archive_root.display()
        )));
    }
    Ok(Ladder { spec: spec.to_string(), entry: r.entry, facts, rungs })
}

/// `reelfs hls`: what to write.
pub struct HlsRequest {
    pub spec: String,
    /// The folder to write into (created; never inside the archive).
    pub out: PathBuf,
    /// `IN-OUT` timecodes: playlists of only the segments covering it.
    pub range: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HlsRungResult {
    pub profile: String,
    pub playlist: PathBuf,
    pub file: PathBuf,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    /// Peak and average segment bit rate, bit/s.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// Segments listed (all of them, or those covering the range).
    pub segments: usize,
    pub frames: u64,
}

#[derive(Debug, Serialize)]
pub struct HlsResult {
    pub source: String,
    pub master: PathBuf,
    pub rungs: Vec<HlsRungResult>,
    /// Source frames of the range, end exclusive.
    pub range: Option<(u64, u64)>,
}

/// Write `STEM.m3u8` (master), `STEM.PROFILE.m3u8` and `STEM.PROFILE.mp4`
/// for every stored preview rung of the clip into `req.out`.
pub fn export(archive: &Path, req: &HlsRequest) -> Result<HlsResult> {
    let a = Archive::open(archive)?;
    let ladder = ladder(&a, archive, &req.spec)?;
    let range = match &req.range {
        None => None,
        Some(r) => {
            let (i, o) = r.split_once('-').ok_or_else(|| {
                CommandError::invalid(format!("--range {r}: write IN-OUT timecodes, e.g. 01:00:10:00-01:00:20:00 (out exclusive)"))
            })?;
            Some(ladder.frame_range(i, o)?)
        }
    };
    let dir = OutDir::create(a.root(), &req.out)?;
    let stem = ladder.stem();
    let mut rungs = Vec::new();
    let mut variants = Vec::new();
    for r in &ladder.rungs {
        let file = format!("{stem}.{}.mp4", r.profile);
        let playlist = format!("{stem}.{}.m3u8", r.profile);
        dir.write_file(&file, |f| copy_blob(&r.reader, f))?;
        let text = hls::media(&r.index, &file, range).map_err(|e| CommandError::invalid(format!("{}: {e}", req.spec)))?;
        dir.write_file(&playlist, |f| std::io::Write::write_all(f, text.as_bytes()))?;
        let (bandwidth, average_bandwidth) = hls::bandwidth(&r.index);
        rungs.push(HlsRungResult {
            profile: r.profile.clone(),
            playlist: req.out.join(&playlist),
            file: req.out.join(&file),
            width: r.index.width,
            height: r.index.height,
            codecs: r.index.codecs.join(","),
            bandwidth,
            average_bandwidth,
            segments: text.matches("#EXTINF").count(),
            frames: r.index.frames(),
        });
        variants.push(Variant { uri: playlist, index: &r.index });
    }
    let master = format!("{stem}.m3u8");
    let text = hls::master(&variants);
    dir.write_file(&master, |f| std::io::Write::write_all(f, text.as_bytes()))?;
    Ok(HlsResult { source: req.spec.clone(), master: req.out.join(master), rungs, range: range.map(|r| (r.first, r.end)) })
}

fn copy_blob(r: &BlobReader, f: &mut std::fs::File) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(f);
    let mut buf = vec![0u8; 4 << 20];
    let mut off = 0u64;
    while off < r.size {
        let n = r.read_at(off, &mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("the proxy ended at {off} of {} bytes", r.size)));
        }
        std::io::Write::write_all(&mut w, &buf[..n])?;
        off += n as u64;
    }
    std::io::Write::flush(&mut w)
}
