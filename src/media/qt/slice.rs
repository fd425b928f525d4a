//! Planning a virtual slice: which samples of which tracks, the smallest source byte range
//! that holds them, and a new `moov` whose tables point into that range.

use std::sync::Arc;

use super::boxes::{be32, be64, BoxRef, W};
use super::movie::{Movie, Track};
use super::parsed::Parsed;
use super::tables::Chunk;
use super::timing::VideoTiming;
use super::{QtError, ReadAt, Segment, TcStart, VirtualFile};

/// What one kept track becomes.
struct Cut {
    track: usize,
    /// Decode-order sample range `[a, b)` taken from the source.
    a: u64,
    b: u64,
    chunks: Vec<Chunk>,
    /// Edit list: first media time shown, and how long (both in the track's timescale).
    media_time: i64,
    span: u64,
}

/// The rebuilt timecode track: its single sample lives in the inline part of the mdat.
struct TcCut {
    track: usize,
    value: u32,
    /// Span in the tmcd track's own timescale.
    span: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn scale(v: u64, to: u64, from: u64) -> u64 {
    (v as u128 * to as u128 / from.max(1) as u128).min(u64::MAX as u128) as u64
}

/// The presentation time of display frame `i` of the video (in video media units, zero at
/// the start of the presentation); `i == count` means the end of the last frame.
fn frame_time(t: &Track, vt: &VideoTiming, i: u64) -> i64 {
    let origin = t.edit.map_or(0, |e| e.media_time);
    let c = if i < vt.count() {
        vt.cts(&t.table, vt.sample(i))
    } else {
        let last = vt.sample(vt.count().saturating_sub(1));
        vt.cts(&t.table, last) + t.table.stts_delta(last) as i64
    };
    (c - origin).max(0)
}

pub(crate) fn plan(src: &dyn ReadAt, first: u64, end: u64) -> Result<VirtualFile, QtError> {
    plan_with(src, first, end, false)
}

/// `force_large` writes `co64` and a 64-bit mdat size even for small slices, so tests can
/// prove the >4 GiB layout with small media.
pub(crate) fn plan_with(src: &dyn ReadAt, first: u64, end: u64, force_large: bool) -> Result<VirtualFile, QtError> {
    plan_parsed(src, &Parsed::load(src)?, first, end, force_large, None)
}

pub(crate) fn plan_tc(
    src: &dyn ReadAt,
    first: u64,
    end: u64,
    force_large: bool,
    tc_start: Option<TcStart>,
) -> Result<VirtualFile, QtError> {
    plan_parsed(src, &Parsed::load(src)?, first, end, force_large, tc_start)
}

/// Plans from a movie parsed before (and perhaps cached): `src` must be the bytes `p`
/// was parsed from. `tc_start` replaces the source's timecode (one a user recorded).
pub(crate) fn plan_parsed(
    src: &dyn ReadAt,
    p: &Parsed,
    first: u64,
    end: u64,
    force_large: bool,
    tc_start: Option<TcStart>,
) -> Result<VirtualFile, QtError> {
    let tc_value = tc_start.map(|t| t.value);
    let m = &p.movie;
    let (v, vt) = p
        .video
        .as_ref()
        .map(|(v, t)| (*v, t))
        .ok_or_else(|| QtError::Unsupported("the movie has no video track to slice by frames".into()))?;
    let count = vt.count();
    if first >= end || end > count {
        return Err(QtError::Range { first, end, frames: count });
    }
    let video = &m.tracks[v];

    // ---- video: wanted frames, then back to a sync sample that decodes them all.
    let (lo, hi, min_wanted_cts) = vt.span(&video.table, first, end);
    let first_cts = vt.cts(&video.table, vt.sample(first));
    let mut start = lo;
    if let Some(ss) = &video.table.stss {
        let mut syncs: Vec<u64> = ss.iter().filter_map(|&s| (s as u64).checked_sub(1)).collect();
        syncs.sort_unstable();
        let mut k = syncs.partition_point(|&s| s <= lo);
        start = if k == 0 { 0 } else { syncs[k - 1] };
        // Open GOP: a wanted frame shown before its sync sample (a leading picture) needs
        // the GOP before; step back until no wanted frame precedes the start.
        // Equivalent mutant (scripts/mutants): `start >= 0` changes nothing, because with
        // k > 1 start is 0 only when stss lists sample 1 twice, and stepping back then
        // lands on sample 0 again.
        while k > 1 && min_wanted_cts < vt.cts(&video.table, start) && start > 0 {
            k -= 1;
            start = syncs[k - 1];
        }
    }
    let vb = hi + 1;
    let v_span = (frame_time(video, vt, end) - frame_time(video, vt, first)).max(0) as u64;
    let mut cuts = vec![Cut {
        track: v,
        a: start,
        b: vb,
        chunks: video.table.chunks_for(start, vb)?,
        media_time: first_cts - video.table.decode_time(start) as i64,
        span: v_span,
    }];

    // ---- audio: sample-exact for PCM; whole packets + edit list for coded audio.
    let t_first = frame_time(video, vt, first) as u64;
    let t_end = frame_time(video, vt, end) as u64;
    for (i, t) in m.tracks.iter().enumerate() {
        if &t.handler != b"soun" || t.table.sample_count() == 0 {
            continue;
        }
        if matches!(t.table.sizes, super::tables::Sizes::Constant { size: 1, .. }) && !t.is_pcm_format() {
            // Legacy QuickTime compressed audio (ima4, MACE, ...) lies about sample sizes;
            // its packets cannot be located from the tables alone.
            return Err(QtError::Unsupported(format!(
                "track {}: legacy compressed QuickTime audio '{}'",
                t.id,
                super::boxes::fourcc(&t.entry.format)
            )));
        }
        let ta = t.timescale as u64;
        let ma = t.edit.map_or(0, |e| e.media_time.max(0) as u64);
        let mut media_end = t.table.duration();
        if let Some(e) = t.edit.filter(|e| e.duration > 0) {
            media_end = media_end.min(ma.saturating_add(scale(e.duration, ta, m.timescale as u64)));
        }
        let m0 = ma.saturating_add(scale(t_first, ta, video.timescale as u64));
        let m1 = ma.saturating_add(scale(t_end, ta, video.timescale as u64)).min(media_end);
        if m0 >= m1 {
            continue; // this track has no audio in the slice
        }
        let (mut a, _) = t.table.sample_at_time(m0);
        let b = t.table.sample_at_time(m1 - 1).0 + 1;
        if !t.is_pcm() && a > 0 {
            // Coded audio (AAC) overlaps frames: decode one packet early; the edit list's
            // media_time then skips its output (ffmpeg turns it into skip_samples).
            a -= 1;
        }
        let media_time = (m0 - t.table.decode_time(a)) as i64;
        cuts.push(Cut { track: i, a, b, chunks: t.table.chunks_for(a, b)?, media_time, span: m1 - m0 });
    }

    // ---- timecode: one new sample, the value of the source's run the first frame lies
    // in, advanced to that frame (a slice across a break is labelled where it starts).
    // A recorded timecode counted at another rate than the source's tmcd entry cannot
    // reuse that entry: the source's track is dropped and a new one written instead.
    let same_counting = |i: usize| match (&m.tracks[i].entry.tmcd, tc_start) {
        (Some(e), Some(t)) => e.fps == t.fps && (e.flags & 1 != 0) == t.drop_frame,
        _ => true,
    };
    let tc = match m.timecode().filter(|&i| same_counting(i)) {
        Some(i) => {
            let t = &m.tracks[i];
            let e = t.entry.tmcd.as_ref().ok_or_else(|| QtError::Malformed("tmcd track without a tmcd sample description".into()))?;
            let mut value = match tc_value {
                Some(v) => v as u64,
                None => {
                    let runs = m.tmcd_samples(src, i)?;
                    let k = runs.partition_point(|&(f, _)| f <= first).max(1) - 1;
                    let (run_start, run_value) = runs[k];
                    run_value as u64 + first.saturating_sub(run_start)
                }
            };
            if e.flags & 2 != 0 {
                // 24-hour wrap flag: keep the label a valid time of day.
                let per_day = frames_per_day(e.fps as u64, e.flags & 1 != 0);
                if per_day > 0 {
                    value %= per_day;
                }
            }
            let value = u32::try_from(value).map_err(|_| QtError::Malformed("timecode frame number overflows".into()))?;
            Some(TcCut { track: i, value, span: scale(v_span, t.timescale as u64, video.timescale as u64) })
        }
        None => None,
    };
    // A recorded timecode on a source without a tmcd track: a new track is written.
    let synth = match (&tc, tc_start) {
        (None, Some(t)) if t.rate_num > 0 && t.rate_den > 0 => Some(SynthTc {
            id: m.tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1,
            start: t,
            span: scale(v_span, t.rate_num as u64, video.timescale as u64),
        }),
        _ => None,
    };

    // ---- the smallest source range holding every chunk.
    let range_start = cuts.iter().flat_map(|c| c.chunks.iter()).map(|c| c.offset).min().unwrap_or(0);
    let range_end = cuts.iter().flat_map(|c| c.chunks.iter()).map(|c| c.offset.saturating_add(c.len)).max().unwrap_or(0);
    if range_end > src.len() {
        return Err(QtError::Truncated(format!("samples of the slice reach byte {range_end} but the file ends at {}", src.len())));
    }
    let range_len = range_end - range_start;

    // ---- movie timescale: the source's if every duration is exact in it; otherwise the
    // least common multiple of the media timescales, so that no edit is rounded. A rounded
    // PCM edit would make players drop or pad samples and break sample-exactness.
    let mut spans: Vec<(u64, u64)> = cuts.iter().map(|c| (c.span, m.tracks[c.track].timescale as u64)).collect();
    if let Some(t) = &tc {
        spans.push((t.span, m.tracks[t.track].timescale as u64));
    }
    if let Some(t) = &synth {
        spans.push((t.span, t.start.rate_num as u64));
    }
    let exact = |mts: u64| spans.iter().all(|&(s, ts)| (s as u128 * mts as u128).is_multiple_of(ts as u128));
    let mut mts = m.timescale as u64;
    if !exact(mts) {
        let l = spans.iter().fold(mts, |acc, &(_, ts)| if acc == 0 { ts } else { acc / gcd(acc, ts) * ts });
        if l <= u32::MAX as u64 && exact(l) {
            mts = l;
        }
    }

    // ---- layout: ftyp, moov, mdat header, [tmcd sample], source range.
    let ftyp = m.ftyp.clone().unwrap_or_default();
    let inline_payload = if tc.is_some() || synth.is_some() { 4u64 } else { 0 };
    let payload = inline_payload + range_len;
    let mdat_hdr: u64 = if force_large || payload + 8 > u32::MAX as u64 { 16 } else { 8 };
    let mut co64 = force_large;
    let mut moov = build_moov(m, &cuts, tc.as_ref(), synth.as_ref(), mts, 0, 0, range_start, co64)?;
    let data_base = |moov_len: u64| ftyp.len() as u64 + moov_len + mdat_hdr + inline_payload;
    if !co64 && data_base(moov.len() as u64) + range_len > u32::MAX as u64 {
        co64 = true;
        moov = build_moov(m, &cuts, tc.as_ref(), synth.as_ref(), mts, 0, 0, range_start, co64)?;
    }
    // Table sizes do not depend on the offsets, so a second build with the real base has
    // the same length.
    let base = data_base(moov.len() as u64);
    moov = build_moov(m, &cuts, tc.as_ref(), synth.as_ref(), mts, base, base - inline_payload, range_start, co64)?;
    debug_assert_eq!(base, data_base(moov.len() as u64));

    let mut head = Vec::with_capacity(ftyp.len() + moov.len() + 20);
    head.extend_from_slice(&ftyp);
    head.extend_from_slice(&moov);
    if mdat_hdr == 16 {
        head.extend_from_slice(&1u32.to_be_bytes());
        head.extend_from_slice(b"mdat");
        head.extend_from_slice(&(16 + payload).to_be_bytes());
    } else {
        head.extend_from_slice(&((8 + payload) as u32).to_be_bytes());
        head.extend_from_slice(b"mdat");
    }
    if let Some(t) = &tc {
        head.extend_from_slice(&t.value.to_be_bytes());
    } else if let Some(t) = &synth {
        head.extend_from_slice(&t.start.value.to_be_bytes());
    }
    let len = head.len() as u64 + range_len;
    let mut segments = vec![Segment::Inline(Arc::from(head.into_boxed_slice()))];
    if range_len > 0 {
        segments.push(Segment::Source { offset: range_start, len: range_len });
    }
    Ok(VirtualFile { segments, len })
}

/// Frames in 24 hours of timecode labels; drop-frame skips 2 labels per minute per 30 fps
/// except every tenth minute.
pub(crate) fn frames_per_day(fps: u64, drop: bool) -> u64 {
    let mut per_hour = fps * 3600;
    if drop && fps.is_multiple_of(30) {
        per_hour -= (fps / 15) * 54;
    }
    per_hour * 24
}

/// Rewrites mvhd/mdhd/tkhd, whose layouts are: version+flags, creation, modification,
/// `mid` bytes (timescale, or track id + reserved), duration, rest. Version 0 becomes 1
/// only when a value no longer fits 32 bits.
fn write_header(w: &mut W, d: &[u8], b: &BoxRef, mid_len: usize, timescale: Option<u32>, dur: u64) -> Result<(), QtError> {
    let bad = || QtError::Malformed("short movie/track/media header".into());
    let v = *d.get(b.body).ok_or_else(bad)?;
    let flags = be32(d, b.body)? & 0x00ff_ffff;
    let (c, mo, mid_at, rest_at) = if v == 1 {
        (be64(d, b.body + 4)?, be64(d, b.body + 12)?, b.body + 20, b.body + 20 + mid_len + 8)
    } else {
        (be32(d, b.body + 4)? as u64, be32(d, b.body + 8)? as u64, b.body + 12, b.body + 12 + mid_len + 4)
    };
    let mut mid = d.get(mid_at..mid_at + mid_len).ok_or_else(bad)?.to_vec();
    if let Some(ts) = timescale {
        mid[..4].copy_from_slice(&ts.to_be_bytes());
    }
    let rest = d.get(rest_at..b.end).ok_or_else(bad)?;
    let big = v == 1 || dur > u32::MAX as u64;
    w.open_full(&b.typ, big as u8, flags);
    if big {
        w.u64(c).u64(mo).bytes(&mid).u64(dur);
    } else {
        w.u32(c as u32).u32(mo as u32).bytes(&mid).u32(dur as u32);
    }
    w.bytes(rest);
    w.close()
}

fn write_edts(w: &mut W, movie_dur: u64, media_time: i64) -> Result<(), QtError> {
    let big = movie_dur > u32::MAX as u64 || media_time > i32::MAX as i64;
    w.open(b"edts");
    w.open_full(b"elst", big as u8, 0).u32(1);
    if big {
        w.u64(movie_dur).i64(media_time);
    } else {
        w.u32(movie_dur as u32).i32(media_time as i32);
    }
    w.u32(0x0001_0000); // rate 1.0
    w.close()?;
    w.close()
}

#[allow(clippy::too_many_arguments)]
fn build_moov(
    m: &Movie,
    cuts: &[Cut],
    tc: Option<&TcCut>,
    synth: Option<&SynthTc>,
    mts: u64,
    base: u64,
    tc_offset: u64,
    range_start: u64,
    co64: bool,
) -> Result<Vec<u8>, QtError> {
    let d = &m.moov;
    let mut kept: Vec<u32> = cuts.iter().map(|c| m.tracks[c.track].id).collect();
    if let Some(t) = tc {
        kept.push(m.tracks[t.track].id);
    }
    let mut durations: Vec<u64> = cuts.iter().map(|c| scale(c.span, mts, m.tracks[c.track].timescale as u64)).collect();
    if let Some(t) = tc {
        durations.push(scale(t.span, mts, m.tracks[t.track].timescale as u64));
    }
    if let Some(t) = synth {
        kept.push(t.id);
        durations.push(scale(t.span, mts, t.start.rate_num as u64));
    }
    let movie_dur = durations.iter().copied().max().unwrap_or(0);
    let rebase = move |off: u64| base + (off - range_start);

    let mut w = W::default();
    w.open(b"moov");
    for k in &m.moov_kids {
        match &k.typ {
            b"mvhd" => write_header(&mut w, d, k, 4, Some(mts as u32), movie_dur)?,
            b"trak" => {
                let Some(ti) = m.tracks.iter().position(|t| t.trak.start == k.start) else {
                    continue;
                };
                if let Some(c) = cuts.iter().find(|c| c.track == ti) {
                    let t = &m.tracks[ti];
                    let md = scale(c.span, mts, t.timescale as u64);
                    let media_dur = t.table.decode_time(c.b) - t.table.decode_time(c.a);
                    write_trak(&mut w, d, t, &kept, md, c.media_time, media_dur, &mut |w| {
                        t.table.write_subset(w, c.a, c.b, &c.chunks, &rebase, co64)
                    })?;
                } else if let Some(tcut) = tc.filter(|x| x.track == ti) {
                    let t = &m.tracks[ti];
                    let md = scale(tcut.span, mts, t.timescale as u64);
                    write_trak(&mut w, d, t, &kept, md, 0, tcut.span, &mut |w| {
                        write_one_tmcd_sample_tables(w, tcut.span, tc_offset, co64)
                    })?;
                }
            }
            _ => {
                w.bytes(&d[k.start..k.end]);
            }
        }
    }
    if let Some(t) = synth {
        write_synth_tmcd(&mut w, t, scale(t.span, mts, t.start.rate_num as u64), tc_offset, co64)?;
    }
    w.close()?;
    Ok(w.buf)
}

/// A timecode track made for the slice (the source has none).
struct SynthTc {
    id: u32,
    start: TcStart,
    /// Span in the track's timescale (the rate's numerator).
    span: u64,
}

/// A QuickTime timecode track as QuickTime and FFmpeg write it: `tmcd` handler, `gmhd`
/// with `tcmi`, one `tmcd` sample entry (flags, timescale, frame duration, frames per
/// second) and one 4-byte sample at `tc_offset`.
fn write_synth_tmcd(w: &mut W, t: &SynthTc, movie_dur: u64, tc_offset: u64, co64: bool) -> Result<(), QtError> {
    let big = movie_dur > u32::MAX as u64 || t.span > u32::MAX as u64;
    let identity: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];
    w.open(b"trak");
    // tkhd: in movie and in preview (flags 2), not enabled: it is not a picture.
    w.open_full(b"tkhd", big as u8, 2);
    if big {
        w.u64(0).u64(0).u32(t.id).u32(0).u64(movie_dur);
    } else {
        w.u32(0).u32(0).u32(t.id).u32(0).u32(movie_dur as u32);
    }
    w.u64(0).u32(0).u32(0); // reserved, layer + alternate group, volume + reserved
    for v in identity {
        w.u32(v);
    }
    w.u32(0).u32(0); // width, height
    w.close()?;
    write_edts(w, movie_dur, 0)?;
    w.open(b"mdia");
    w.open_full(b"mdhd", big as u8, 0);
    if big {
        w.u64(0).u64(0).u32(t.start.rate_num).u64(t.span);
    } else {
        w.u32(0).u32(0).u32(t.start.rate_num).u32(t.span as u32);
    }
    w.u32(0); // language, quality
    w.close()?;
    w.open_full(b"hdlr", 0, 0).bytes(b"mhlrtmcd").u32(0).u32(0).u32(0).bytes(b"\x0fTimeCodeHandler");
    w.close()?;
    w.open(b"minf");
    w.open(b"gmhd");
    w.open_full(b"gmin", 0, 0).bytes(&[0x00, 0x40, 0x80, 0x00, 0x80, 0x00, 0x80, 0x00, 0, 0, 0, 0]);
    w.close()?;
    w.open(b"tmcd");
    w.open_full(b"tcmi", 0, 0).bytes(&[0, 0, 0, 0, 0, 12, 0, 0]).bytes(&[0; 6]).bytes(&[0xff; 6]).bytes(b"\x0dLucida Grande");
    w.close()?;
    w.close()?; // tmcd
    w.close()?; // gmhd
    w.open(b"dinf");
    w.open_full(b"dref", 0, 0).u32(1);
    w.open_full(b"url ", 0, 1);
    w.close()?;
    w.close()?;
    w.close()?; // dinf
    w.open(b"stbl");
    w.open_full(b"stsd", 0, 0).u32(1);
    w.open(b"tmcd").bytes(&[0; 6]).bytes(&[0, 1]).u32(0);
    // flags: drop frame, 24-hour wrap (as cameras write it).
    // Equivalent mutant (scripts/mutants): `^` for `|` gives the same flags, because the
    // drop-frame bit is bit 0 and the wrap bit is bit 1: no bit is in both.
    let flags = u32::from(t.start.drop_frame) | 0x2;
    w.u32(flags).u32(t.start.rate_num).u32(t.start.rate_den).bytes(&[t.start.fps, 0]);
    w.close()?; // tmcd entry
    w.close()?; // stsd
    write_one_tmcd_sample_tables(w, t.span, tc_offset, co64)?;
    w.close()?; // stbl
    w.close()?; // minf
    w.close()?; // mdia
    w.close() // trak
}

#[allow(clippy::too_many_arguments)]
fn write_trak(
    w: &mut W,
    d: &[u8],
    t: &Track,
    kept: &[u32],
    movie_dur: u64,
    media_time: i64,
    media_dur: u64,
    tables: &mut dyn FnMut(&mut W) -> Result<(), QtError>,
) -> Result<(), QtError> {
    w.open(b"trak");
    let has_edts = t.kids.iter().any(|k| &k.typ == b"edts");
    for k in &t.kids {
        match &k.typ {
            b"tkhd" => {
                write_header(w, d, k, 8, None, movie_dur)?;
                if !has_edts {
                    write_edts(w, movie_dur, media_time)?;
                }
            }
            b"edts" => write_edts(w, movie_dur, media_time)?,
            b"tref" => {
                // Keep only references to tracks that are still in the slice.
                let refs: Vec<_> = t
                    .tref
                    .iter()
                    .map(|(typ, ids)| (typ, ids.iter().copied().filter(|i| kept.contains(i)).collect::<Vec<_>>()))
                    .filter(|(_, ids)| !ids.is_empty())
                    .collect();
                if !refs.is_empty() {
                    w.open(b"tref");
                    for (typ, ids) in refs {
                        w.open(typ);
                        for i in ids {
                            w.u32(i);
                        }
                        w.close()?;
                    }
                    w.close()?;
                }
            }
            b"mdia" => {
                w.open(b"mdia");
                for mk in &t.mdia_kids {
                    match &mk.typ {
                        b"mdhd" => write_header(w, d, mk, 4, None, media_dur)?,
                        b"minf" => {
                            w.open(b"minf");
                            for nk in &t.minf_kids {
                                if &nk.typ == b"stbl" {
                                    w.open(b"stbl");
                                    // The sample description is copied verbatim: colr, fiel,
                                    // pasp, clap, gama, avcC, esds, tmcd name all survive.
                                    w.bytes(&d[t.stsd.start..t.stsd.end]);
                                    tables(w)?;
                                    w.close()?;
                                } else {
                                    w.bytes(&d[nk.start..nk.end]);
                                }
                            }
                            w.close()?;
                        }
                        _ => {
                            w.bytes(&d[mk.start..mk.end]);
                        }
                    }
                }
                w.close()?;
            }
            _ => {
                w.bytes(&d[k.start..k.end]);
            }
        }
    }
    w.close()
}

/// Sample tables of a timecode track with one 4-byte sample at `tc_offset` lasting `span`
/// (the slice's whole length): the same for a source's tmcd track and a new one.
fn write_one_tmcd_sample_tables(w: &mut W, span: u64, tc_offset: u64, co64: bool) -> Result<(), QtError> {
    w.open_full(b"stts", 0, 0).u32(1).u32(1).u32(span.min(u32::MAX as u64) as u32);
    w.close()?;
    w.open_full(b"stsc", 0, 0).u32(1).u32(1).u32(1).u32(1);
    w.close()?;
    w.open_full(b"stsz", 0, 0).u32(4).u32(1);
    w.close()?;
    if co64 {
        w.open_full(b"co64", 0, 0).u32(1).u64(tc_offset);
    } else {
        w.open_full(b"stco", 0, 0).u32(1).u32(tc_offset as u32);
    }
    w.close()
}

/// Fast end-to-end checks of the planner on tiny ffmpeg-made clips (64x64, a second or
/// two): the same judgement as media/qt/tests.rs (every frame's md5, every PCM sample,
/// timecode and reel as ffprobe and MediaInfo read them), cheap enough for scripts/mutants
/// to run on every mutant of this file.
#[cfg(test)]
mod tests {
    use super::super::tests::{check_slice_with, media, mediainfo_tc, sh, source_md5s, video_md5s};
    use super::super::{plan_slice, plan_slice_with_tc, read_movie, QtError, ReadAt, TcStart, TrackKind};
    use std::path::Path;

    /// The slice's bytes as a file, for the third-party tools.
    fn slice_file(src: &dyn ReadAt, first: u64, end: u64, tc: Option<TcStart>) -> tempfile::NamedTempFile {
        let vf = plan_slice_with_tc(src, first, end, tc).unwrap();
        let mut out = vec![0u8; vf.len as usize];
        assert_eq!(vf.read_at(src, 0, &mut out).unwrap(), out.len());
        let f = tempfile::Builder::new().suffix(".mov").tempfile().unwrap();
        std::fs::write(f.path(), &out).unwrap();
        f
    }

    /// The timecode labels ffprobe reads in the file (it shows the tmcd's on the video
    /// stream too), each once.
    fn ffprobe_tcs(p: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            sh(&["ffprobe", "-v", "error", "-show_entries", "stream_tags=timecode", "-of", "csv=p=0", p.to_str().unwrap()])
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
        v.dedup();
        v
    }

    // Small tests rather than a few big ones: scripts/mutants runs them with nextest, which
    // stops at the first failure, so a caught mutant costs one short test.
    #[test]
    fn prores_with_two_pcm_rates_slices_frame_and_sample_exact() {
        check_slice_with("tiny-prores.mov", 5, 17, false);
    }

    #[test]
    fn prores_first_and_last_frame_slices() {
        check_slice_with("tiny-prores.mov", 0, 1, false);
        check_slice_with("tiny-prores.mov", 23, 24, false);
    }

    #[test]
    fn prores_large_layout_slice() {
        check_slice_with("tiny-prores.mov", 3, 9, true);
    }

    #[test]
    fn h264_slice_from_mid_gop_with_b_frames_and_aac() {
        check_slice_with("tiny-h264.mov", 17, 30, false);
    }

    #[test]
    fn h264_one_b_frame_and_last_frame_slices() {
        check_slice_with("tiny-h264.mov", 14, 15, false);
        check_slice_with("tiny-h264.mov", 49, 50, false);
    }

    #[test]
    fn h264_large_layout_and_mp4_slices() {
        check_slice_with("tiny-h264.mov", 11, 13, true);
        check_slice_with("tiny-h264.mp4", 17, 30, false);
    }

    /// Video packets in the file, as ffprobe counts them (no decoding).
    fn video_packets(p: &Path) -> u64 {
        let out = sh(&[
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            p.to_str().unwrap(),
        ]);
        out.trim().parse().unwrap_or_else(|_| panic!("ffprobe said {out:?}"))
    }

    /// A slice carries the pictures it shows plus only what decoding them needs: from the
    /// sync sample before its first frame (a GOP of 12 here), not from the file's start.
    #[test]
    fn a_long_gop_slice_starts_at_the_sync_sample_before_its_first_frame() {
        let src = std::fs::File::open(media("tiny-h264.mov")).unwrap();
        for (first, end) in [(17u64, 30u64), (37, 38), (49, 50)] {
            let out = slice_file(&src, first, end, None);
            let n = video_packets(out.path());
            assert!(n >= end - first && n <= end - first + 12 + 3, "{first}..{end}: {n} video packets");
        }
        // Intra-only video: exactly the frames shown.
        let src = std::fs::File::open(media("tiny-prores.mov")).unwrap();
        assert_eq!(video_packets(slice_file(&src, 5, 17, None).path()), 12);
    }

    /// Open GOP: the B-frames shown before an I-frame are decoded after it and reference
    /// the GOP before, so a slice starting on them reaches back one more GOP.
    #[test]
    fn open_gop_leading_pictures_slice_right() {
        for (first, end) in [(9, 14), (10, 11), (21, 26)] {
            check_slice_with("tiny-opengop.mov", first, end, false);
        }
        let src = std::fs::File::open(media("tiny-opengop.mov")).unwrap();
        // Frames 12..16 begin at their own I-frame, so no GOP before it is needed: in decode
        // order the I-frame, its three leading B-frames (riding along), then P and 3 B.
        assert_eq!(video_packets(slice_file(&src, 12, 16, None).path()), 8);
    }

    /// The source bytes a slice of frames `[first, end)` of a video-only file needs, from
    /// ffprobe's packets: decoding starts at the last sync packet (in decode order) that is
    /// neither decoded after the first wanted packet nor shown after the earliest wanted
    /// frame (an open GOP's leading pictures need the GOP before), and runs to the end of
    /// the last wanted packet.
    fn needed_bytes(p: &Path, first: usize, end: usize) -> (u64, u64) {
        let out = sh(&[
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,flags,pos,size",
            "-of",
            "csv=p=0",
            p.to_str().unwrap(),
        ]);
        // Decode order: (pts, sync, pos, size).
        let pkts: Vec<(i64, bool, u64, u64)> = out
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].parse().unwrap(), f[3].starts_with('K'), f[2].parse().unwrap(), f[1].parse().unwrap())
            })
            .collect();
        let mut shown: Vec<usize> = (0..pkts.len()).collect();
        shown.sort_by_key(|&i| pkts[i].0);
        let wanted = &shown[first..end];
        let (lo, hi) = (*wanted.iter().min().unwrap(), *wanted.iter().max().unwrap());
        let min_pts = wanted.iter().map(|&i| pkts[i].0).min().unwrap();
        let start = (0..=lo).rev().find(|&i| pkts[i].1 && pkts[i].0 <= min_pts).unwrap();
        let stop = (start..=hi).map(|i| pkts[i].2 + pkts[i].3).max().unwrap();
        (pkts[start].2, stop - pkts[start].2)
    }

    /// The slice's one source range is exactly the bytes decoding its frames needs: not
    /// from the file's start (a one-frame slice of a long clip stays small), and reaching
    /// one GOP back only for an open GOP's leading pictures. The pictures are checked too.
    #[test]
    fn a_slice_reads_only_the_gops_its_frames_need() {
        let path = media("tiny-opengop.mov");
        let src = std::fs::File::open(&path).unwrap();
        for (first, end) in [(45, 50), (12, 16), (0, 3), (47, 48), (30, 31)] {
            let vf = plan_slice(&src, first as u64, end as u64).unwrap();
            let got = match vf.segments.last() {
                Some(super::super::Segment::Source { offset, len }) => (*offset, *len),
                other => panic!("{other:?}"),
            };
            assert_eq!(got, needed_bytes(&path, first, end), "frames {first}..{end}");
        }
        check_slice_with("tiny-opengop.mov", 45, 50, false);
    }

    /// A stream whose first sync sample is not its first sample (cut from a broadcast
    /// mid-GOP; here the open-GOP clip with its first stss entry pointing at the second
    /// I-frame): the pictures before it cannot be decoded from anything earlier, and asking
    /// for them gives a slice from that sync sample, never a panic.
    #[test]
    fn frames_before_the_first_sync_sample_never_panic() {
        let path = media("tiny-opengop.mov");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == b"stss").unwrap() + 12;
        let second: [u8; 4] = bytes[at + 4..at + 8].try_into().unwrap();
        bytes[at..at + 4].copy_from_slice(&second);
        let sync = u32::from_be_bytes(second) as usize - 1;
        // Decode order = file order: where the I-frame and the first packet are.
        let out = sh(&[
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pos",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ]);
        let pos: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
        for (first, end, from) in [(9u64, 12u64, pos[sync]), (10, 14, pos[sync]), (0, 1, pos[0])] {
            let vf = plan_slice(&bytes, first, end).unwrap();
            let Some(super::super::Segment::Source { offset, .. }) = vf.segments.last() else { panic!() };
            assert_eq!(*offset, from, "frames {first}..{end}");
        }
    }

    /// A drop-frame clip starting at 23:59:59;26 whose tmcd has the 24-hour flag (cameras
    /// set it; ffmpeg does not, so the test sets it in a copy): a slice from after midnight
    /// is labelled 00:00:00;xx, as the camera's own counter showed it.
    #[test]
    fn a_slice_past_midnight_wraps_to_a_time_of_day() {
        let path = media("tiny-df.mov");
        let mut bytes = std::fs::read(&path).unwrap();
        let tc = read_movie(&bytes).unwrap().timecode.unwrap();
        assert_eq!((tc.drop_frame, tc.flags & 2), (true, 0));
        // stsd: version+flags, count, then the entry: size, 'tmcd', 6 reserved, data
        // reference index, 4 reserved, flags.
        let at =
            (0..bytes.len() - 20).find(|&i| &bytes[i..i + 4] == b"stsd" && &bytes[i + 16..i + 20] == b"tmcd").expect("a tmcd sample entry");
        bytes[at + 20 + 6 + 2 + 4 + 3] |= 2;
        assert_eq!(read_movie(&bytes).unwrap().timecode.unwrap().flags, tc.flags | 2);
        for (first, label, value) in [(0u64, "23:59:59;26", 2_589_404u32), (4, "00:00:00;00", 0), (7, "00:00:00;03", 3)] {
            let out = slice_file(&bytes, first, 12, None);
            assert_eq!(ffprobe_tcs(out.path()), vec![label.to_string()], "frame {first}");
            assert_eq!(mediainfo_tc(out.path()).as_deref(), Some(label), "frame {first}");
            let again = read_movie(&std::fs::File::open(out.path()).unwrap()).unwrap().timecode.unwrap();
            assert_eq!((again.start_frame, again.flags), (value, tc.flags | 2), "frame {first}");
            assert_eq!(video_md5s(out.path()), source_md5s(&path)[first as usize..12].to_vec());
        }
        // Without the flag the count goes on past 24 hours, as ffprobe reads the source.
        let out = slice_file(&std::fs::File::open(&path).unwrap(), 4, 12, None);
        assert_eq!(ffprobe_tcs(out.path()), vec!["24:00:00;00".to_string()]);
    }

    fn tc(value: u32, rate_num: u32, rate_den: u32, fps: u8, drop_frame: bool) -> TcStart {
        TcStart { value, rate_num, rate_den, fps, drop_frame }
    }

    /// Slices frames 2..9 of `name` with a recorded start timecode and checks the label
    /// ffprobe and MediaInfo read, the one tmcd track's counting ((timescale, frame
    /// duration)) and that the pictures are the source's.
    fn check_recorded(name: &str, start: TcStart, label: &str, counting: (u32, u32)) {
        let path = media(name);
        let src = std::fs::File::open(&path).unwrap();
        let out = slice_file(&src, 2, 9, Some(start));
        let ctx = format!("{name} {start:?}");
        assert_eq!(ffprobe_tcs(out.path()), vec![label.to_string()], "{ctx}");
        assert_eq!(mediainfo_tc(out.path()).as_deref(), Some(label), "{ctx}");
        let info = read_movie(&std::fs::File::open(out.path()).unwrap()).unwrap();
        let t = info.timecode.clone().unwrap();
        assert_eq!((t.start_frame, t.fps, t.drop_frame), (start.value, start.fps, start.drop_frame), "{ctx}");
        assert_eq!((t.timescale, t.frame_duration), counting, "{ctx}");
        // The source's tmcd track is kept when it counts the same way: its reel name too.
        let source_tc = read_movie(&src).unwrap().timecode;
        let same =
            source_tc.as_ref().is_some_and(|s| (s.timescale, s.frame_duration, s.drop_frame) == (counting.0, counting.1, start.drop_frame));
        assert_eq!(t.reel, if same { source_tc.and_then(|s| s.reel) } else { None }, "{ctx}");
        assert_eq!(info.tracks.iter().filter(|t| t.kind == TrackKind::Timecode).count(), 1, "{ctx}");
        assert_eq!(video_md5s(out.path()), source_md5s(&path)[2..9].to_vec(), "{ctx}");
    }

    /// Recorded timecodes counted as the source's tmcd counts replace its sample.
    #[test]
    fn a_recorded_timecode_replaces_the_sample_of_a_tmcd_that_counts_the_same() {
        check_recorded("tiny-prores.mov", tc(86_400 * 2 + 7, 24000, 1001, 24, false), "02:00:00:07", (24000, 1001));
        check_recorded("tiny-df.mov", tc(107_892 + 2, 30000, 1001, 30, true), "01:00:00;02", (30000, 1001));
    }

    /// Counted another way (another rate, or non-drop against drop frame): a new track
    /// replaces the source's, so the label is read at the recorded rate.
    #[test]
    fn a_recorded_timecode_counted_otherwise_gets_its_own_track() {
        check_recorded("tiny-prores.mov", tc(90_000 + 3, 25, 1, 25, false), "01:00:00:03", (25, 1));
        check_recorded("tiny-df.mov", tc(30 * 3600 + 5, 30, 1, 30, false), "01:00:00:05", (30, 1));
    }

    /// A source without a timecode track (an MP4) gets one, drop frame included.
    #[test]
    fn a_recorded_timecode_on_a_source_without_tmcd_gets_a_new_track() {
        check_recorded("tiny-h264.mp4", tc(1_800 + 2, 30000, 1001, 30, true), "00:01:00;04", (30000, 1001));
    }

    /// 8-bit mono PCM declares one byte per sample, as legacy compressed QuickTime audio
    /// (refused: its packets cannot be located) does; it is PCM and sliced sample-exact.
    #[test]
    fn one_byte_pcm_slices_sample_exact() {
        check_slice_with("tiny-u8.mov", 3, 17, false);
    }

    #[test]
    fn out_of_range_and_cut_sources_are_errors() {
        let path = media("tiny-prores.mov");
        let src = std::fs::File::open(&path).unwrap();
        for (a, b) in [(5, 5), (6, 5), (23, 25), (24, 25)] {
            match plan_slice(&src, a, b) {
                Err(QtError::Range { first, end, frames: 24 }) => assert_eq!((first, end), (a, b)),
                other => panic!("{a}..{b}: {other:?}"),
            }
        }
        assert!(plan_slice(&src, 0, 24).is_ok());
    }
}

#[cfg(test)]
#[path = "slice_unit_tests.rs"]
mod unit_tests;
