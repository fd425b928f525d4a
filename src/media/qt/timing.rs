//! Presentation order of the main video track: which sample is displayed frame `i`.
//!
//! Most camera files (intra codecs, and long-GOP without B-frames) present samples in
//! decode order; then the displayed frames are one contiguous run of samples and
//! everything is computed from the run-length tables, whatever the sample count. Only
//! reordered video (B-frames) needs a per-sample permutation, and that is built only
//! where the file itself stores per-sample data of the same order of size, so memory
//! stays proportional to the tables the file really has.

use super::tables::{SampleTable, Sizes};
use super::QtError;

/// Video timing is expanded per sample only for reordered video; 50 M frames is over
/// 9 days at 60 fps, and keeps a corrupt count from asking for gigabytes.
const MAX_REORDERED_SAMPLES: u64 = 50_000_000;

/// Reordered video with run-length-only tables (constant `stsz`, few `ctts` runs) is
/// expanded only up to this many samples: a real B-frame stream stores a size per
/// sample, so a bigger one is damaged or crafted.
const MAX_REORDERED_WITHOUT_SIZES: u64 = 1_000_000;

// `Edit` is defined here, and `build` takes a track's parts rather than the
// `movie::Track`, so that `movie` (which builds timings) is the only side that imports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edit {
    /// Media time the presentation starts at (first non-empty edit).
    pub media_time: i64,
    /// Duration of that edit in movie timescale; 0 = to the end of the media.
    pub duration: u64,
}

#[derive(Debug)]
pub(crate) enum VideoTiming {
    /// Displayed frame `i` is decode sample `first + i`, for `count` frames.
    InOrder { first: u64, count: u64 },
    /// Decode index of each displayed frame in presentation order, and every sample's
    /// composition time.
    Reordered { display: Vec<u32>, cts: Vec<i64> },
}

impl VideoTiming {
    /// Which samples the source shows, and in which order: composition time is decode
    /// time plus the ctts offset, and the first real edit selects the window
    /// `[media_time, media_time + duration)`. That is what makes frame 0 "the first frame
    /// displayed" even though ffmpeg's H.264 files shift every composition time by the
    /// B-frame delay and hide the shift with an edit.
    pub fn build(table: &SampleTable, timescale: u32, edit: Option<Edit>, movie_timescale: u32) -> Result<VideoTiming, QtError> {
        let (lo, hi) = match edit {
            Some(e) => {
                let dur = if e.duration == 0 {
                    i64::MAX
                } else {
                    (e.duration as u128 * timescale as u128 / movie_timescale.max(1) as u128).min(i64::MAX as u128) as i64
                };
                (e.media_time, e.media_time.saturating_add(dur))
            }
            None => (i64::MIN, i64::MAX),
        };
        let n = table.sample_count();
        if table.presents_in_decode_order() {
            // Composition times never decrease: the window is one run of samples.
            let first = partition(n, |k| table.composition_time(k) < lo);
            let end = partition(n, |k| table.composition_time(k) < hi).max(first);
            return Ok(VideoTiming::InOrder { first, count: end - first });
        }
        let per_sample_sizes = matches!(table.sizes, Sizes::Each(_));
        // Survivors of scripts/mutants, not equivalent, left untested on purpose: `==` or
        // `>=` for the first `>` moves the 50 M bound, which only more than 50 M per-sample
        // sizes show; a unit test would hold ~600 MB of tables on a shared machine. The 1 M
        // bound beside it is tested at and past the limit.
        if n > MAX_REORDERED_SAMPLES || (!per_sample_sizes && n > MAX_REORDERED_WITHOUT_SIZES) {
            return Err(QtError::Unsupported(format!(
                "video track reorders {n} frames described by run-length tables only (damaged or crafted file?)"
            )));
        }
        let cts = table.composition_times();
        let mut display: Vec<u32> = (0..cts.len()).filter(|&i| cts[i] >= lo && cts[i] < hi).map(|i| i as u32).collect();
        display.sort_by_key(|&i| (cts[i as usize], i));
        Ok(VideoTiming::Reordered { display, cts })
    }

    /// Frames the source presents.
    pub fn count(&self) -> u64 {
        match self {
            VideoTiming::InOrder { count, .. } => *count,
            VideoTiming::Reordered { display, .. } => display.len() as u64,
        }
    }

    /// Decode index of displayed frame `i` (`i < count`).
    pub fn sample(&self, i: u64) -> u64 {
        match self {
            VideoTiming::InOrder { first, .. } => first + i,
            VideoTiming::Reordered { display, .. } => display.get(i as usize).map_or(0, |&s| s as u64),
        }
    }

    /// Composition time of decode sample `k`.
    pub fn cts(&self, table: &SampleTable, k: u64) -> i64 {
        match self {
            VideoTiming::InOrder { .. } => table.composition_time(k),
            VideoTiming::Reordered { cts, .. } => cts.get(k as usize).copied().unwrap_or(0),
        }
    }

    /// For displayed frames `[first, end)` (non-empty, in range): the lowest and highest
    /// decode index among them, and the earliest composition time.
    pub fn span(&self, table: &SampleTable, first: u64, end: u64) -> (u64, u64, i64) {
        match self {
            VideoTiming::InOrder { first: f0, .. } => (f0 + first, f0 + end - 1, table.composition_time(f0 + first)),
            VideoTiming::Reordered { display, cts } => {
                let wanted = &display[first as usize..end as usize];
                let lo = wanted.iter().min().copied().unwrap_or(0) as u64;
                let hi = wanted.iter().max().copied().unwrap_or(0) as u64;
                let min_cts = wanted.iter().map(|&i| cts[i as usize]).min().unwrap_or(0);
                (lo, hi, min_cts)
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            VideoTiming::InOrder { .. } => 0,
            VideoTiming::Reordered { display, cts } => display.capacity() * 4 + cts.capacity() * 8,
        }
    }
}

/// The first `k` in `0..n` for which `pred` is false, for a `pred` that is true on a
/// prefix (binary search over a monotonic sequence that is never materialised).
fn partition(n: u64, pred: impl Fn(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

// Killed by scripts/mutants: the slices reach `build` only through ffmpeg's files, whose
// edits start on a sample and whose windows never end on one, so no test saw a boundary
// moved by one, a duration scaled the wrong way or a reordered frame outside the window.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::qt::tables::{ChunkOffsets, SampleTable, Sizes};

    /// `n` video samples 10 time units apart, with `ctts` offsets if given; constant sizes.
    fn video(n: u32, ctts: Option<Vec<(u32, i32)>>) -> SampleTable {
        SampleTable {
            stts: vec![(n, 10)],
            ctts: ctts.map(|runs| (0, runs)),
            stss: None,
            stsc: vec![(1, 1, 1)],
            sizes: Sizes::Constant { size: 1, count: n },
            chunk_offsets: ChunkOffsets::Co64(vec![0; n as usize]),
            bytes_per_sample: None,
        }
    }

    fn edit(media_time: i64, duration: u64) -> Option<Edit> {
        Some(Edit { media_time, duration })
    }

    /// Composition times 10, 40, 20, 30, 50 (an I P B B P pattern): shown as 0, 2, 3, 1, 4.
    fn b_frames() -> SampleTable {
        video(5, Some(vec![(1, 10), (1, 30), (2, 0), (1, 10)]))
    }

    #[test]
    fn in_order_video_without_an_edit_shows_every_sample() {
        let t = video(8, None);
        let v = VideoTiming::build(&t, 100, None, 1000).unwrap();
        assert!(matches!(v, VideoTiming::InOrder { first: 0, count: 8 }));
        assert_eq!((v.count(), v.sample(0), v.sample(7)), (8, 0, 7));
        assert_eq!((v.cts(&t, 0), v.cts(&t, 3)), (0, 30));
        assert_eq!(v.span(&t, 2, 5), (2, 4, 20));
        assert_eq!(v.heap_bytes(), 0);
    }

    #[test]
    fn an_edit_selects_a_window_of_in_order_samples() {
        let t = video(8, None);
        // [20, 50) in media time: 30 movie units at 1000/s are 3 media units at 100/s...
        let v = VideoTiming::build(&t, 100, edit(20, 300), 1000).unwrap();
        assert!(matches!(v, VideoTiming::InOrder { first: 2, count: 3 }), "{v:?}");
        // ...both ends on a sample: the one at 20 is shown, the one at 50 is not.
        assert_eq!((v.sample(0), v.sample(2)), (2, 4));
        assert_eq!(v.span(&t, 1, 3), (3, 4, 30));
        // A duration of 0 runs to the end of the media.
        let v = VideoTiming::build(&t, 100, edit(20, 0), 1000).unwrap();
        assert!(matches!(v, VideoTiming::InOrder { first: 2, count: 6 }), "{v:?}");
        // Between samples: 15 starts at the sample of 20; 31 units end after the one at 50.
        let v = VideoTiming::build(&t, 1, edit(15, 36), 1).unwrap();
        assert!(matches!(v, VideoTiming::InOrder { first: 2, count: 4 }), "{v:?}");
        // A movie timescale of 0 (damaged header) is read as 1, not divided by.
        let v = VideoTiming::build(&t, 1, edit(0, 30), 0).unwrap();
        assert!(matches!(v, VideoTiming::InOrder { first: 0, count: 3 }), "{v:?}");
        // An edit past the media shows nothing.
        let v = VideoTiming::build(&t, 1, edit(1000, 0), 1).unwrap();
        assert_eq!(v.count(), 0);
    }

    #[test]
    fn reordered_video_is_shown_in_composition_order() {
        let t = b_frames();
        assert!(!t.presents_in_decode_order());
        let v = VideoTiming::build(&t, 1, None, 1).unwrap();
        let VideoTiming::Reordered { display, cts } = &v else { panic!("{v:?}") };
        assert_eq!(display, &[0, 2, 3, 1, 4]);
        assert_eq!(cts, &[10, 40, 20, 30, 50]);
        assert_eq!(v.heap_bytes(), display.capacity() * 4 + cts.capacity() * 8);
        assert_eq!((v.count(), v.sample(1), v.sample(3)), (5, 2, 1));
        assert_eq!((v.cts(&t, 1), v.cts(&t, 3)), (40, 30));
        // Out of range answers 0 rather than panicking.
        assert_eq!((v.sample(5), v.cts(&t, 5)), (0, 0));
        // Frames 1..3 are samples 2 and 3: decode span 2..=3, earliest composition 20.
        assert_eq!(v.span(&t, 1, 3), (2, 3, 20));
        // Frames 2..4 are samples 3 and 1: the span runs from 1, its earliest time is 30.
        assert_eq!(v.span(&t, 2, 4), (1, 3, 30));
    }

    #[test]
    fn an_edit_selects_a_window_of_reordered_samples() {
        let t = b_frames();
        // [20, 50): the sample at 20 is in, the one at 50 and the one at 10 are out.
        let v = VideoTiming::build(&t, 1, edit(20, 30), 1).unwrap();
        let VideoTiming::Reordered { display, .. } = &v else { panic!("{v:?}") };
        assert_eq!(display, &[2, 3, 1]);
        let v = VideoTiming::build(&t, 1, edit(20, 0), 1).unwrap();
        assert_eq!(v.count(), 4);
    }

    #[test]
    fn reordering_described_by_runs_only_is_bounded() {
        let reordered = |n: u32| video(n, Some(vec![(1, 10), (1, 30), (n - 2, 0)]));
        let t = reordered(MAX_REORDERED_WITHOUT_SIZES as u32 + 1);
        assert!(!t.presents_in_decode_order());
        let e = VideoTiming::build(&t, 1, None, 1).unwrap_err().to_string();
        assert!(e.contains("video track reorders 1000001 frames described by run-length tables only"), "{e}");
        // Exactly the limit is still expanded.
        let v = VideoTiming::build(&reordered(MAX_REORDERED_WITHOUT_SIZES as u32), 1, None, 1).unwrap();
        assert_eq!(v.count(), MAX_REORDERED_WITHOUT_SIZES);
        // Per-sample sizes lift the limit: the file stores that much itself.
        let mut t = reordered(MAX_REORDERED_WITHOUT_SIZES as u32 + 1);
        t.sizes = Sizes::Each(vec![1; MAX_REORDERED_WITHOUT_SIZES as usize + 1]);
        assert_eq!(VideoTiming::build(&t, 1, None, 1).unwrap().count(), MAX_REORDERED_WITHOUT_SIZES + 1);
    }

    #[test]
    fn partition_finds_the_end_of_the_true_prefix() {
        for n in 0..9u64 {
            for k in 0..=n {
                assert_eq!(partition(n, |i| i < k), k, "n {n}, k {k}");
            }
        }
    }
}
