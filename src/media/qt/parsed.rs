//! A movie parsed far enough to slice (its tables and the main video's presentation
//! order), and a small process-wide cache of them keyed by the source's content hash,
//! so repeated lookups of one clip (every slice name a user tries) parse it once.
//!
//! The cache is bounded by entries and by heap bytes; a movie too big for the budget is
//! used and dropped, never cached. Content hashes name immutable bytes, so an entry is
//! never stale.

use std::sync::{Arc, Mutex};

use super::movie::{load, Movie};
use super::timing::VideoTiming;
use super::{QtError, ReadAt};

const MAX_ENTRIES: usize = 8;
const MAX_BYTES: usize = 128 << 20;

pub(crate) struct Parsed {
    pub movie: Movie,
    /// The main video track and its presentation order.
    pub video: Option<(usize, VideoTiming)>,
}

impl Parsed {
    pub fn load(src: &dyn ReadAt) -> Result<Parsed, QtError> {
        let movie = load(src)?;
        let video = match movie.video() {
            Some(v) => Some((v, movie.video_timing(v)?)),
            None => None,
        };
        Ok(Parsed { movie, video })
    }

    pub fn heap_bytes(&self) -> usize {
        self.movie.heap_bytes() + self.video.as_ref().map_or(0, |(_, t)| t.heap_bytes())
    }
}

/// Most recently used last.
static CACHE: Mutex<Vec<([u8; 32], Arc<Parsed>)>> = Mutex::new(Vec::new());

/// The parsed movie of the source whose content hash is `key`, from the cache or parsed now.
pub(crate) fn cached(src: &dyn ReadAt, key: &[u8; 32]) -> Result<Arc<Parsed>, QtError> {
    {
        let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = c.iter().position(|(k, _)| k == key) {
            let e = c.remove(i);
            let p = e.1.clone();
            c.push(e);
            return Ok(p);
        }
    }
    // Parsed outside the lock: other clips' lookups do not wait on this one.
    let p = Arc::new(Parsed::load(src)?);
    let bytes = p.heap_bytes();
    if bytes <= MAX_BYTES {
        let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        c.retain(|(k, _)| k != key);
        c.push((*key, p.clone()));
        let mut total: usize = c.iter().map(|(_, e)| e.heap_bytes()).sum();
        // Survivors of scripts/mutants, not equivalent, left untested on purpose: `total >
        // MAX_BYTES` as `>=`/`==`, and `-=` below as `+=`/`/=`, only show once the entries
        // weigh 128 MB, which a unit test would have to allocate. The entry bound is tested.
        while c.len() > MAX_ENTRIES || total > MAX_BYTES {
            let (_, old) = c.remove(0);
            total -= old.heap_bytes();
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::super::boxes::W;
    use super::super::{slice, Segment, VirtualFile};
    use super::*;

    // movie_tests' sparse source: a head, a run of zeros it does not hold, a tail.
    use super::super::movie::tests::SparseWithHead as Sparse;

    fn many_samples(n: u32) -> (Sparse, u64) {
        let mut head = W::default();
        head.open(b"ftyp").bytes(b"qt  ").u32(0x200).bytes(b"qt  ");
        head.close().unwrap();
        let data = head.buf.len() as u64 + 8;
        head.u32(8 + n).bytes(b"mdat");
        let matrix = [0x10000u32, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];
        let mut w = W::default();
        w.open(b"moov");
        w.open_full(b"mvhd", 0, 0).u32(0).u32(0).u32(25).u32(n).u32(0x10000).bytes(&[1, 0]).bytes(&[0; 10]);
        matrix.iter().for_each(|&x| {
            w.u32(x);
        });
        w.bytes(&[0; 24]).u32(2);
        w.close().unwrap();
        w.open(b"trak");
        w.open_full(b"tkhd", 0, 3).u32(0).u32(0).u32(1).u32(0).u32(n).bytes(&[0; 16]);
        matrix.iter().for_each(|&x| {
            w.u32(x);
        });
        w.u32(1 << 16).u32(1 << 16);
        w.close().unwrap();
        w.open(b"mdia");
        w.open_full(b"mdhd", 0, 0).u32(0).u32(0).u32(25).u32(n).u32(0);
        w.close().unwrap();
        w.open_full(b"hdlr", 0, 0).bytes(b"mhlr").bytes(b"vide").bytes(&[0; 13]);
        w.close().unwrap();
        w.open(b"minf");
        w.open_full(b"vmhd", 0, 1).bytes(&[0; 8]);
        w.close().unwrap();
        w.open(b"stbl");
        w.open_full(b"stsd", 0, 0).u32(1);
        w.open(b"raw ").bytes(&[0; 6]).bytes(&[0, 1]).bytes(&[0; 16]);
        w.bytes(&[0, 1, 0, 1]).u32(72 << 16).u32(72 << 16).u32(0).bytes(&[0, 1]).bytes(&[0; 32]).bytes(&[0, 8, 0xff, 0xff]);
        w.close().unwrap();
        w.close().unwrap();
        w.open_full(b"stts", 0, 0).u32(1).u32(n).u32(1);
        w.close().unwrap();
        w.open_full(b"stsc", 0, 0).u32(1).u32(1).u32(n).u32(1);
        w.close().unwrap();
        w.open_full(b"stsz", 0, 0).u32(1).u32(n);
        w.close().unwrap();
        w.open_full(b"stco", 0, 0).u32(1).u32(data as u32);
        w.close().unwrap();
        for _ in 0..5 {
            w.close().unwrap(); // stbl minf mdia trak moov
        }
        (Sparse { head: head.buf, zeros: n as u64, tail: w.buf }, data)
    }

    fn source_range(vf: &VirtualFile) -> (u64, u64) {
        match vf.segments.last() {
            Some(Segment::Source { offset, len }) => (*offset, *len),
            other => panic!("no source range: {other:?}"),
        }
    }

    #[test]
    fn millions_of_samples_stay_compact_and_lookups_are_right() {
        let n = 49_000_000u32;
        let (src, data) = many_samples(n);
        let p = Parsed::load(&src).unwrap();
        let (v, vt) = p.video.as_ref().unwrap();
        assert_eq!(vt.count(), n as u64);
        // The tables and timing of 49 M samples: the moov's few hundred bytes, not 49 M entries.
        assert!(p.heap_bytes() < 16 << 10, "parsed movie holds {} heap bytes", p.heap_bytes());
        assert_eq!(vt.heap_bytes(), 0);
        let t = &p.movie.tracks[*v].table;
        assert!(t.heap_bytes() < 1 << 10, "sample table holds {} heap bytes", t.heap_bytes());
        for k in [0u64, n as u64 / 2, n as u64 - 1] {
            let c = t.chunks_for(k, k + 1).unwrap();
            assert_eq!((c.len(), c[0].offset, c[0].len, c[0].samples), (1, data + k, 1, 1), "sample {k}");
            assert_eq!(t.decode_time(k), k);
            assert_eq!(t.sample_at_time(k), (k, k));
            assert_eq!(vt.sample(k), k);
            assert_eq!(vt.cts(t, k), k as i64);
        }
        // Slices at the start, the middle and the end read the right essence bytes.
        for (a, b) in [(0u64, 25u64), (n as u64 / 2, n as u64 / 2 + 25), (n as u64 - 5, n as u64)] {
            let vf = slice::plan_parsed(&src, &p, a, b, false, None).unwrap();
            assert_eq!(source_range(&vf), (data + a, b - a), "slice {a}..{b}");
            assert!(vf.len < 4096 + (b - a));
        }
        assert!(matches!(slice::plan_parsed(&src, &p, n as u64 - 1, n as u64 + 1, false, None), Err(QtError::Range { .. })));
    }

    #[test]
    fn repeated_lookups_reuse_one_parse() {
        let _turn = CACHE_TEST.lock().unwrap_or_else(|p| p.into_inner());
        let (src, _) = many_samples(1_000_000);
        let key = [0xa5u8; 32];
        let a = cached(&src, &key).unwrap();
        let b = cached(&src, &key).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let vf = super::super::plan_slice_cached(&src, &key, 10, 20, None).unwrap();
        assert_eq!(source_range(&vf).1, 10);
    }

    /// The cache is process-wide and `cargo test` runs tests on threads: the tests that
    /// count its entries take turns.
    static CACHE_TEST: Mutex<()> = Mutex::new(());

    // Killed by scripts/mutants: no test filled the cache past its entry bound, looked up
    // an older clip after a newer one was parsed, or weighed a reordered parse.
    #[test]
    fn the_cache_keeps_the_latest_clips_and_weighs_them_whole() {
        let _turn = CACHE_TEST.lock().unwrap_or_else(|p| p.into_inner());
        let (src, _) = many_samples(100);
        // Keys no other test uses.
        let key = |i: u8| {
            let mut k = [0x3cu8; 32];
            k[0] = i;
            k
        };
        let first = cached(&src, &key(0)).unwrap();
        // Parsing a second clip keeps the first.
        cached(&src, &key(1)).unwrap();
        assert!(Arc::ptr_eq(&first, &cached(&src, &key(0)).unwrap()), "the first clip was dropped");
        // Ten clips in all: the latest MAX_ENTRIES stay, the first two go.
        let all: Vec<Arc<Parsed>> = (0..10).map(|i| cached(&src, &key(100 + i)).unwrap()).collect();
        for (i, p) in all.iter().enumerate().skip(10 - MAX_ENTRIES) {
            assert!(Arc::ptr_eq(p, &cached(&src, &key(100 + i as u8)).unwrap()), "clip {i} was dropped");
        }
        for (i, p) in all.iter().enumerate().take(10 - MAX_ENTRIES) {
            assert!(!Arc::ptr_eq(p, &cached(&src, &key(100 + i as u8)).unwrap()), "clip {i} is still cached");
        }
    }

    #[test]
    fn a_parse_weighs_its_movie_and_its_timing() {
        let (src, _) = many_samples(100);
        let mut p = Parsed::load(&src).unwrap();
        assert!(p.movie.heap_bytes() > 0);
        assert_eq!(p.heap_bytes(), p.movie.heap_bytes(), "in-order timing holds nothing");
        let v = p.video.as_ref().unwrap().0;
        p.video = Some((v, VideoTiming::Reordered { display: vec![1, 0, 2], cts: vec![10, 0, 20] }));
        let timing = p.video.as_ref().unwrap().1.heap_bytes();
        assert!(timing >= 3 * 4 + 3 * 8);
        assert_eq!(p.heap_bytes(), p.movie.heap_bytes() + timing);
    }
}
