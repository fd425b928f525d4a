//! Timecode slices of archived clips: `clip.mov@IN-OUT[+H]` → a plan that the
//! mount serves and `reelfs slice`/`extract` write out.
//!
//! For QuickTime/MP4 the slice is virtual (see `qt`): a new `moov` pointing into
//! the original's essence, read in place. Other containers are not sliced yet;
//! the error says so, so a user knows why the path does not open.

use super::qt::{self, ReadAt, VirtualFile};
use super::remux::{cache::RemuxCache, RemuxJob};
use crate::archive::{ArchiveError, BlobReader};
use crate::timecode::{FrameRate, SliceSpec, Timecode, TimecodeError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SliceError {
    #[error("{0}")]
    Timecode(#[from] TimecodeError),
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    Qt(#[from] qt::QtError),
    #[error("{path}: not media with video and timecode (was it probed? `reelfs info` shows its facts)")]
    NotMedia { path: String },
    #[error("{path}: frame rate {rate} is not a SMPTE rate reelfs can slice")]
    UnknownRate { path: String, rate: String },
    #[error("{path}: {range} lies outside the clip, which runs {clip_start} to {clip_end} (out exclusive)")]
    OutOfRange { path: String, range: String, clip_start: String, clip_end: String },
    #[error("{path}: slicing {container} is not supported yet (zero-copy slices are QuickTime/MP4 only)")]
    Unsupported { path: String, container: String },
    #[error("{path}: {msg}")]
    Media { path: String, msg: String },
}

/// Adapts the archive's reader to what the QuickTime planner reads from.
pub struct BlobSource(pub Arc<BlobReader>);

impl ReadAt for BlobSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(offset, buf).map_err(|e| std::io::Error::other(e.to_string()))
    }
    fn len(&self) -> u64 {
        self.0.size
    }
}

/// A resolved slice, ready to serve.
#[derive(Debug, Clone, Serialize)]
pub struct SlicePlan {
    /// Video frame indices in the source, end exclusive, handles included.
    pub first_frame: u64,
    pub end_frame: u64,
    /// Timecode of the slice's first frame (in point minus the handles given).
    pub start_tc: String,
    pub in_tc: String,
    pub out_tc: String,
    pub rate: String,
    pub handles_before: u64,
    pub handles_after: u64,
    pub handles_requested: u64,
    pub size: u64,
    /// How the bytes are made: "zero-copy" (QuickTime, WAV) or "remuxed" (cached).
    pub method: String,
    #[serde(skip)]
    pub file: Option<Arc<VirtualFile>>,
    /// For remuxed slices: the cached MOV in the archive's cache/.
    pub cached: Option<PathBuf>,
    #[serde(skip)]
    pub remux: Option<RemuxedSlice>,
}

/// A remuxed slice's way back to its bytes. A plan kept for a name (the mount keeps
/// one per looked-up slice) holds no open file, so the cache can evict it; an open
/// file holds the descriptor ([`SlicePlan::for_reading`]), so eviction never takes
/// bytes from under a reader.
#[derive(Clone)]
pub struct RemuxedSlice {
    job: Arc<RemuxJob>,
    cache: Arc<RemuxCache>,
    file: Option<Arc<std::fs::File>>,
}

impl std::fmt::Debug for RemuxedSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemuxedSlice({:?}, open: {})", self.job, self.file.is_some())
    }
}

impl RemuxedSlice {
    /// The cached file, made again if it was evicted since the plan was made.
    fn open(&self) -> std::io::Result<Arc<std::fs::File>> {
        match &self.file {
            Some(f) => Ok(f.clone()),
            None => self.job.cached(&self.cache).map(|(_, f)| f).map_err(std::io::Error::other),
        }
    }
}

impl SlicePlan {
    /// The byte range of the source this slice reads in place, and how many
    /// bytes of the slice come before it (new headers): for read-ahead.
    pub fn source_span(&self) -> (u64, u64, u64) {
        let Some(vf) = &self.file else { return (0, 0, 0) };
        let mut head = 0u64;
        let mut span: Option<(u64, u64)> = None;
        for seg in &vf.segments {
            match seg {
                qt::Segment::Source { offset, len } => {
                    span = Some(match span {
                        Some((a, b)) => (a.min(*offset), b.max(offset + len)),
                        None => (*offset, offset + len),
                    });
                }
                qt::Segment::Inline(b) if span.is_none() => head += b.len() as u64,
                _ => {}
            }
        }
        let (a, b) = span.unwrap_or((0, 0));
        (a, b, head)
    }

    /// Bytes of the slice at `offset`, from the virtual layout or the cache file.
    pub fn read_at(&self, reader: &Arc<BlobReader>, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(vf) = &self.file {
            return vf.read_at(&BlobSource(reader.clone()), offset, buf);
        }
        if let Some(r) = &self.remux {
            use std::os::unix::fs::FileExt;
            return FileExt::read_at(&*r.open()?, buf, offset);
        }
        Ok(0)
    }

    /// The plan an open file reads through: a remuxed slice's cache file opened
    /// (and so kept, even if evicted) for as long as this copy lives.
    pub fn for_reading(&self) -> std::io::Result<SlicePlan> {
        let mut p = self.clone();
        if let Some(r) = &mut p.remux {
            r.file = Some(r.open()?);
        }
        Ok(p)
    }
}

/// The rate and start timecode of a probed clip, from its media facts.
pub fn clip_timing(path: &str, facts: &serde_json::Value) -> Result<(FrameRate, Timecode, u64), SliceError> {
    let not_media = || SliceError::NotMedia { path: path.into() };
    if is_wav(facts) {
        // A WAV has no frame rate: its timecode is counted at 25 fps (as `info`
        // shows it), from the bext time_reference.
        let rate = FrameRate::Fps25;
        let tr = facts["time_reference_samples"].as_u64().unwrap_or(0);
        let audio = facts["streams"].as_array().and_then(|a| a.iter().find(|s| s["kind"] == "audio")).ok_or_else(not_media)?;
        let sr = audio["sample_rate"].as_u64().filter(|r| *r > 0).ok_or_else(not_media)?;
        let samples = audio["duration_samples"].as_u64().unwrap_or(0);
        let start = Timecode::from_frames((tr as u128 * 25 / sr as u128) as i64, rate);
        return Ok((rate, start, (samples as u128 * 25 / sr as u128) as u64));
    }
    let rate_s = facts["frame_rate"].as_str().ok_or_else(not_media)?;
    let (n, d) = rate_s.split_once('/').ok_or_else(not_media)?;
    let (n, d): (u32, u32) = (n.parse().map_err(|_| not_media())?, d.parse().map_err(|_| not_media())?);
    let df = facts["drop_frame"].as_bool().unwrap_or(false);
    let rate = FrameRate::from_rational(n, d, df).ok_or_else(|| SliceError::UnknownRate { path: path.into(), rate: rate_s.into() })?;
    let tc = facts["timecode"].as_str().unwrap_or("00:00:00:00");
    let start = Timecode::parse(tc, rate)?;
    let frames = facts["duration_frames"].as_u64().ok_or_else(not_media)?;
    Ok((rate, start, frames))
}

fn is_wav(facts: &serde_json::Value) -> bool {
    facts["container"].as_str().map(|c| c == "wav" || c.starts_with("wav")).unwrap_or(false)
}

/// Resolve `spec` against a clip and plan its bytes. `cache_dir` is where
/// remuxed slices of non-QuickTime containers are kept (ARCHIVE/cache).
pub fn plan(path: &str, spec: &SliceSpec, facts: &serde_json::Value, reader: Arc<BlobReader>, cache_dir: &Path) -> Result<SlicePlan, SliceError> {
    let (rate, clip_start, frames) = clip_timing(path, facts)?;
    let r = spec.resolve(rate)?;
    let clip_end = clip_start + frames as i64;
    let in_f = r.range.start.frames() - clip_start.frames();
    let out_f = r.range.end.frames() - clip_start.frames();
    if in_f < 0 || out_f > frames as i64 {
        return Err(SliceError::OutOfRange {
            path: path.into(),
            range: format!("{}-{}", r.range.start, r.range.end),
            clip_start: clip_start.to_string(),
            clip_end: clip_end.to_string(),
        });
    }
    // Handles are clamped to the media; the handles actually given are reported.
    let h = r.handle_frames.max(0);
    let first = (in_f - h).max(0);
    let end = (out_f + h).min(frames as i64);
    let container = facts["container"].as_str().unwrap_or("");
    let media_err = |msg: String| SliceError::Media { path: path.into(), msg };
    let mut remuxed = None;
    let (vf, cached, method) = if container.contains("mov") {
        let src = BlobSource(reader.clone());
        (Some(qt::plan_slice_cached(&src, &reader.hash.0, first as u64, end as u64)?), None, "zero-copy")
    } else if is_wav(facts) {
        let layout = super::wav::parse(&BlobSource(reader.clone())).map_err(media_err)?;
        let sr = layout.sample_rate as u128;
        let s0 = (first as u128 * sr / 25) as u64;
        let s1 = ((end as u128 * sr / 25) as u64).min(layout.samples());
        (Some(layout.slice(s0, s1)), None, "zero-copy")
    } else if container.contains("mxf") || facts["streams"].as_array().map(|a| a.iter().any(|s| s["kind"] == "video")).unwrap_or(false) {
        let job = RemuxJob {
            reader: reader.clone(),
            name_hint: Path::new(path).file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default(),
            first: first as u64,
            end: end as u64,
            start_tc: (clip_start + first).to_string(),
            reel: facts["reel"].as_str().map(str::to_string),
        };
        let cache = super::remux::cache::for_cache_dir(cache_dir);
        let (out, file) = job.cached(&cache).map_err(|e| media_err(e.to_string()))?;
        let size = file.metadata().map_err(|e| media_err(format!("{}: {e}", out.display())))?.len();
        remuxed = Some((RemuxedSlice { job: Arc::new(job), cache, file: None }, size));
        (None, Some(out), "remuxed")
    } else {
        return Err(SliceError::Unsupported { path: path.into(), container: container.into() });
    };
    let size = match (&vf, &remuxed) {
        (Some(v), _) => v.len,
        (None, Some((_, size))) => *size,
        _ => 0,
    };
    Ok(SlicePlan {
        first_frame: first as u64,
        end_frame: end as u64,
        start_tc: (clip_start + first).to_string(),
        in_tc: r.range.start.to_string(),
        out_tc: r.range.end.to_string(),
        rate: rate.to_string(),
        handles_before: (in_f - first) as u64,
        handles_after: (end - out_f) as u64,
        handles_requested: h as u64,
        size,
        method: method.into(),
        file: vf.map(Arc::new),
        cached,
        remux: remuxed.map(|(r, _)| r),
    })
}

/// Read bytes of a planned virtual layout.
pub fn read_at(vf: &VirtualFile, reader: &Arc<BlobReader>, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    vf.read_at(&BlobSource(reader.clone()), offset, buf)
}
