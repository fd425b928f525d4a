//! Unit tests of the slice planner on movies built box by box in memory (movie_tests.rs'
//! builder): the layouts ffmpeg's small test clips never reach, which are version 1
//! headers, durations and edits past 32 bits, a new timecode track that long, and an
//! mdat over 4 GiB (from a sparse source that holds none of its bytes). The slice is read
//! back with the module's own parser, and every figure is checked against a value worked
//! out by hand; the ffmpeg suites (slice.rs' tests, tests.rs) judge the pictures and sound.

use super::super::boxes::{be32, be64, children, BoxRef};
use super::super::movie::tests::{
    broken_timecode, file, sound_v0, tmcd, tmcd_entry, video, Layout, SparseWithHead, TrackSpec, CREATED, FTYP, MODIFIED,
};
use super::super::movie::{header_times, load, Movie};
use super::super::tables::ChunkOffsets;
use super::*;

/// A planned slice as a source, for reading it back.
struct Sliced<'a> {
    vf: &'a VirtualFile,
    src: &'a dyn ReadAt,
}

impl ReadAt for Sliced<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.vf.read_at(self.src, offset, buf)
    }
    fn len(&self) -> u64 {
        self.vf.len
    }
}

fn plan_bytes(src: &dyn ReadAt, first: u64, end: u64, tc: Option<TcStart>) -> (VirtualFile, Movie) {
    let vf = plan_tc(src, first, end, false, tc).unwrap_or_else(|e| panic!("{e}"));
    let m = load(&Sliced { vf: &vf, src }).unwrap_or_else(|e| panic!("the slice does not parse: {e}"));
    (vf, m)
}

/// The box at `path` inside a parsed movie's `moov` (tracks by index: `trak` is the
/// `n`th track when given as (b"trak", n)).
fn find_box(m: &Movie, path: &[(&[u8; 4], usize)]) -> BoxRef {
    let mut kids = m.moov_kids.clone();
    let mut found = None;
    for &(typ, n) in path {
        let b = *kids.iter().filter(|k| &k.typ == typ).nth(n).unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(typ)));
        kids = children(&m.moov, b.body, b.end).unwrap_or_default();
        found = Some(b);
    }
    found.unwrap()
}

/// The 24 flag bits of a full box.
fn flags(m: &Movie, b: &BoxRef) -> u32 {
    be32(&m.moov, b.body).unwrap() & 0x00ff_ffff
}

/// (version, creation, modification) of a header box.
fn times(m: &Movie, b: &BoxRef) -> (u8, u64, u64) {
    let d = &m.moov;
    if d[b.body] == 1 {
        (1, be64(d, b.body + 4).unwrap(), be64(d, b.body + 12).unwrap())
    } else {
        (d[b.body], be32(d, b.body + 4).unwrap() as u64, be32(d, b.body + 8).unwrap() as u64)
    }
}

/// tkhd: (version, track id, duration).
fn tkhd(m: &Movie, b: &BoxRef) -> (u8, u32, u64) {
    let d = &m.moov;
    if d[b.body] == 1 {
        (1, be32(d, b.body + 20).unwrap(), be64(d, b.body + 28).unwrap())
    } else {
        (0, be32(d, b.body + 12).unwrap(), be32(d, b.body + 20).unwrap() as u64)
    }
}

#[test]
fn headers_keep_their_version_and_times() {
    for version in [0u8, 1] {
        let mut v = video(10);
        v.tkhd_version = version;
        v.mdhd_version = version;
        v.id = 5;
        let src = file(&[v], &Layout { mvhd_version: version, ..Default::default() });
        let (_, m) = plan_bytes(&src, 2, 5, None);
        let source = load(&src).unwrap();
        let c = (CREATED as u64, MODIFIED as u64);
        for path in [&[(b"mvhd", 0)][..], &[(b"trak", 0), (b"tkhd", 0)], &[(b"trak", 0), (b"mdia", 0), (b"mdhd", 0)]] {
            let (b, was) = (find_box(&m, path), find_box(&source, path));
            assert_eq!(times(&m, &b), (version, c.0, c.1), "version {version} {path:?}");
            // The fields after the duration are copied as they were.
            assert_eq!(b.end - b.start, was.end - was.start, "version {version} {path:?}");
        }
        // The track stays enabled and in the movie (tkhd flags 3), nothing more.
        assert_eq!(flags(&m, &find_box(&m, &[(b"trak", 0), (b"tkhd", 0)])), 3);
        assert_eq!(flags(&m, &find_box(&m, &[(b"mvhd", 0)])), 0);
        // 3 frames of 1/25 s: 72 in the movie's 600, 3 in the media's 25.
        assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"mvhd", 0)])).unwrap(), (version, 600, 72));
        assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 0), (b"tkhd", 0)])), (version, 5, 72));
        assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"trak", 0), (b"mdia", 0), (b"mdhd", 0)])).unwrap(), (version, 25, 3));
        assert_eq!(m.tracks[0].edit.map(|e| (e.media_time, e.duration)), Some((0, 72)));
    }
}

/// 4 frames of 2^31 ticks each at a media timescale of 1, only the first a sync sample:
/// a slice of the last frame starts decoding at the first, so its edit skips 3 * 2^31
/// ticks (past i32) and lasts 2^31 s (past u32 in the movie's 600).
fn long_frames() -> Vec<u8> {
    let mut v = video(4);
    v.timescale = 1;
    v.stts = vec![(4, 1 << 31)];
    v.stss = Some(vec![1]);
    file(&[v], &Layout::default())
}

#[test]
fn durations_and_edits_past_32_bits_are_written_64_bit() {
    let src = long_frames();
    let (_, m) = plan_bytes(&src, 3, 4, None);
    let frame = 1u64 << 31;
    assert_eq!(m.tracks[0].edit.map(|e| (e.media_time, e.duration)), Some((3 * frame as i64, 600 * frame)));
    assert_eq!(m.tracks[0].table.sample_count(), 4);
    let elst = find_box(&m, &[(b"trak", 0), (b"edts", 0), (b"elst", 0)]);
    assert_eq!(m.moov[elst.body], 1);
    assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"mvhd", 0)])).unwrap(), (1, 600, 600 * frame));
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 0), (b"tkhd", 0)])), (1, 1, 600 * frame));
    assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"trak", 0), (b"mdia", 0), (b"mdhd", 0)])).unwrap(), (1, 1, 4 * frame));
    // Just under both limits stays 32-bit: the second frame of frames of 2^30 ticks.
    let mut v = video(4);
    v.timescale = 600;
    v.stts = vec![(4, (1 << 31) - 1)];
    v.stss = Some(vec![1]);
    let src = file(&[v], &Layout::default());
    let (_, m) = plan_bytes(&src, 1, 2, None);
    let elst = find_box(&m, &[(b"trak", 0), (b"edts", 0), (b"elst", 0)]);
    assert_eq!(m.moov[elst.body], 0);
    assert_eq!(m.tracks[0].edit.map(|e| (e.media_time, e.duration)), Some(((1 << 31) - 1, (1 << 31) - 1)));
    assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"mvhd", 0)])).unwrap(), (0, 600, (1 << 31) - 1));
}

#[test]
fn a_duration_of_exactly_u32_max_stays_32_bit() {
    // One frame of u32::MAX ticks at the movie's own timescale: every header and the
    // edit hold it in 32 bits.
    let mut v = video(2);
    v.timescale = 600;
    v.stts = vec![(1, u32::MAX), (1, 1)];
    let src = file(&[v], &Layout::default());
    let (_, m) = plan_bytes(&src, 0, 1, None);
    let max = u32::MAX as u64;
    assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"mvhd", 0)])).unwrap(), (0, 600, max));
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 0), (b"tkhd", 0)])), (0, 1, max));
    assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"trak", 0), (b"mdia", 0), (b"mdhd", 0)])).unwrap(), (0, 600, max));
    let elst = find_box(&m, &[(b"trak", 0), (b"edts", 0), (b"elst", 0)]);
    assert_eq!(m.moov[elst.body], 0);
    assert_eq!(m.tracks[0].edit.map(|e| (e.media_time, e.duration)), Some((0, max)));
}

fn recorded(value: u32) -> TcStart {
    TcStart { value, rate_num: 30000, rate_den: 1001, fps: 30, drop_frame: true }
}

#[test]
fn a_new_timecode_track_carries_the_recorded_start_and_counting() {
    let src = file(&[video(10)], &Layout::default());
    let (vf, m) = plan_bytes(&src, 2, 5, Some(recorded(1234)));
    let sliced = Sliced { vf: &vf, src: &src };
    let tc = m.timecode().expect("a timecode track");
    assert_eq!((tc, m.tracks[tc].id, &m.tracks[tc].handler), (1, 2, b"tmcd"));
    let e = m.tracks[tc].entry.tmcd.clone().unwrap();
    assert_eq!((e.flags, e.timescale, e.frame_duration, e.fps), (3, 30000, 1001, 30));
    assert_eq!(m.tmcd_samples(&sliced, tc).unwrap(), vec![(0, 1234)]);
    // 3 frames of 1/25 s are 3600 ticks of 1/30000 s, and 72 of the movie's 1/600 s.
    assert_eq!((m.tracks[tc].timescale, m.tracks[tc].table.duration()), (30000, 3600));
    assert_eq!(m.timescale, 600);
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 1), (b"tkhd", 0)])), (0, 2, 72));
    assert_eq!(m.tracks[tc].edit.map(|e| (e.media_time, e.duration)), Some((0, 72)));
    // Not drop frame: flag 2 (24-hour wrap) alone.
    let (_, m) = plan_bytes(&src, 2, 5, Some(TcStart { drop_frame: false, ..recorded(7) }));
    assert_eq!(m.tracks[1].entry.tmcd.as_ref().unwrap().flags, 2);
    // A rate of 0 is no timecode: none is made.
    for (num, den) in [(0, 1001), (30000, 0)] {
        let (_, m) = plan_bytes(&src, 2, 5, Some(TcStart { rate_num: num, rate_den: den, ..recorded(7) }));
        assert_eq!((m.timecode(), m.tracks.len()), (None, 1), "{num}/{den}");
    }
}

#[test]
fn a_new_timecode_track_past_32_bits_is_written_64_bit() {
    let src = long_frames();
    let (vf, m) = plan_bytes(&src, 3, 4, Some(recorded(99)));
    let tc = m.timecode().expect("a timecode track");
    // 2^31 s at 30000 ticks a second; in the movie timescale (600 holds it exactly) too.
    let span = 30000u64 << 31;
    assert_eq!(m.tracks[tc].table.duration(), span.min(u32::MAX as u64), "its one stts delta saturates");
    assert_eq!(header_times(&m.moov, &find_box(&m, &[(b"trak", 1), (b"mdia", 0), (b"mdhd", 0)])).unwrap(), (1, 30000, span));
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 1), (b"tkhd", 0)])), (1, 2, 600u64 << 31));
    assert_eq!(m.tracks[tc].edit.map(|e| (e.media_time, e.duration)), Some((0, 600u64 << 31)));
    assert_eq!(m.tmcd_start(&Sliced { vf: &vf, src: &src }, tc).unwrap(), 99);
}

#[test]
fn a_new_timecode_track_goes_64_bit_when_either_of_its_durations_does() {
    let slice = |delta: u32, frames: u64, tc: TcStart| {
        let mut v = video(2);
        v.timescale = 600;
        v.stts = vec![(2, delta)];
        let src = file(&[v], &Layout::default());
        plan_bytes(&src, 0, frames, Some(tc)).1
    };
    let mdhd = |m: &Movie| header_times(&m.moov, &find_box(m, &[(b"trak", 1), (b"mdia", 0), (b"mdhd", 0)])).unwrap();
    // 2^27 ticks of 1/600 s fit 32 bits; at 30000 a second they do not.
    let m = slice(1 << 27, 1, recorded(5));
    assert_eq!(mdhd(&m), (1, 30000, 50 << 27));
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 1), (b"tkhd", 0)])), (1, 2, 1 << 27));
    // 6e9 ticks of 1/600 s do not; at 24 a second they do.
    let m = slice(3_000_000_000, 2, TcStart { value: 5, rate_num: 24, rate_den: 1, fps: 24, drop_frame: false });
    assert_eq!(mdhd(&m), (1, 24, 240_000_000));
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 1), (b"tkhd", 0)])), (1, 2, 6_000_000_000));
    // Both exactly u32::MAX (a timecode counted in the movie's 1/600 s): 32-bit.
    let m = slice(u32::MAX, 1, TcStart { value: 5, rate_num: 600, rate_den: 24, fps: 25, drop_frame: false });
    assert_eq!(mdhd(&m), (0, 600, u32::MAX as u64));
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 1), (b"tkhd", 0)])), (0, 2, u32::MAX as u64));
}

/// A video of `sizes.len()` frames of those sizes at the start of an mdat, in a sparse
/// source that holds none of the frames' bytes.
fn big_frames(sizes: &[u32]) -> SparseWithHead {
    let mut v = video(sizes.len() as u32);
    v.each = Some(sizes.to_vec());
    let payload: u64 = sizes.iter().map(|&s| s as u64).sum();
    let mut head = FTYP.to_vec();
    head.extend(1u32.to_be_bytes());
    head.extend(b"mdat");
    head.extend((16 + payload).to_be_bytes());
    let data = head.len() as u64;
    let tail = super::super::movie::tests::moov(&[v], &Layout { payload: Vec::new(), ..Default::default() }, data);
    SparseWithHead { head, zeros: payload, tail }
}

/// The slice's mdat header: (header bytes, declared size), and its source range.
fn mdat_of(vf: &VirtualFile) -> ((usize, u64), (u64, u64)) {
    let Segment::Inline(head) = &vf.segments[0] else { panic!("no header") };
    let at = head.windows(4).rposition(|w| w == b"mdat").unwrap() - 4;
    let size32 = u32::from_be_bytes(head[at..at + 4].try_into().unwrap());
    let hdr = if size32 == 1 { (16, u64::from_be_bytes(head[at + 8..at + 16].try_into().unwrap())) } else { (8, size32 as u64) };
    let Some(Segment::Source { offset, len }) = vf.segments.last() else { panic!("no source range") };
    (hdr, (*offset, *len))
}

#[test]
fn a_slice_over_4_gib_gets_a_64_bit_mdat_and_chunk_offsets() {
    let src = big_frames(&[0x8000_0000, 0x8000_0000, 16]);
    let data = FTYP.len() as u64 + 16;
    // Both big frames: 4 GiB of payload.
    let (vf, m) = plan_bytes(&src, 0, 2, None);
    let (hdr, range) = mdat_of(&vf);
    assert_eq!((hdr, range), ((16, 16 + (1 << 32)), (data, 1 << 32)));
    let ChunkOffsets::Co64(offsets) = &m.tracks[0].table.chunk_offsets else { panic!("stco for a 4 GiB mdat") };
    assert_eq!(offsets, &vec![vf.segments[0].len()]);
    // One of them: 2 GiB, 32-bit both.
    let (vf, m) = plan_bytes(&src, 1, 2, None);
    let (hdr, range) = mdat_of(&vf);
    assert_eq!((hdr, range), ((8, 8 + (1 << 31)), (data + (1 << 31), 1 << 31)));
    let ChunkOffsets::Stco(offsets) = &m.tracks[0].table.chunk_offsets else { panic!("co64 for a 2 GiB mdat") };
    assert_eq!(offsets, &vec![vf.segments[0].len() as u32]);
}

#[test]
fn the_mdat_and_offsets_go_64_bit_exactly_past_u32() {
    // What a slice's header is, measured on a small one: its offsets' width does not change it.
    let base = {
        let src = big_frames(&[16, 16]);
        plan_bytes(&src, 0, 1, None).0.segments[0].len()
    };
    // A frame ending exactly at u32::MAX stays 32-bit; one byte more is 64-bit.
    let fits = (u32::MAX as u64 - base) as u32;
    let src = big_frames(&[fits, 16]);
    let (vf, m) = plan_bytes(&src, 0, 1, None);
    assert_eq!(mdat_of(&vf).0, (8, 8 + fits as u64));
    assert!(matches!(&m.tracks[0].table.chunk_offsets, ChunkOffsets::Stco(o) if o == &vec![base as u32]));
    let src = big_frames(&[fits + 1, 16]);
    let (vf, m) = plan_bytes(&src, 0, 1, None);
    assert!(matches!(&m.tracks[0].table.chunk_offsets, ChunkOffsets::Co64(_)));
    assert_eq!(mdat_of(&vf).0, (8, 8 + fits as u64 + 1));
    // The mdat header goes 64-bit when its own size would not fit: payload + 8 past u32.
    let src = big_frames(&[u32::MAX - 8, 16]);
    assert_eq!(mdat_of(&plan_bytes(&src, 0, 1, None).0).0, (8, u32::MAX as u64));
    let src = big_frames(&[u32::MAX - 7, 16]);
    assert_eq!(mdat_of(&plan_bytes(&src, 0, 1, None).0).0, (16, 16 + u32::MAX as u64 - 7));
}

#[test]
fn a_source_timecode_track_is_cut_to_one_sample() {
    let mut t = tmcd(tmcd_entry(0, 25, 1, 25, &[]));
    t.timescale = 25;
    t.stts = vec![(1, 10)];
    t.at = 60;
    let mut payload = vec![0u8; 60];
    payload.extend(1000u32.to_be_bytes());
    let mut v = video(10);
    v.tref = vec![(*b"tmcd", vec![3]), (*b"chap", vec![9])];
    let src = file(&[v, t], &Layout { payload, ..Default::default() });
    let (vf, m) = plan_bytes(&src, 4, 7, None);
    let tc = m.timecode().unwrap();
    assert_eq!(m.tmcd_samples(&Sliced { vf: &vf, src: &src }, tc).unwrap(), vec![(0, 1004)]);
    assert_eq!((m.tracks[tc].table.duration(), m.tracks[tc].timescale), (3, 25));
    // The reference to the dropped chapter track is gone; the timecode's stays.
    assert_eq!(m.tracks[0].tref, vec![(*b"tmcd", vec![3])]);
    assert_eq!(tkhd(&m, &find_box(&m, &[(b"trak", 1), (b"tkhd", 0)])), (0, 3, 72));
}

/// Video of 10 frames at 25 fps plus a sound track at 1000 Hz (`format`: "sowt" PCM with
/// one 2-byte sample a tick, or "mp4a" packets of 100 ticks), its samples from byte 16 of
/// the payload, with an optional edit (duration in the movie's 1/600 s, media time).
fn with_audio(format: &[u8; 4], edit: Option<(u64, i64)>) -> Vec<u8> {
    let mut a = TrackSpec::new(b"soun", 2, 1000, sound_v0(format, 1, 16, 1000), 400, 2);
    if format == b"mp4a" {
        a.stts = vec![(4, 100)];
        a.each = Some(vec![5; 4]);
    }
    a.at = 16;
    a.elst = edit.map(|e| (0, vec![e]));
    file(&[video(10), a], &Layout { payload: vec![0x5a; 1024], ..Default::default() })
}

/// (samples, edit media time) of the slice's sound track.
fn audio_cut(src: &[u8], first: u64, end: u64) -> (u64, i64) {
    let (_, m) = plan_bytes(&src.to_vec(), first, end, None);
    let t = &m.tracks[1];
    (t.table.sample_count(), t.edit.map_or(0, |e| e.media_time))
}

#[test]
fn a_sound_edit_shorter_than_its_media_ends_the_sound() {
    // Frames 2..8 are 80..320 ms; the edit ends the sound at 200 ms (120/600 s).
    assert_eq!(audio_cut(&with_audio(b"sowt", Some((120, 0))), 2, 8), (120, 0));
    // An edit of duration 0 runs to the end of the media, as does no edit.
    assert_eq!(audio_cut(&with_audio(b"sowt", Some((0, 0))), 2, 8), (240, 0));
    assert_eq!(audio_cut(&with_audio(b"sowt", None), 2, 8), (240, 0));
}

#[test]
fn coded_sound_starts_one_packet_early_but_never_before_the_first() {
    // Packets of 100 ms: frames 0..5 (0..200 ms) need packets 0 and 1, nothing earlier.
    assert_eq!(audio_cut(&with_audio(b"mp4a", None), 0, 5), (2, 0));
    // Frames 3..8 (120..320 ms) start in packet 1: decoding starts at packet 0, and the
    // edit skips its 120 ms.
    assert_eq!(audio_cut(&with_audio(b"mp4a", None), 3, 8), (4, 120));
}

/// The slice's timecode: the value of its one tmcd sample.
fn slice_tc(src: &[u8], first: u64, end: u64) -> u32 {
    let src = src.to_vec();
    let (vf, m) = plan_bytes(&src, first, end, None);
    m.tmcd_start(&Sliced { vf: &vf, src: &src }, m.timecode().unwrap()).unwrap()
}

#[test]
fn a_slice_is_labelled_from_the_timecode_run_its_first_frame_is_in() {
    // Runs start at frames 0 (90000), 10 (5) and 25 (77).
    let src = broken_timecode();
    for (first, value) in [(3u64, 90_003u32), (9, 90_009), (10, 5), (12, 7), (25, 77), (30, 82)] {
        assert_eq!(slice_tc(&src, first, first + 2), value, "from frame {first}");
    }
}

/// A 10-frame video with a tmcd track (`flags`, `fps`) whose one sample is `value`.
fn tc_source(flags: u32, fps: u8, value: u32) -> Vec<u8> {
    let mut t = tmcd(tmcd_entry(flags, 30, 1, fps, &[]));
    t.timescale = 30;
    t.stts = vec![(1, 12)];
    t.at = 16;
    let mut payload = vec![0u8; 16];
    payload.extend(value.to_be_bytes());
    file(&[video(10), t], &Layout { payload, ..Default::default() })
}

#[test]
fn the_24_hour_flag_wraps_at_a_day_of_the_tracks_own_counting() {
    // 30 fps non-drop: a day is 2 592 000 frames (drop frame would be 2 589 408).
    assert_eq!(slice_tc(&tc_source(2, 30, 2_592_000 + 5), 1, 3), 6);
    // Drop frame counts a day of 2 589 408 frames.
    assert_eq!(slice_tc(&tc_source(3, 30, 2_589_408 + 5), 1, 3), 6);
    // Without the flag the count runs on; with no frame rate there is no day to wrap at.
    assert_eq!(slice_tc(&tc_source(0, 30, 2_592_000 + 5), 1, 3), 2_592_006);
    assert_eq!(slice_tc(&tc_source(2, 0, 2_592_000 + 5), 1, 3), 2_592_006);
}

#[test]
fn samples_may_end_at_the_last_byte_of_the_file_but_not_past_it() {
    // moov first, then the mdat: the last frame's byte is the file's last.
    let mut v = video(10);
    v.at = 54;
    let src = file(&[v], &Layout { moov_first: true, ..Default::default() });
    let (vf, _) = plan_bytes(&src, 0, 10, None);
    assert!(matches!(vf.segments.last(), Some(Segment::Source { len: 10, .. })));
    let cut = src[..src.len() - 1].to_vec();
    match plan_tc(&cut, 0, 10, false, None) {
        Err(QtError::Truncated(m)) => assert!(m.contains("reach byte"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_movie_timescale_becomes_one_that_holds_every_duration_only_if_it_fits_32_bits() {
    let timescale_of = |ts: u32, delta: u32| {
        let mut v = video(4);
        v.timescale = ts;
        v.stts = vec![(4, delta)];
        let (_, m) = plan_bytes(&file(&[v], &Layout::default()), 1, 2, None);
        (m.timescale, m.duration)
    };
    // 1001/30000 s is no whole number of 1/600 s: the slice's movie counts in 1/30000 s.
    assert_eq!(timescale_of(30000, 1001), (30000, 1001));
    // 286331/7158281 s would need 1/4294968600 s, past 32 bits: the 600 stays, rounded.
    assert_eq!(timescale_of(7_158_281, 286_331), (600, 23));
}

#[test]
fn a_slice_of_empty_samples_reads_nothing_from_the_source() {
    // Frames of 0 bytes (a placeholder track): the slice is its header alone, with no
    // empty source range for a reader to open the source for.
    let mut v = video(4);
    v.each = Some(vec![0; 4]);
    let src = file(&[v], &Layout::default());
    let (vf, m) = plan_bytes(&src, 1, 3, None);
    assert_eq!(vf.segments.len(), 1, "{:?}", vf.segments);
    assert_eq!((vf.len, m.tracks[0].table.sample_count()), (vf.segments[0].len(), 2));
}
