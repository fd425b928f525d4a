//! Timecode slices of archived clips: `clip.mov@IN-OUT[+H]` → a plan that the
//! mount serves and `reelfs slice`/`extract` write out.
//!
//! For QuickTime/MP4 the slice is virtual (see `qt`): a new `moov` pointing into
//! the original's essence, read in place. Other containers are not sliced yet;
//! the error says so, so a user knows why the path does not open.

use super::facts::MediaFacts;
use super::qt::{self, ReadAt, VirtualFile};
use super::remux::{cache::RemuxCache, RemuxJob};
use crate::archive::{ArchiveError, BlobReader};
use crate::timecode::{FrameRate, SliceSpec, SliceUnits, Timecode, TimecodeError};
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

// Lives in `wav` so that `probe` can use it without importing this file (which
// imports `remux`, which imports `probe`).
pub use super::wav::bwf_timecode;

/// The standard rate nearest `num/den`: the rate a variable-frame-rate clip's timecode is
/// counted at, the same conform its proxies record (nearest by ratio, non-drop).
pub fn nominal_rate(num: u32, den: u32) -> FrameRate {
    let fps = (f64::from(num) / f64::from(den.max(1))).max(1.0);
    FrameRate::ALL
        .iter()
        .copied()
        .filter(|r| !r.is_drop_frame())
        .min_by(|x, y| (x.as_f64() / fps).ln().abs().total_cmp(&(y.as_f64() / fps).ln().abs()))
        .unwrap_or(FrameRate::Fps25)
}

/// `"24000/1001"` (or `"25"`) and a drop-frame flag as a SMPTE rate.
fn rate_of(s: &str, df: bool) -> Option<FrameRate> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    FrameRate::from_rational(n.trim().parse().ok()?, d.trim().parse().ok()?, df)
}

/// The rate and start timecode of a probed clip, from its media facts.
///
/// `timecode_rate` (a BWF's iXML rate, or one set with `reelfs tc set --rate`) wins over
/// the video's rate. A variable-rate clip counts timecode at its nominal rate; a clip with
/// no timecode starts at 00:00:00:00 (what `info` calls "assumed").
pub fn clip_timing(path: &str, facts: &serde_json::Value) -> Result<(FrameRate, Timecode, u64), SliceError> {
    let facts = MediaFacts::from_value(facts).ok_or_else(|| SliceError::NotMedia { path: path.into() })?;
    timing(path, &facts)
}

/// `clip_timing` of typed facts.
pub fn timing(path: &str, facts: &MediaFacts) -> Result<(FrameRate, Timecode, u64), SliceError> {
    let not_media = || SliceError::NotMedia { path: path.into() };
    let df = facts.drop_frame;
    let declared = facts.timecode_rate.as_deref().and_then(|r| rate_of(r, df));
    if facts.is_wav() {
        // A WAV has no frame rate: its timecode is counted at the iXML rate, else 25 fps.
        let rate = declared.unwrap_or(FrameRate::Fps25);
        let (n, d) = rate.num_den();
        let (_, audio) = facts.first_audio().ok_or_else(not_media)?;
        let sr = u64::try_from(audio.sample_rate).ok().filter(|r| *r > 0).ok_or_else(not_media)?;
        let samples = audio.duration_samples.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        let start = if facts.timecode_set_by_user() {
            Timecode::parse(facts.timecode.as_deref().unwrap_or("00:00:00:00"), rate)?
        } else {
            bwf_timecode(facts.time_reference_samples.unwrap_or(0), sr, rate)
        };
        let frames = samples as u128 * u128::from(n) / (u128::from(sr) * u128::from(d));
        return Ok((rate, start, frames as u64));
    }
    let rate_s = facts.frame_rate.as_deref().ok_or_else(not_media)?;
    let (n, d) = rate_s.split_once('/').ok_or_else(not_media)?;
    let (n, d): (u32, u32) = (n.parse().map_err(|_| not_media())?, d.parse().map_err(|_| not_media())?);
    let vfr = facts.variable_frame_rate;
    let rate = match (declared, FrameRate::from_rational(n, d, df)) {
        (Some(r), _) => r,
        (None, Some(r)) if !vfr => r,
        (None, _) if vfr && d > 0 => nominal_rate(n, d),
        _ => return Err(SliceError::UnknownRate { path: path.into(), rate: rate_s.into() }),
    };
    let tc = facts.timecode.as_deref().unwrap_or("00:00:00:00");
    let start = Timecode::parse(tc, rate)?;
    let frames = facts.duration_frames.ok_or_else(not_media)?;
    Ok((rate, start, frames))
}

/// Where a clip's frames are in time and what timecode each carries: maps slice points
/// (timecode, frame number, seconds) to source frame indices, and back to labels.
struct Clock {
    rate: FrameRate,
    start: Timecode,
    /// Presentation time of each displayed frame (QuickTime, when needed) and its timescale.
    times: Option<(Vec<i64>, u32)>,
    /// Variable frame rate: timecode counts the nominal-rate conform, not source frames.
    vfr: bool,
    /// Timecode runs (source frame, timecode at it) when the clip's timecode breaks.
    runs: Vec<(i64, Timecode)>,
}

impl Clock {
    /// The first source frame shown at or after `num/den` seconds.
    fn frame_at(&self, num: u128, den: u128) -> i64 {
        match &self.times {
            Some((t, ts)) => {
                let target = (num * u128::from(*ts)).div_ceil(den.max(1)) as i64;
                t.partition_point(|&x| x < target) as i64
            }
            None => {
                let (rn, rd) = self.rate.num_den();
                (num * u128::from(rn)).div_ceil(den.max(1) * u128::from(rd)) as i64
            }
        }
    }

    /// Source frame of a conformed (timecode-counted) frame index.
    fn source_frame(&self, conformed: i64) -> i64 {
        if !self.vfr || self.times.is_none() || conformed < 0 {
            return conformed;
        }
        let (rn, rd) = self.rate.num_den();
        self.frame_at(conformed as u128 * u128::from(rd), u128::from(rn))
    }

    /// Conformed index of source frame `i` (the nominal-rate slot its time falls in).
    fn conformed(&self, i: i64) -> i64 {
        match (&self.times, self.vfr) {
            (Some((t, ts)), true) if !t.is_empty() && i >= 0 => {
                let (rn, rd) = self.rate.num_den();
                let last = t.len() - 1;
                let time = if (i as usize) <= last { t[i as usize] } else { t[last] + (i as usize - last) as i64 };
                ((time.max(0) as u128 * u128::from(rn) + u128::from(*ts) * u128::from(rd) / 2) / (u128::from(*ts) * u128::from(rd)).max(1))
                    as i64
            }
            _ => i,
        }
    }

    /// The timecode source frame `i` carries.
    fn tc_at(&self, i: i64) -> Timecode {
        let k = self.runs.partition_point(|&(f, _)| f <= i);
        if k > 0 {
            let (f, tc) = self.runs[k - 1];
            return tc + (i - f);
        }
        self.start + self.conformed(i)
    }

    /// Source frame of a timecode label: within the run that holds it when the timecode
    /// breaks (the first such run), else counted from the clip's start.
    fn frame_of_tc(&self, tc: Timecode, frames: i64) -> i64 {
        for (k, &(f, run_tc)) in self.runs.iter().enumerate() {
            let run_end = self.runs.get(k + 1).map_or(frames, |r| r.0);
            let off = tc.frames() - run_tc.frames();
            if off >= 0 && f + off < run_end {
                return f + off;
            }
        }
        self.source_frame(tc.frames() - self.start.frames())
    }
}

/// Resolve `spec` against a clip and plan its bytes. `cache_dir` is where
/// remuxed slices of non-QuickTime containers are kept (ARCHIVE/cache).
pub fn plan(path: &str, spec: &SliceSpec, facts: &MediaFacts, reader: Arc<BlobReader>, cache_dir: &Path) -> Result<SlicePlan, SliceError> {
    let (rate, clip_start, frames) = timing(path, facts)?;
    let container = facts.container.as_str();
    let is_qt = container.contains("mov");
    let vfr = facts.variable_frame_rate;
    let user_tc = facts.timecode_set_by_user();
    // Frame times are read from the tables only when the slice depends on them.
    let times =
        if is_qt && (vfr || spec.units() == SliceUnits::Seconds) { Some(qt::frame_times(&BlobSource(reader.clone()))?) } else { None };
    let frames = times.as_ref().map_or(frames, |t| t.0.len() as u64) as i64;
    let mut runs = Vec::new();
    if !user_tc {
        for b in facts.timecode_breaks.iter().flatten() {
            runs.push((b.frame as i64, Timecode::parse(&b.timecode, rate)?));
        }
    }
    let clock = Clock { rate, start: clip_start, times, vfr, runs };
    let (in_f, out_f, range) = match spec.units() {
        SliceUnits::Timecode => {
            let r = spec.resolve(rate)?;
            let a = clock.frame_of_tc(r.range.start, frames);
            let b = a + clock.source_frame(r.range.end.frames() - clip_start.frames())
                - clock.source_frame(r.range.start.frames() - clip_start.frames());
            (a, b, format!("{}-{}", r.range.start, r.range.end))
        }
        SliceUnits::Frames => {
            let (a, b) = spec.frame_points().unwrap_or(Ok((0, 0)))?;
            (a.min(i64::MAX as u64) as i64, b.min(i64::MAX as u64) as i64, format!("frames {a}-{b}"))
        }
        SliceUnits::Seconds => {
            let (a, b) = spec.millis_points().unwrap_or(Ok((0, 0)))?;
            let fmt = |ms: u64| format!("{}.{:03}s", ms / 1000, ms % 1000);
            (clock.frame_at(a.into(), 1000), clock.frame_at(b.into(), 1000), format!("{}-{}", fmt(a), fmt(b)))
        }
    };
    if in_f < 0 || out_f > frames || out_f <= in_f {
        return Err(SliceError::OutOfRange {
            path: path.into(),
            range,
            clip_start: format!("{} (frame 0)", clock.tc_at(0)),
            clip_end: format!("{} (frame {frames})", clock.tc_at(frames - 1) + 1),
        });
    }
    // Handles are clamped to the media; the handles actually given are reported.
    let h = spec.handles.frames(rate).max(0);
    let first = (in_f - h).max(0);
    let end = (out_f + h).min(frames);
    let start_tc = clock.tc_at(first);
    let media_err = |msg: String| SliceError::Media { path: path.into(), msg };
    // A start timecode the user recorded replaces the file's in the slice's tmcd sample.
    let tc_start = match u32::try_from(start_tc.frames()) {
        Ok(value) if user_tc => {
            let (rate_num, rate_den) = rate.num_den();
            let (fps, drop_frame) = (rate.nominal_fps() as u8, rate.is_drop_frame());
            Some(qt::TcStart { value, rate_num, rate_den, fps, drop_frame })
        }
        _ => None,
    };
    let mut remuxed = None;
    let (vf, cached, method) = if is_qt {
        let src = BlobSource(reader.clone());
        (Some(qt::plan_slice_cached(&src, &reader.hash.0, first as u64, end as u64, tc_start)?), None, "zero-copy")
    } else if facts.is_wav() {
        let layout = super::wav::parse(&BlobSource(reader.clone())).map_err(media_err)?;
        let sr = u128::from(layout.sample_rate);
        let (n, d) = rate.num_den();
        let at = |f: i64| (f as u128 * sr * u128::from(d) / u128::from(n)) as u64;
        let s0 = at(first);
        let s1 = at(end).min(layout.samples());
        // A recorded start timecode goes into the slice's bext as samples since midnight.
        let tr = user_tc.then(|| at(start_tc.frames()));
        (Some(layout.slice_at(s0, s1, tr)), None, "zero-copy")
    } else if container.contains("mxf") || facts.has_video_stream() {
        let job = RemuxJob {
            reader: reader.clone(),
            name_hint: Path::new(path).file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default(),
            first: first as u64,
            end: end as u64,
            start_tc: start_tc.to_string(),
            reel: facts.reel.clone(),
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
        start_tc: start_tc.to_string(),
        in_tc: clock.tc_at(in_f).to_string(),
        out_tc: (clock.tc_at(out_f - 1) + 1).to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwf_time_reference_wraps_at_24_hours() {
        // The value the issue saw print as 4270079646:41:31:07.
        let huge = u64::MAX / 7;
        let tc = bwf_timecode(huge, 48_000, FrameRate::Fps25);
        assert!(tc.frames() < 24 * 3600 * 25, "{tc}");
        assert_eq!(tc.to_string().len(), 11, "{tc}");
        // 25 h of samples is 01:00:00:00 the next day.
        assert_eq!(bwf_timecode(25 * 3600 * 48_000, 48_000, FrameRate::Fps25).to_string(), "01:00:00:00");
        // 01:00:00:00 at 23.976 is 86400 frames, i.e. 86400 * 1001/24000 s of samples.
        let tr = 86_400u64 * 1001 * 48_000 / 24_000;
        assert_eq!(bwf_timecode(tr, 48_000, FrameRate::Fps23_976).to_string(), "01:00:00:00");
        // 29.97 DF wraps at its own day length (2589408 frames).
        let day = (2_589_408u64 * 1001 * 48_000).div_ceil(30_000);
        assert_eq!(bwf_timecode(day, 48_000, FrameRate::Fps29_97Df).to_string(), "00:00:00;00");
    }

    #[test]
    fn vfr_counts_at_the_nearest_standard_rate() {
        assert_eq!(nominal_rate(4800, 179), FrameRate::Fps25); // 26.8 fps average
        assert_eq!(nominal_rate(30, 1), FrameRate::Fps30);
        assert_eq!(nominal_rate(2997, 100), FrameRate::Fps29_97Ndf);
        assert_eq!(nominal_rate(1, 1), FrameRate::Fps23_976);
        let facts = serde_json::json!({"container": "mov,mp4,m4a,3gp,3g2,mj2", "frame_rate": "4800/179",
            "variable_frame_rate": true, "duration_frames": 300, "timecode": null});
        let (rate, start, frames) = clip_timing("x.mp4", &facts).unwrap();
        assert_eq!((rate, start.frames(), frames), (FrameRate::Fps25, 0, 300));
        // A constant odd rate is still refused, with the rate named.
        let facts = serde_json::json!({"frame_rate": "4800/179", "duration_frames": 3});
        assert!(clip_timing("x.mp4", &facts).unwrap_err().to_string().contains("4800/179"));
    }

    #[test]
    fn wav_timing_uses_the_declared_rate() {
        let facts = serde_json::json!({"container": "wav", "time_reference_samples": 86_400u64 * 1001 * 2,
            "timecode_rate": "24000/1001", "streams": [{"kind": "audio", "sample_rate": 48000, "duration_samples": 48048}]});
        let (rate, start, frames) = clip_timing("a.wav", &facts).unwrap();
        assert_eq!(rate, FrameRate::Fps23_976);
        assert_eq!(start.to_string(), "01:00:00:00");
        assert_eq!(frames, 24);
    }

    #[test]
    fn clock_maps_vfr_times_and_breaks() {
        // Frames at 0, 40, 80, 200, 240 ms (timescale 1000): a stall between 80 and 200.
        let c = Clock {
            rate: FrameRate::Fps25,
            start: Timecode::from_frames(0, FrameRate::Fps25),
            times: Some((vec![0, 40, 80, 200, 240], 1000)),
            vfr: true,
            runs: vec![],
        };
        assert_eq!(c.frame_at(100, 1000), 3); // first frame shown at or after 0.1 s
        assert_eq!(c.frame_at(80, 1000), 2);
        assert_eq!(c.source_frame(5), 3); // slot 5 = 0.2 s
        assert_eq!(c.conformed(3), 5);
        assert_eq!(c.tc_at(4).to_string(), "00:00:00:06");
        let r = FrameRate::Fps24;
        let c = Clock {
            rate: r,
            start: Timecode::from_frames(86_400, r),
            times: None,
            vfr: false,
            runs: vec![(0, Timecode::from_frames(86_400, r)), (48, Timecode::from_frames(2 * 86_400, r))],
        };
        assert_eq!(c.tc_at(50).to_string(), "02:00:00:02");
        assert_eq!(c.tc_at(47).to_string(), "01:00:01:23");
        assert_eq!(c.frame_of_tc(Timecode::from_frames(2 * 86_400 + 10, r), 100), 58);
        assert_eq!(c.frame_of_tc(Timecode::from_frames(86_400 + 10, r), 100), 10);
    }
}
