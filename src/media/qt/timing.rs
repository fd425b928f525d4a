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
