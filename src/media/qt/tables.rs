//! Sample tables (`stts`, `ctts`, `stss`, `stsc`, `stsz`, `stco`/`co64`): parsing, cutting
//! a decode-order range out of them, and writing the result.
//!
//! Tables are kept in their run-length form wherever the source uses it. PCM tracks have
//! one "sample" per audio frame (millions per hour), so nothing here expands a constant
//! `stsz` or a run of `stts` per sample; only per-sample sizes that the file itself stores
//! per sample are held per sample.

use super::boxes::{be32, be64, children, find, BoxRef, W};
use super::QtError;

#[derive(Debug, Clone)]
pub(crate) enum Sizes {
    Constant { size: u32, count: u32 },
    Each(Vec<u32>),
}

impl Sizes {
    pub fn count(&self) -> u64 {
        match self {
            Sizes::Constant { count, .. } => *count as u64,
            Sizes::Each(v) => v.len() as u64,
        }
    }
}

/// Chunk offsets as the file stores them: 32-bit `stco` stays 4 bytes per chunk.
#[derive(Debug, Clone)]
pub(crate) enum ChunkOffsets {
    Stco(Vec<u32>),
    Co64(Vec<u64>),
}

impl ChunkOffsets {
    pub fn len(&self) -> usize {
        match self {
            ChunkOffsets::Stco(v) => v.len(),
            ChunkOffsets::Co64(v) => v.len(),
        }
    }

    pub fn get(&self, i: usize) -> Option<u64> {
        match self {
            ChunkOffsets::Stco(v) => v.get(i).map(|&o| o as u64),
            ChunkOffsets::Co64(v) => v.get(i).copied(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            ChunkOffsets::Stco(v) => v.capacity() * 4,
            ChunkOffsets::Co64(v) => v.capacity() * 8,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SampleTable {
    pub stts: Vec<(u32, u32)>,
    /// (version, runs of (count, offset)); version 1 offsets are signed.
    pub ctts: Option<(u8, Vec<(u32, i32)>)>,
    /// 1-based sync sample numbers; `None` means every sample is a sync sample.
    pub stss: Option<Vec<u32>>,
    /// (first_chunk 1-based, samples_per_chunk, sample_description_index)
    pub stsc: Vec<(u32, u32, u32)>,
    pub sizes: Sizes,
    pub chunk_offsets: ChunkOffsets,
    /// Bytes one sample occupies in a chunk when `sizes` is constant. Differs from the
    /// `stsz` value only for legacy QuickTime PCM, whose `stsz` says 1.
    pub bytes_per_sample: Option<u64>,
}

/// One chunk of a rebuilt track: where it starts in the *source* file and how many
/// samples of which sample description it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    pub offset: u64,
    pub len: u64,
    pub samples: u32,
    pub sdi: u32,
}

fn counted(d: &[u8], b: &BoxRef, entry: usize, name: &str) -> Result<(u8, usize, usize), QtError> {
    let version = *d.get(b.body).ok_or_else(|| QtError::Malformed(format!("empty '{name}'")))?;
    let n = be32(d, b.body + 4)? as usize;
    let first = b.body + 8;
    // Bound the allocation by the bytes the box really has.
    if n.checked_mul(entry).is_none_or(|need| need > b.end.saturating_sub(first)) {
        return Err(QtError::Malformed(format!("'{name}' declares {n} entries but is only {} bytes", b.end - b.start)));
    }
    Ok((version, n, first))
}

impl SampleTable {
    /// `file_len` bounds constant-size sample counts: every sample must fit in the file,
    /// which keeps a corrupt count from driving later per-sample work.
    pub fn parse(d: &[u8], stbl: &BoxRef, file_len: u64) -> Result<SampleTable, QtError> {
        let kids = children(d, stbl.body, stbl.end)?;
        let need = |t: &[u8; 4]| super::boxes::need(&kids, t, "stbl");

        let b = need(b"stts")?;
        let (_, n, p) = counted(d, b, 8, "stts")?;
        let mut stts = Vec::with_capacity(n);
        for i in 0..n {
            stts.push((be32(d, p + 8 * i)?, be32(d, p + 8 * i + 4)?));
        }

        let ctts = match find(&kids, b"ctts") {
            None => None,
            Some(b) => {
                let (v, n, p) = counted(d, b, 8, "ctts")?;
                let mut t = Vec::with_capacity(n);
                for i in 0..n {
                    t.push((be32(d, p + 8 * i)?, be32(d, p + 8 * i + 4)? as i32));
                }
                Some((v, t))
            }
        };

        let stss = match find(&kids, b"stss") {
            None => None,
            Some(b) => {
                let (_, n, p) = counted(d, b, 4, "stss")?;
                let mut t = Vec::with_capacity(n);
                for i in 0..n {
                    t.push(be32(d, p + 4 * i)?);
                }
                Some(t)
            }
        };

        let b = need(b"stsc")?;
        let (_, n, p) = counted(d, b, 12, "stsc")?;
        let mut stsc = Vec::with_capacity(n);
        for i in 0..n {
            let e = (be32(d, p + 12 * i)?, be32(d, p + 12 * i + 4)?, be32(d, p + 12 * i + 8)?);
            if e.0 == 0 || stsc.last().is_some_and(|l: &(u32, u32, u32)| l.0 >= e.0) {
                return Err(QtError::Malformed("'stsc' first_chunk values are not increasing".into()));
            }
            stsc.push(e);
        }

        let sizes = if let Some(b) = find(&kids, b"stsz") {
            let size = be32(d, b.body + 4)?;
            let count = be32(d, b.body + 8)?;
            if size != 0 {
                if count as u64 > file_len {
                    return Err(QtError::Malformed(format!("'stsz' declares {count} samples, more than the file has bytes")));
                }
                Sizes::Constant { size, count }
            } else {
                let n = count as usize;
                let p = b.body + 12;
                if n.checked_mul(4).is_none_or(|need| need > b.end.saturating_sub(p)) {
                    return Err(QtError::Malformed(format!("'stsz' declares {n} sizes but is too short")));
                }
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(be32(d, p + 4 * i)?);
                }
                Sizes::Each(v)
            }
        } else {
            return Err(QtError::Unsupported("compact sample sizes ('stz2') or missing 'stsz'".into()));
        };

        let chunk_offsets = if let Some(b) = find(&kids, b"stco") {
            let (_, n, p) = counted(d, b, 4, "stco")?;
            ChunkOffsets::Stco((0..n).map(|i| be32(d, p + 4 * i)).collect::<Result<Vec<_>, _>>()?)
        } else if let Some(b) = find(&kids, b"co64") {
            let (_, n, p) = counted(d, b, 8, "co64")?;
            ChunkOffsets::Co64((0..n).map(|i| be64(d, p + 8 * i)).collect::<Result<Vec<_>, _>>()?)
        } else {
            return Err(QtError::Malformed("'stbl' has neither 'stco' nor 'co64'".into()));
        };

        let t = SampleTable { stts, ctts, stss, stsc, sizes, chunk_offsets, bytes_per_sample: None };
        let stts_total: u64 = t.stts.iter().map(|e| e.0 as u64).sum();
        if stts_total != t.sizes.count() {
            return Err(QtError::Malformed(format!("'stts' counts {stts_total} samples but 'stsz' has {}", t.sizes.count())));
        }
        if let Some((_, c)) = &t.ctts {
            let total: u64 = c.iter().map(|e| e.0 as u64).sum();
            if total < t.sizes.count() {
                return Err(QtError::Malformed(format!("'ctts' covers {total} of {} samples", t.sizes.count())));
            }
        }
        Ok(t)
    }

    pub fn sample_count(&self) -> u64 {
        self.sizes.count()
    }

    pub fn duration(&self) -> u64 {
        self.stts.iter().fold(0u64, |acc, &(c, d)| acc.saturating_add(c as u64 * d as u64))
    }

    /// The (most common) sample delta, which for video is the frame duration.
    pub fn modal_delta(&self) -> u32 {
        let mut tally: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
        for &(c, d) in &self.stts {
            *tally.entry(d).or_default() += c as u64;
        }
        tally.into_iter().max_by_key(|&(d, n)| (n, std::cmp::Reverse(d))).map_or(0, |(d, _)| d)
    }

    /// Bytes this table holds on the heap: what the file stores per sample (a
    /// per-sample `stsz`, `stss`, chunk offsets) and the run-length tables, never an
    /// expansion of a run or of a constant size.
    pub fn heap_bytes(&self) -> usize {
        let sizes = match &self.sizes {
            Sizes::Constant { .. } => 0,
            Sizes::Each(v) => v.capacity() * 4,
        };
        self.stts.capacity() * 8
            + self.ctts.as_ref().map_or(0, |(_, c)| c.capacity() * 8)
            + self.stss.as_ref().map_or(0, |s| s.capacity() * 4)
            + self.stsc.capacity() * 12
            + sizes
            + self.chunk_offsets.heap_bytes()
    }

    /// The `ctts` offset of one sample (0 without `ctts` or past its runs).
    pub fn composition_offset(&self, sample: u64) -> i64 {
        let Some((_, runs)) = &self.ctts else { return 0 };
        let mut idx = 0u64;
        for &(c, off) in runs {
            if sample < idx + c as u64 {
                return off as i64;
            }
            idx += c as u64;
        }
        0
    }

    /// Composition time of one sample: decode time plus its `ctts` offset.
    pub fn composition_time(&self, sample: u64) -> i64 {
        (self.decode_time(sample) as i64).saturating_add(self.composition_offset(sample))
    }

    /// Whether composition times never decrease in decode order, so presentation order
    /// is decode order (no B-frame reordering). Only the samples where the `ctts` offset
    /// changes can break the order, so this walks the two run tables side by side.
    pub fn presents_in_decode_order(&self) -> bool {
        let Some((_, runs)) = &self.ctts else { return true };
        let n = self.sample_count();
        // Equivalent mutant (scripts/mutants): `>=` here changes nothing, because an empty
        // stts run adds 0 to `stts_end`, so the loop below never stops on one anyway.
        let mut stts = self.stts.iter().filter(|r| r.0 > 0);
        let mut stts_run = stts.next();
        let mut stts_end = stts_run.map_or(0, |r| r.0 as u64);
        let mut idx = 0u64;
        let mut prev: Option<i64> = None;
        for &(c, off) in runs.iter().filter(|r| r.0 > 0) {
            if idx >= n {
                break;
            }
            if let Some(p) = prev {
                // Between samples idx-1 and idx: cts(idx) - cts(idx-1) = delta(idx-1) + off - p.
                while idx > stts_end {
                    stts_run = stts.next();
                    match stts_run {
                        Some(r) => stts_end += r.0 as u64,
                        None => break,
                    }
                }
                let delta = stts_run.map_or(0, |r| r.1 as i64);
                if p - off as i64 > delta {
                    return false;
                }
            }
            idx += c as u64;
            prev = Some(off as i64);
        }
        true
    }

    /// Composition times of every sample, for reordered video (which the caller bounds).
    pub fn composition_times(&self) -> Vec<i64> {
        let n = self.sample_count() as usize;
        let mut v = Vec::with_capacity(n);
        let mut t = 0i64;
        for &(c, d) in &self.stts {
            for _ in 0..c {
                if v.len() == n {
                    break;
                }
                v.push(t);
                t += d as i64;
            }
        }
        v.resize(n, t);
        if let Some((_, c)) = &self.ctts {
            let mut i = 0usize;
            'o: for &(cnt, off) in c {
                for _ in 0..cnt {
                    if i == n {
                        break 'o;
                    }
                    v[i] += off as i64;
                    i += 1;
                }
            }
        }
        v
    }

    /// Index of the sample whose decode interval contains media time `t` (clamped to the
    /// last sample), and that sample's decode time. Walks the runs, never expands them.
    pub fn sample_at_time(&self, t: u64) -> (u64, u64) {
        let mut idx = 0u64;
        let mut start = 0u64;
        for &(c, d) in &self.stts {
            let span = c as u64 * d as u64;
            // Equivalent mutant (scripts/mutants): `d >= 0` changes nothing, because with
            // d == 0 the span is 0 and `t >= start` always holds here (so no division by 0).
            if d > 0 && t < start.saturating_add(span) {
                let k = (t - start) / d as u64;
                return (idx + k, start + k * d as u64);
            }
            idx += c as u64;
            start = start.saturating_add(span);
        }
        // Past the end: the last sample.
        let n = self.sample_count();
        if n == 0 {
            return (0, 0);
        }
        let last = n - 1;
        (last, self.decode_time(last))
    }

    /// The `stts` delta of one sample (0 past the end).
    pub fn stts_delta(&self, sample: u64) -> u32 {
        let mut idx = 0u64;
        for &(c, d) in &self.stts {
            if sample < idx + c as u64 {
                return d;
            }
            idx += c as u64;
        }
        0
    }

    pub fn decode_time(&self, sample: u64) -> u64 {
        let mut idx = 0u64;
        let mut start = 0u64;
        for &(c, d) in &self.stts {
            // Equivalent mutant (scripts/mutants): `<=` changes nothing, because the first
            // sample after a run starts where the run ends: start + c * d either way.
            if sample < idx + c as u64 {
                return start + (sample - idx) * d as u64;
            }
            idx += c as u64;
            start = start.saturating_add(c as u64 * d as u64);
        }
        start
    }

    fn sample_bytes(&self, sample: u64) -> u64 {
        match &self.sizes {
            Sizes::Constant { size, .. } => self.bytes_per_sample.unwrap_or(*size as u64),
            Sizes::Each(v) => v.get(sample as usize).copied().unwrap_or(0) as u64,
        }
    }

    fn bytes_of(&self, from: u64, to: u64) -> u64 {
        match &self.sizes {
            Sizes::Constant { size, .. } => (to - from).saturating_mul(self.bytes_per_sample.unwrap_or(*size as u64)),
            Sizes::Each(_) => (from..to).map(|s| self.sample_bytes(s)).sum(),
        }
    }

    /// Chunks holding samples `[a, b)` in decode order, with the first and last chunk
    /// trimmed to the samples the range needs (a chunk is just "consecutive samples at an
    /// offset", so trimming its head is only a matter of moving its offset).
    pub fn chunks_for(&self, a: u64, b: u64) -> Result<Vec<Chunk>, QtError> {
        let mut out = Vec::new();
        let nchunks = self.chunk_offsets.len() as u64;
        let mut sample = 0u64;
        for (i, &(first, spc, sdi)) in self.stsc.iter().enumerate() {
            let first = first as u64;
            let next = self.stsc.get(i + 1).map_or(nchunks + 1, |e| e.0 as u64).min(nchunks + 1);
            if first > nchunks {
                break;
            }
            let run_chunks = next.saturating_sub(first);
            let run_samples = run_chunks * spc as u64;
            // Equivalent mutants (scripts/mutants) in this run walk, same chunks either way:
            // `&&` for `||` here (the skip below passes a run wholly before `a`, and a run of
            // 0 samples per chunk adds none); `>=` or `==` for `a > sample` below (skip is
            // then 0, and chunks before `a` add none: only slower on long PCM); `<=` for
            // `cs < b` (a chunk at `b` fails `lo < hi`); `<=` for `lo < hi` (the skip and
            // `cs < b` leave only chunks that overlap `a..b`, so lo == hi never happens).
            if spc == 0 || sample + run_samples <= a {
                sample += run_samples;
                continue;
            }
            // Skip whole chunks of this run before `a` arithmetically.
            let skip = if a > sample { (a - sample) / spc as u64 } else { 0 };
            let mut c = first + skip;
            let mut cs = sample + skip * spc as u64;
            while c < next && cs < b {
                let ce = cs + spc as u64;
                let lo = cs.max(a);
                let hi = ce.min(b);
                if lo < hi {
                    let base = self
                        .chunk_offsets
                        .get((c - 1) as usize)
                        .ok_or_else(|| QtError::Malformed(format!("chunk {c} is past the chunk offset table")))?;
                    let offset = base.saturating_add(self.bytes_of(cs, lo));
                    out.push(Chunk { offset, len: self.bytes_of(lo, hi), samples: (hi - lo) as u32, sdi });
                }
                c += 1;
                cs = ce;
            }
            sample += run_samples;
            if sample >= b {
                break;
            }
        }
        let got: u64 = out.iter().map(|c| c.samples as u64).sum();
        if got != b - a {
            return Err(QtError::Malformed(format!("chunk tables cover {got} of the {} samples needed ({a}..{b})", b - a)));
        }
        Ok(out)
    }

    /// Writes `stts`, `ctts`, `stss`, `stsc`, `stsz` and `stco`/`co64` for samples `[a, b)`
    /// laid out in `chunks` whose offsets have already been rebased.
    pub fn write_subset(
        &self,
        w: &mut W,
        a: u64,
        b: u64,
        chunks: &[Chunk],
        rebase: &dyn Fn(u64) -> u64,
        co64: bool,
    ) -> Result<(), QtError> {
        // stts
        let stts = cut_runs(self.stts.iter().map(|&(c, d)| (c, d)), a, b);
        w.open_full(b"stts", 0, 0).u32(stts.len() as u32);
        for (c, d) in &stts {
            w.u32(*c).u32(*d);
        }
        w.close()?;
        if let Some((v, runs)) = &self.ctts {
            let c = cut_runs(runs.iter().copied(), a, b);
            w.open_full(b"ctts", *v, 0).u32(c.len() as u32);
            for (n, o) in &c {
                w.u32(*n).i32(*o);
            }
            w.close()?;
        }
        if let Some(ss) = &self.stss {
            let v: Vec<u32> = ss
                .iter()
                .filter_map(|&s| {
                    let s0 = (s as u64).checked_sub(1)?;
                    (s0 >= a && s0 < b).then(|| (s0 - a + 1) as u32)
                })
                .collect();
            w.open_full(b"stss", 0, 0).u32(v.len() as u32);
            for s in v {
                w.u32(s);
            }
            w.close()?;
        }
        // stsc: one run per change of (samples, sdi).
        let mut runs: Vec<(u32, u32, u32)> = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            if runs.last().is_none_or(|l| l.1 != c.samples || l.2 != c.sdi) {
                runs.push((i as u32 + 1, c.samples, c.sdi));
            }
        }
        w.open_full(b"stsc", 0, 0).u32(runs.len() as u32);
        for (f, s, d) in runs {
            w.u32(f).u32(s).u32(d);
        }
        w.close()?;
        match &self.sizes {
            Sizes::Constant { size, .. } => {
                w.open_full(b"stsz", 0, 0).u32(*size).u32((b - a) as u32);
            }
            Sizes::Each(v) => {
                w.open_full(b"stsz", 0, 0).u32(0).u32((b - a) as u32);
                for s in &v[a as usize..b as usize] {
                    w.u32(*s);
                }
            }
        }
        w.close()?;
        if co64 {
            w.open_full(b"co64", 0, 0).u32(chunks.len() as u32);
            for c in chunks {
                w.u64(rebase(c.offset));
            }
        } else {
            w.open_full(b"stco", 0, 0).u32(chunks.len() as u32);
            for c in chunks {
                w.u32(rebase(c.offset) as u32);
            }
        }
        w.close()
    }
}

/// Cuts entries `[a, b)` out of a run-length table of (count, value).
fn cut_runs<T: Copy + PartialEq>(runs: impl Iterator<Item = (u32, T)>, a: u64, b: u64) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    let mut pos = 0u64;
    for (c, v) in runs {
        let (s, e) = (pos, pos + c as u64);
        pos = e;
        let lo = s.max(a);
        let hi = e.min(b);
        if lo < hi {
            match out.last_mut() {
                Some(l) if l.1 == v => l.0 += (hi - lo) as u32,
                _ => out.push(((hi - lo) as u32, v)),
            }
        }
        if pos >= b {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(stsc: Vec<(u32, u32, u32)>, chunks: Vec<u64>, n: u32, size: u32) -> SampleTable {
        SampleTable {
            stts: vec![(n, 1)],
            ctts: None,
            stss: None,
            stsc,
            sizes: Sizes::Constant { size, count: n },
            chunk_offsets: ChunkOffsets::Co64(chunks),
            bytes_per_sample: None,
        }
    }

    #[test]
    fn pcm_chunk_split_mid_chunk() {
        // ffmpeg-like PCM: 1024 frames per chunk, last chunk 768.
        let t = table(vec![(1, 1024, 1), (3, 768, 1)], vec![1000, 10000, 20000], 2816, 3);
        let c = t.chunks_for(1000, 2100).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].offset, c[0].samples), (1000 + 3000, 24));
        assert_eq!((c[1].offset, c[1].samples), (10000, 1024));
        assert_eq!((c[2].offset, c[2].samples, c[2].len), (20000, 52, 156));
    }

    #[test]
    fn cut_runs_merges_and_trims() {
        let r = cut_runs(vec![(3u32, 5u32), (2, 7), (4, 7)].into_iter(), 1, 7);
        assert_eq!(r, vec![(2, 5), (4, 7)]);
    }

    #[test]
    fn decode_order_is_detected_from_the_runs() {
        let mut t = table(vec![(1, 1, 1)], vec![0; 6], 6, 1);
        let order = |t: &mut SampleTable, stts: Vec<(u32, u32)>, ctts: Vec<(u32, i32)>| {
            t.stts = stts;
            t.ctts = Some((0, ctts));
            t.presents_in_decode_order()
        };
        assert!(order(&mut t, vec![(6, 10)], vec![(6, 20)]), "a constant offset keeps the order");
        assert!(order(&mut t, vec![(6, 10)], vec![(3, 0), (3, 10)]), "a growing offset keeps it");
        assert!(order(&mut t, vec![(6, 10)], vec![(1, 10), (5, 0)]), "equal times keep decode order");
        assert!(!order(&mut t, vec![(6, 10)], vec![(1, 0), (1, 30), (4, 0)]), "a B-frame reorders");
        // The delta that matters is that of the sample before the change, in a later stts run.
        assert!(order(&mut t, vec![(2, 10), (4, 40)], vec![(3, 30), (3, 0)]));
        assert!(!order(&mut t, vec![(3, 10), (3, 40)], vec![(3, 30), (3, 0)]));
        t.ctts = None;
        assert!(t.presents_in_decode_order());
        assert_eq!(t.heap_bytes(), t.stts.capacity() * 8 + 12 + 6 * 8);
    }

    #[test]
    fn sample_at_time_walks_runs() {
        let mut t = table(vec![(1, 1, 1)], vec![0; 10], 10, 1);
        t.stts = vec![(4, 1024), (6, 512)];
        assert_eq!(t.sample_at_time(0), (0, 0));
        assert_eq!(t.sample_at_time(4095), (3, 3072));
        assert_eq!(t.sample_at_time(4096), (4, 4096));
        assert_eq!(t.sample_at_time(4096 + 1000), (5, 4608));
        assert_eq!(t.sample_at_time(1 << 40), (9, 4096 + 5 * 512));
    }
    /// An `stbl` box holding the boxes `fill` writes, parsed as a file of 1 MB would be.
    fn parse_stbl(fill: impl Fn(&mut W)) -> Result<SampleTable, QtError> {
        let mut w = W::default();
        w.open(b"stbl");
        fill(&mut w);
        w.close().unwrap();
        let stbl = children(&w.buf, 0, w.buf.len()).unwrap()[0];
        SampleTable::parse(&w.buf, &stbl, 1 << 20)
    }

    /// A full box holding an entry count and then `words`.
    fn table_box(w: &mut W, typ: &[u8; 4], version: u8, count: u32, words: &[u32]) {
        w.open_full(typ, version, 0).u32(count);
        for &x in words {
            w.u32(x);
        }
        w.close().unwrap();
    }

    /// Three samples in two chunks, every field distinct so a misread one shows.
    fn stbl_boxes(w: &mut W, stsc: &[u32]) {
        table_box(w, b"stts", 0, 2, &[2, 100, 1, 50]);
        table_box(w, b"ctts", 1, 2, &[1, (-100i32) as u32, 2, 200]);
        // Four bytes of padding after the entries are tolerated.
        table_box(w, b"stss", 0, 2, &[1, 3, 0]);
        table_box(w, b"stsc", 0, stsc.len() as u32 / 3, stsc);
        w.open_full(b"stsz", 0, 0).u32(0).u32(3).u32(10).u32(20).u32(30).u32(0);
        w.close().unwrap();
        table_box(w, b"stco", 0, 2, &[1000, 2000]);
    }

    // Killed by scripts/mutants: the end-to-end tests parse ffmpeg's tables, whose stsc
    // often has a single entry and whose ctts offsets the slices mostly copy unread.
    #[test]
    fn parse_reads_every_field_of_every_table() {
        let t = parse_stbl(|w| stbl_boxes(w, &[1, 2, 7, 2, 1, 8])).unwrap();
        assert_eq!(t.stts, [(2, 100), (1, 50)]);
        assert_eq!(t.ctts, Some((1, vec![(1, -100), (2, 200)])));
        assert_eq!(t.stss, Some(vec![1, 3]));
        assert_eq!(t.stsc, [(1, 2, 7), (2, 1, 8)]);
        assert!(matches!(&t.sizes, Sizes::Each(v) if v == &[10, 20, 30]));
        let ChunkOffsets::Stco(stco) = &t.chunk_offsets else { panic!("stco kept as stco") };
        assert_eq!(stco, &[1000, 2000]);
        // 32-bit chunk offsets are accounted at 4 bytes each.
        let Sizes::Each(sizes) = &t.sizes else { unreachable!() };
        let others = t.stts.capacity() * 8
            + t.ctts.as_ref().unwrap().1.capacity() * 8
            + t.stss.as_ref().unwrap().capacity() * 4
            + t.stsc.capacity() * 12
            + sizes.capacity() * 4;
        assert_eq!(t.heap_bytes(), others + stco.capacity() * 4);
    }

    #[test]
    fn parse_rejects_tables_that_contradict_themselves() {
        let err = |stsc: &[u32]| parse_stbl(|w| stbl_boxes(w, stsc)).unwrap_err().to_string();
        assert!(err(&[0, 2, 7, 2, 1, 8]).contains("first_chunk values are not increasing"));
        assert!(err(&[1, 2, 7, 1, 1, 8]).contains("first_chunk values are not increasing"));
        // An entry count the box has no room for.
        let e = parse_stbl(|w| {
            table_box(w, b"stts", 0, 3, &[2, 100, 1, 50]);
            table_box(w, b"stsc", 0, 1, &[1, 3, 1]);
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("'stts' declares 3 entries but is only 32 bytes"), "{e}");
    }

    #[test]
    fn parse_bounds_sample_counts_by_the_box_and_the_file() {
        // A constant size: every sample must fit in the file (1 MB here), one byte each.
        let constant = |count: u32| {
            parse_stbl(|w| {
                table_box(w, b"stts", 0, 1, &[count, 1]);
                table_box(w, b"stsc", 0, 1, &[1, count, 1]);
                w.open_full(b"stsz", 0, 0).u32(1).u32(count);
                w.close().unwrap();
                table_box(w, b"stco", 0, 1, &[0]);
            })
        };
        assert_eq!(constant(1 << 20).unwrap().sample_count(), 1 << 20);
        let e = constant((1 << 20) + 1).unwrap_err().to_string();
        assert!(e.contains("'stsz' declares 1048577 samples, more than the file has bytes"), "{e}");
        // Per-sample sizes: the box must hold them all, and may hold exactly them.
        let each = |sizes: &[u32]| {
            parse_stbl(|w| {
                table_box(w, b"stts", 0, 1, &[3, 1]);
                table_box(w, b"stsc", 0, 1, &[1, 3, 1]);
                w.open_full(b"stsz", 0, 0).u32(0).u32(3);
                for &s in sizes {
                    w.u32(s);
                }
                w.close().unwrap();
                table_box(w, b"co64", 0, 2, &[1, 2, 3, 4]);
            })
        };
        let t = each(&[10, 20, 30]).unwrap();
        assert_eq!(t.sample_count(), 3);
        assert!(matches!(&t.chunk_offsets, ChunkOffsets::Co64(v) if v == &[(1 << 32) + 2, (3 << 32) + 4]));
        let e = each(&[10, 20]).unwrap_err().to_string();
        assert!(e.contains("'stsz' declares 3 sizes but is too short"), "{e}");
    }

    // Killed by scripts/mutants: the slices in tests.rs reach these only through whole
    // ffmpeg files, whose runs rarely put a sample on a run boundary.
    #[test]
    fn per_sample_times_walk_the_runs() {
        let mut t = table(vec![(1, 1, 1)], vec![0], 5, 1);
        t.stts = vec![(2, 10), (3, 20)];
        t.ctts = Some((1, vec![(1, 20), (2, -10), (2, 0)]));
        let each = |f: &dyn Fn(u64) -> i64| (0..6).map(f).collect::<Vec<_>>();
        assert_eq!(each(&|s| t.decode_time(s) as i64), [0, 10, 20, 40, 60, 80]);
        assert_eq!(each(&|s| t.stts_delta(s) as i64), [10, 10, 20, 20, 20, 0]);
        assert_eq!(each(&|s| t.composition_offset(s)), [20, -10, -10, 0, 0, 0]);
        assert_eq!(each(&|s| t.composition_time(s)), [20, 0, 10, 40, 60, 80]);
        assert_eq!(t.composition_times(), [20, 0, 10, 40, 60]);
        // The end of the last run is past every sample: the last one is the answer.
        assert_eq!(t.sample_at_time(80), (4, 60));
        assert_eq!(t.sample_at_time(79), (4, 60));
        assert_eq!(t.sample_at_time(20), (2, 20));
    }

    #[test]
    fn decode_order_edge_runs() {
        let mut t = table(vec![(1, 1, 1)], vec![0; 6], 6, 1);
        t.stts = vec![(6, 10)];
        // An offset that grows by more than a frame still keeps decode order.
        t.ctts = Some((0, vec![(3, 0), (3, 15)]));
        assert!(t.presents_in_decode_order());
        // An empty ctts run changes nothing.
        t.ctts = Some((0, vec![(3, 30), (0, 0), (3, 30)]));
        assert!(t.presents_in_decode_order());
        // The delta before the change is sample 3's: 20, in a one-sample stts run.
        t.stts = vec![(3, 10), (1, 20), (2, 40)];
        t.ctts = Some((0, vec![(4, 30), (2, 0)]));
        assert!(!t.presents_in_decode_order());
    }

    // Killed by scripts/mutants: end-to-end slices check the frames, not each table.
    #[test]
    fn a_cut_table_written_and_parsed_back() {
        let t = parse_stbl(|w| stbl_boxes(w, &[1, 2, 7, 2, 1, 8])).unwrap();
        let chunk = |c: &Chunk| (c.offset, c.len, c.samples, c.sdi);
        let chunks = |a, b| t.chunks_for(a, b).unwrap().iter().map(chunk).collect::<Vec<_>>();
        assert_eq!(chunks(0, 3), [(1000, 30, 2, 7), (2000, 30, 1, 8)]);
        assert_eq!(chunks(2, 3), [(2000, 30, 1, 8)]);
        // The head of the first chunk is cut off by moving its offset.
        let cut = t.chunks_for(1, 3).unwrap();
        assert_eq!(cut.iter().map(chunk).collect::<Vec<_>>(), [(1010, 20, 1, 7), (2000, 30, 1, 8)]);

        let back = parse_stbl(|w| t.write_subset(w, 1, 3, &cut, &|o| o + 5, false).unwrap()).unwrap();
        assert_eq!(back.stts, [(1, 100), (1, 50)]);
        assert_eq!(back.ctts, Some((1, vec![(2, 200)])));
        assert_eq!(back.stss, Some(vec![2]));
        assert_eq!(back.stsc, [(1, 1, 7), (2, 1, 8)]);
        assert!(matches!(&back.sizes, Sizes::Each(v) if v == &[20, 30]));
        assert!(matches!(&back.chunk_offsets, ChunkOffsets::Stco(v) if v == &[1015, 2005]));

        // Adjacent runs of one value merge into one run.
        assert_eq!(cut_runs(vec![(1u32, 5u32), (3, 5)].into_iter(), 0, 4), [(4, 5)]);
        // A sync sample at the end of the range is not in it.
        let back = parse_stbl(|w| {
            let cut = t.chunks_for(0, 2).unwrap();
            t.write_subset(w, 0, 2, &cut, &|o| o, false).unwrap()
        });
        assert_eq!(back.unwrap().stss, Some(vec![1]));
    }

    #[test]
    fn constant_size_chunks_cut_in_a_later_stsc_run() {
        // Chunk 1 holds samples 0-1, chunks 2 and 3 hold three each (2-4, 5-7).
        let t = table(vec![(1, 2, 1), (2, 3, 1)], vec![100, 200, 300], 8, 1);
        let chunk = |c: &Chunk| (c.offset, c.len, c.samples, c.sdi);
        let cut = t.chunks_for(6, 8).unwrap();
        assert_eq!(cut.iter().map(chunk).collect::<Vec<_>>(), [(301, 2, 2, 1)]);
        let back = parse_stbl(|w| t.write_subset(w, 6, 8, &cut, &|o| o, false).unwrap()).unwrap();
        assert!(matches!(back.sizes, Sizes::Constant { size: 1, count: 2 }));
        assert_eq!(back.stsc, [(1, 2, 1)]);
        // A change of samples per chunk alone starts a new stsc run.
        let all = t.chunks_for(0, 8).unwrap();
        let back = parse_stbl(|w| t.write_subset(w, 0, 8, &all, &|o| o, true).unwrap()).unwrap();
        assert_eq!(back.stsc, [(1, 2, 1), (2, 3, 1)]);
        assert!(matches!(&back.chunk_offsets, ChunkOffsets::Co64(v) if v == &[100, 200, 300]));
    }

    // From scripts/mutants: only the ffmpeg suite (pass 2, 20 s a mutant) noticed a
    // wrong sum here; this catches it in pass 1.
    #[test]
    fn duration_sums_every_run() {
        let mut t = table(vec![(1, 1, 1)], vec![0], 9, 1);
        t.stts = vec![(2, 1001), (5, 2002), (2, 1001)];
        assert_eq!(t.duration(), 4 * 1001 + 5 * 2002);
        // A damaged table cannot wrap the sum around to a small duration.
        t.stts = vec![(u32::MAX, u32::MAX), (u32::MAX, u32::MAX)];
        assert_eq!(t.duration(), u64::MAX);
    }

    #[test]
    fn modal_delta_counts_samples_not_runs() {
        let mut t = table(vec![(1, 1, 1)], vec![0], 9, 1);
        // Two runs of 1001 hold 4 samples; one run of 2002 holds 5.
        t.stts = vec![(2, 1001), (5, 2002), (2, 1001)];
        assert_eq!(t.modal_delta(), 2002);
        // A tie goes to the shorter delta.
        t.stts = vec![(2, 2002), (2, 1001)];
        assert_eq!(t.modal_delta(), 1001);
    }

    #[test]
    fn parse_rejects_a_ctts_short_of_the_samples() {
        let e = parse_stbl(|w| {
            table_box(w, b"stts", 0, 1, &[3, 1]);
            table_box(w, b"ctts", 0, 1, &[2, 0]);
            table_box(w, b"stsc", 0, 1, &[1, 3, 1]);
            w.open_full(b"stsz", 0, 0).u32(1).u32(3);
            w.close().unwrap();
            table_box(w, b"stco", 0, 1, &[0]);
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("'ctts' covers 2 of 3 samples"), "{e}");
    }
}
