//! QuickTime/MP4 reading and zero-copy virtual timecode slices.
//!
//! A slice (`clip.mov@01:00:10:00-01:00:20:00`) is served as a virtual file: a freshly
//! built `ftyp`+`moov`+`mdat` header (plus the slice's 4-byte tmcd sample) held in memory,
//! followed by one byte range of the original read in place. Only the sample tables are
//! rewritten; essence bytes are never copied, so a slice of a 1 TB camera original costs a
//! few kilobytes of memory and no disk.
//!
//! Layout decisions:
//! - `moov` comes before `mdat` (fast start) so a player that reads the slice over SMB/NFS
//!   can start without seeking to the end.
//! - The mdat payload is the *smallest single* source range holding every needed sample of
//!   every kept track. Interleaved samples of frames or tracks outside the slice that fall
//!   inside that range ride along as dead bytes: one range keeps reads sequential on the
//!   original, which matters on tape-backed and chunked storage more than a few MB do.
//! - Kept tracks: the first video track, every sound track that has audio in the range,
//!   and the timecode track. Other tracks (text, chapters, extra video) are dropped and
//!   track references to them are removed.
//! - Source edit lists are honoured for the *first* non-empty edit only (what ffmpeg and
//!   cameras write); leading empty edits (delays) are ignored when aligning audio.
//! - VFR video works (frame times come from the tables), but audio is aligned to the
//!   video's presentation times, which for CFR equals
//!   `floor(frame * sample_rate * frame_duration / video_timescale)`.

pub(crate) mod boxes;
mod movie;
mod parsed;
mod slice;
mod tables;
#[cfg(test)]
mod tests;
mod timing;

use std::io;
use std::sync::Arc;

/// Errors of the QuickTime reader and slice planner. Damaged or hostile input always ends
/// here, never in a panic.
#[derive(Debug, thiserror::Error)]
pub enum QtError {
    #[error("I/O error reading the source: {0}")]
    Io(#[from] io::Error),
    #[error("not a QuickTime/MP4 file: {0}")]
    NotQuickTime(String),
    #[error("truncated QuickTime file: {0}")]
    Truncated(String),
    #[error("malformed QuickTime file: {0}")]
    Malformed(String),
    #[error("unsupported QuickTime feature: {0}")]
    Unsupported(String),
    #[error("frame range {first}..{end} is outside the media's {frames} frames (or empty)")]
    Range { first: u64, end: u64, frames: u64 },
}

/// Random access to the source bytes (the archive implements it over its chunks). One
/// trait shared with the pack codec: it lives in archive/read_at.rs.
pub use crate::archive::read_at::ReadAt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    Timecode,
    /// Any other handler, by its four-character code.
    Other(String),
}

#[derive(Debug, Clone)]
pub struct TrackInfo {
    pub id: u32,
    pub kind: TrackKind,
    /// Sample description format (`apch`, `avc1`, `in24`, `sowt`, `mp4a`, `tmcd`, ...).
    pub codec: String,
    /// Media timescale (mdhd).
    pub timescale: u32,
    /// Media duration in `timescale` units (sum of stts).
    pub duration: u64,
    /// Samples in the tables; for PCM one sample is one audio frame.
    pub sample_count: u64,
    pub width: u16,
    pub height: u16,
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
}

/// The QuickTime timecode sample entry plus the track's single sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmcdInfo {
    /// The tmcd sample: frame number of the first frame (a count of frames, so for drop
    /// frame it is not the label digits).
    pub start_frame: u32,
    /// Every sample as (video display frame it starts at, frame number); more than one
    /// means the timecode breaks inside the clip.
    pub samples: Vec<(u64, u32)>,
    pub timescale: u32,
    pub frame_duration: u32,
    /// Number of frames per second, rounded (24 for 23.976, 30 for 29.97).
    pub fps: u8,
    pub drop_frame: bool,
    /// Raw flags: 0x1 drop frame, 0x2 24-hour max, 0x4 negative allowed, 0x8 counter.
    pub flags: u32,
    pub reel: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MovieInfo {
    /// Movie timescale (mvhd).
    pub timescale: u32,
    /// Movie duration in `timescale` units.
    pub duration: u64,
    pub tracks: Vec<TrackInfo>,
    pub timecode: Option<TmcdInfo>,
    /// Frames the source presents (after its edit list), i.e. valid frame indices are
    /// `0..video_frame_count`.
    pub video_frame_count: u64,
    /// (video media timescale, sample delta): 24000/1001 for 23.976.
    pub video_frame_duration: (u32, u32),
    /// Whether `moov` precedes `mdat` in the source.
    pub moov_first: bool,
}

/// One piece of a virtual file: bytes held in memory, or a range of the source.
#[derive(Debug, Clone)]
pub enum Segment {
    Inline(Arc<[u8]>),
    Source { offset: u64, len: u64 },
}

impl Segment {
    pub fn len(&self) -> u64 {
        match self {
            Segment::Inline(b) => b.len() as u64,
            Segment::Source { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A planned slice. Cheap to clone and to keep per open file handle.
#[derive(Debug, Clone)]
pub struct VirtualFile {
    pub segments: Vec<Segment>,
    pub len: u64,
}

impl VirtualFile {
    /// Serves bytes of the virtual file. Returns fewer than `buf.len()` bytes only at the
    /// end of the virtual file; a source that ends before the planned range is an
    /// `UnexpectedEof` error (the original changed or was damaged after planning).
    pub fn read_at(&self, src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0usize;
        let mut seg_start = 0u64;
        for seg in &self.segments {
            let seg_len = seg.len();
            let pos = offset + done as u64;
            if done == buf.len() {
                break;
            }
            if pos >= seg_start + seg_len {
                seg_start += seg_len;
                continue;
            }
            let within = pos - seg_start;
            let want = ((seg_len - within) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + want];
            match seg {
                Segment::Inline(b) => out.copy_from_slice(&b[within as usize..within as usize + want]),
                Segment::Source { offset: so, .. } => boxes::read_exact_at(src, so + within, out)?,
            }
            done += want;
            seg_start += seg_len;
        }
        Ok(done)
    }
}

/// Parses the movie header of a QuickTime/MP4 file.
pub fn read_movie(src: &dyn ReadAt) -> Result<MovieInfo, QtError> {
    movie::load(src)?.info(src)
}

/// Where the video sample of display frame `frame` (0 = the first frame the
/// source shows) lies in the file: (byte offset, length). A player that seeks
/// by byte lands on the frame there (a long-GOP frame still needs its
/// reference frames to decode).
pub fn frame_sample(src: &dyn ReadAt, frame: u64) -> Result<(u64, u64), QtError> {
    let m = movie::load(src)?;
    let v = m.video().ok_or_else(|| QtError::Unsupported("no video track".into()))?;
    let timing = m.video_timing(v)?;
    if frame >= timing.count() {
        return Err(QtError::Range { first: frame, end: frame + 1, frames: timing.count() });
    }
    let k = timing.sample(frame);
    let c = m.tracks[v].table.chunks_for(k, k + 1)?;
    let c = c.first().ok_or_else(|| QtError::Malformed(format!("sample {k} is in no chunk")))?;
    Ok((c.offset, c.len))
}

/// Plans the virtual slice holding display frames `[first_frame, end_frame)` of the video
/// (0 = first frame the source shows). Handles must already be added and the range clamped
/// by the caller; an empty or out-of-range request is [`QtError::Range`].
pub fn plan_slice(src: &dyn ReadAt, first_frame: u64, end_frame: u64) -> Result<VirtualFile, QtError> {
    slice::plan(src, first_frame, end_frame)
}

/// A start timecode for a slice that is not the source's own (one a user recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcStart {
    /// Frame number (count of frames since 00:00:00:00) of the slice's first frame.
    pub value: u32,
    /// The rate as an exact ratio (24000/1001) and its rounded frames per second.
    pub rate_num: u32,
    pub rate_den: u32,
    pub fps: u8,
    pub drop_frame: bool,
}

/// Like [`plan_slice`], with the slice's timecode set to `tc` instead of the one the
/// source's tmcd track gives: the source's tmcd sample is replaced, and a source without
/// a timecode track gets a new one, so players and NLEs read the recorded timecode.
pub fn plan_slice_with_tc(src: &dyn ReadAt, first_frame: u64, end_frame: u64, tc: Option<TcStart>) -> Result<VirtualFile, QtError> {
    slice::plan_tc(src, first_frame, end_frame, false, tc)
}

/// Presentation times of the displayed video frames (zero at the first) and the
/// timescale they are counted in.
pub fn frame_times(src: &dyn ReadAt) -> Result<(Vec<i64>, u32), QtError> {
    movie::load(src)?.frame_times()
}

/// [`plan_slice`] for a source whose content hash is `key`: its parsed tables are kept in a
/// small bounded cache, so the many lookups of one clip parse it once.
pub fn plan_slice_cached(
    src: &dyn ReadAt,
    key: &[u8; 32],
    first_frame: u64,
    end_frame: u64,
    tc: Option<TcStart>,
) -> Result<VirtualFile, QtError> {
    let p = parsed::cached(src, key)?;
    slice::plan_parsed(src, &p, first_frame, end_frame, false, tc)
}

/// Walks the top-level boxes and reports damage: a box that runs past the end of the file
/// (the usual signature of an interrupted copy or recording), trailing bytes too short to
/// be a box, or a file without `moov`.
pub fn check_structure(src: &dyn ReadAt) -> Result<(), QtError> {
    let (boxes, damage) = boxes::walk_top(src)?;
    if let Some(d) = damage {
        return Err(QtError::Truncated(d));
    }
    if !boxes.iter().any(|b| &b.typ == b"moov") {
        return Err(QtError::Truncated(format!("no 'moov' box in {} bytes", src.len())));
    }
    Ok(())
}

/// The frame count of 24 hours of labels at `fps` (drop-frame aware); exposed for callers
/// that wrap timecode arithmetic the same way the slice's tmcd sample does.
pub fn frames_per_day(fps: u8, drop_frame: bool) -> u64 {
    slice::frames_per_day(fps as u64, drop_frame)
}

// Killed by scripts/mutants: tests.rs reads slices whole or in the kernel's page-sized
// pieces, so no read started or ended inside a segment next to an empty one; and only
// checked files ffmpeg wrote, which all have a `moov`.
#[cfg(test)]
mod unit_tests {
    use super::*;

    /// "abc", source bytes 2..6, nothing, "xy": the bytes "abc2345xy" over "0123456789".
    fn virtual_file() -> VirtualFile {
        let segments = vec![
            Segment::Inline(Arc::from(&b"abc"[..])),
            Segment::Source { offset: 2, len: 4 },
            Segment::Inline(Arc::from(&b""[..])),
            Segment::Inline(Arc::from(&b"xy"[..])),
        ];
        let len = segments.iter().map(Segment::len).sum();
        VirtualFile { segments, len }
    }

    #[test]
    fn a_virtual_file_reads_any_range_across_its_segments() {
        let (vf, src) = (virtual_file(), b"0123456789".to_vec());
        let whole = "abc2345xy";
        assert_eq!(vf.len, 9);
        for off in 0..=10u64 {
            for n in 0..=11usize {
                let mut buf = vec![b'-'; n];
                let got = vf.read_at(&src, off, &mut buf).unwrap();
                let want = whole.get(off as usize..(off as usize + n).min(9)).unwrap_or("");
                assert_eq!(&buf[..got], want.as_bytes(), "offset {off}, {n} bytes");
                assert!(buf[got..].iter().all(|&b| b == b'-'), "offset {off}, {n} bytes: wrote past what it returned");
            }
        }
        // A source shorter than planned is an error, not a short read.
        let e = vf.read_at(&b"0123".to_vec(), 0, &mut [0u8; 9]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn segment_lengths() {
        assert!(Segment::Inline(Arc::from(&b""[..])).is_empty());
        assert!(Segment::Source { offset: 5, len: 0 }.is_empty());
        let s = Segment::Source { offset: 0, len: 4 };
        assert_eq!((s.len(), s.is_empty()), (4, false));
        let s = Segment::Inline(Arc::from(&b"ab"[..]));
        assert_eq!((s.len(), s.is_empty()), (2, false));
    }

    #[test]
    fn check_structure_wants_whole_boxes_and_a_moov() {
        let ftyp = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
        let with = |rest: &[u8]| [ftyp.as_slice(), rest].concat();
        check_structure(&with(b"\0\0\0\x08moov")).unwrap();
        let e = check_structure(&ftyp).unwrap_err();
        assert!(matches!(&e, QtError::Truncated(m) if m == "no 'moov' box in 16 bytes"), "{e}");
        let e = check_structure(&with(b"\0\0\0\x08moov\0\0\0\x28mdat")).unwrap_err();
        assert!(matches!(&e, QtError::Truncated(m) if m.contains("declares 40 bytes")), "{e}");
    }

    #[test]
    fn frames_per_day_drops_only_at_multiples_of_30() {
        assert_eq!(frames_per_day(24, false), 24 * 86_400);
        assert_eq!(frames_per_day(24, true), 24 * 86_400);
        assert_eq!(frames_per_day(25, true), 25 * 86_400);
        assert_eq!(frames_per_day(30, false), 30 * 86_400);
        // 29.97 DF skips 2 labels in 54 minutes of every hour; 59.94 DF skips 4.
        assert_eq!(frames_per_day(30, true), (108_000 - 108) * 24);
        assert_eq!(frames_per_day(60, true), (216_000 - 216) * 24);
    }
}
