//! Unit tests of movie.rs on movies built box by box in memory: every header version,
//! sound description version and timecode entry layout the reader knows, and the damage
//! it must refuse, checked field by field. ffmpeg writes only one layout of each (version 0
//! headers, version 0 sound descriptions), so its files leave most of these paths untried.
//!
//! Killed by scripts/mutants: before these tests only the slow ffmpeg suite (tests.rs)
//! reached movie.rs, so 194 of its mutants went on to that pass and 10 (PCM detection,
//! version 1 headers) survived it.

use super::super::boxes::W;
use super::*;
use std::io;

/// Creation and modification times put before every header's fields: a reader that
/// takes the wrong offset reads one of these instead.
pub(crate) const CREATED: u32 = 0x0c0c_0c0c;
pub(crate) const MODIFIED: u32 = 0x0d0d_0d0d;

pub(crate) fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

/// mvhd/mdhd: version, times, timescale, duration, then `rest` bytes.
pub(crate) fn header(w: &mut W, typ: &[u8; 4], version: u8, timescale: u32, duration: u64, rest: usize) {
    w.open_full(typ, version, 0);
    if version == 1 {
        w.u64(CREATED as u64).u64(MODIFIED as u64).u32(timescale).u64(duration);
    } else {
        w.u32(CREATED).u32(MODIFIED).u32(timescale).u32(duration as u32);
    }
    w.bytes(&vec![0; rest]);
    w.close().unwrap();
}

/// A sample description entry: size, format, 6 reserved bytes, data reference index 1,
/// then `body` (which starts at entry offset 16).
pub(crate) fn entry(format: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut w = W::default();
    w.open(format).bytes(&[0; 6]).bytes(&be16(1)).bytes(body);
    w.close().unwrap();
    w.buf
}

pub(crate) fn video_entry(format: &[u8; 4], width: u16, height: u16) -> Vec<u8> {
    let mut b = vec![0u8; 16]; // version, revision, vendor, temporal and spatial quality
    b.extend(be16(width));
    b.extend(be16(height));
    b.extend([0u8; 50]);
    entry(format, &b)
}

/// Version 0 sound description: channels at entry offset 24, bits at 26, 16.16 rate at 32.
pub(crate) fn sound_v0(format: &[u8; 4], channels: u16, bits: u16, rate: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(be16(0)); // version
    b.extend([0u8; 6]); // revision, vendor
    b.extend(be16(channels));
    b.extend(be16(bits));
    b.extend([0xff, 0xfe, 0, 0]); // compression id, packet size
    b.extend((rate << 16).to_be_bytes());
    entry(format, &b)
}

/// Version 1: version 0's fields, then samples per packet, bytes per packet, bytes per
/// frame (entry offset 44), bytes per sample.
pub(crate) fn sound_v1(format: &[u8; 4], channels: u16, bits: u16, rate: u32, frame_bytes: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(be16(1));
    b.extend([0u8; 6]);
    b.extend(be16(channels));
    b.extend(be16(bits));
    b.extend([0xff, 0xfe, 0, 0]);
    b.extend((rate << 16).to_be_bytes());
    b.extend(1u32.to_be_bytes());
    b.extend(0x0101_0101u32.to_be_bytes());
    b.extend(frame_bytes.to_be_bytes());
    b.extend(0x0202_0202u32.to_be_bytes());
    entry(format, &b)
}

/// Version 2: the version 0 fields hold fixed values (3 channels, 16 bits, rate 65536);
/// the real ones follow: f64 rate at entry offset 40, channels at 48, bits at 56, bytes
/// per frame at 64.
pub(crate) fn sound_v2(format: &[u8; 4], channels: u32, bits: u32, rate: f64, frame_bytes: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(be16(2));
    b.extend([0u8; 6]);
    b.extend(be16(3));
    b.extend(be16(16));
    b.extend([0xff, 0xfe, 0, 0]);
    b.extend(0x0001_0000u32.to_be_bytes());
    b.extend(72u32.to_be_bytes()); // size of the struct
    b.extend(rate.to_bits().to_be_bytes());
    b.extend(channels.to_be_bytes());
    b.extend(0x7f00_0000u32.to_be_bytes());
    b.extend(bits.to_be_bytes());
    b.extend(0x0000_000cu32.to_be_bytes()); // format flags
    b.extend(frame_bytes.to_be_bytes());
    b.extend(1u32.to_be_bytes()); // frames per packet
    entry(format, &b)
}

/// tmcd entry: 4 reserved, flags (entry offset 20), timescale, frame duration, fps,
/// 1 reserved, then `tail` (name boxes, padding) at entry offset 34.
pub(crate) fn tmcd_entry(flags: u32, timescale: u32, frame_duration: u32, fps: u8, tail: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend(flags.to_be_bytes());
    b.extend(timescale.to_be_bytes());
    b.extend(frame_duration.to_be_bytes());
    b.extend([fps, 0]);
    b.extend(tail);
    entry(b"tmcd", &b)
}

/// A `name` box: size, 'name', string length, language, the string.
pub(crate) fn name_box(s: &[u8], declared_len: u16) -> Vec<u8> {
    let mut w = W::default();
    w.open(b"name").bytes(&be16(declared_len)).bytes(&be16(0)).bytes(s);
    w.close().unwrap();
    w.buf
}

/// One track of a test movie (`TrackSpec` to other test modules).
#[derive(Clone)]
pub(crate) struct T {
    pub(crate) handler: [u8; 4],
    pub(crate) id: u32,
    pub(crate) tkhd_version: u8,
    pub(crate) mdhd_version: u8,
    pub(crate) timescale: u32,
    pub(crate) entry: Vec<u8>,
    /// (count, delta) runs.
    pub(crate) stts: Vec<(u32, u32)>,
    /// Constant sample size (one per sample otherwise: `each`).
    pub(crate) size: u32,
    pub(crate) each: Option<Vec<u32>>,
    /// Where the track's one chunk starts: a byte offset into the mdat payload.
    pub(crate) at: u64,
    /// elst version and (duration, media time) entries.
    pub(crate) elst: Option<(u8, Vec<(u64, i64)>)>,
    /// An `edts` without `elst`.
    pub(crate) bare_edts: bool,
    pub(crate) tref: Vec<([u8; 4], Vec<u32>)>,
    /// dref entry flags, and the entry count the dref declares (None: their number).
    pub(crate) dref: Option<(Vec<u32>, Option<u32>)>,
    /// 1-based sync sample numbers (None: no stss, every sample is one).
    pub(crate) stss: Option<Vec<u32>>,
}

impl T {
    pub(crate) fn new(handler: &[u8; 4], id: u32, timescale: u32, entry: Vec<u8>, n: u32, size: u32) -> T {
        T {
            handler: *handler,
            id,
            tkhd_version: 0,
            mdhd_version: 0,
            timescale,
            entry,
            stts: vec![(n, 1)],
            size,
            each: None,
            at: 0,
            elst: None,
            bare_edts: false,
            tref: Vec::new(),
            dref: None,
            stss: None,
        }
    }

    pub(crate) fn count(&self) -> u32 {
        self.stts.iter().map(|r| r.0).sum()
    }

    pub(crate) fn write(&self, w: &mut W, data: u64) {
        let dur: u64 = self.stts.iter().map(|&(c, d)| c as u64 * d as u64).sum();
        w.open(b"trak");
        w.open_full(b"tkhd", self.tkhd_version, 3);
        if self.tkhd_version == 1 {
            w.u64(CREATED as u64).u64(MODIFIED as u64).u32(self.id).u32(0).u64(dur);
        } else {
            w.u32(CREATED).u32(MODIFIED).u32(self.id).u32(0).u32(dur as u32);
        }
        w.bytes(&[0; 60]);
        w.close().unwrap();
        if self.bare_edts {
            w.open(b"edts");
            w.close().unwrap();
        }
        if let Some((v, edits)) = &self.elst {
            w.open(b"edts");
            w.open_full(b"elst", *v, 0).u32(edits.len() as u32);
            for &(d, mt) in edits {
                if *v == 1 {
                    w.u64(d).i64(mt);
                } else {
                    w.u32(d as u32).i32(mt as i32);
                }
                w.u32(0x0001_0000);
            }
            w.close().unwrap();
            w.close().unwrap();
        }
        if !self.tref.is_empty() {
            w.open(b"tref");
            for (typ, ids) in &self.tref {
                w.open(typ);
                ids.iter().for_each(|&i| {
                    w.u32(i);
                });
                w.close().unwrap();
            }
            w.close().unwrap();
        }
        w.open(b"mdia");
        header(w, b"mdhd", self.mdhd_version, self.timescale, dur, 4);
        w.open_full(b"hdlr", 0, 0).bytes(b"mhlr").bytes(&self.handler).bytes(&[0; 13]);
        w.close().unwrap();
        w.open(b"minf");
        if let Some((flags, declared)) = &self.dref {
            w.open(b"dinf");
            w.open_full(b"dref", 0, 0).u32(declared.unwrap_or(flags.len() as u32));
            for &f in flags {
                w.open_full(b"alis", 0, f);
                w.close().unwrap();
            }
            w.close().unwrap();
            w.close().unwrap();
        }
        w.open(b"stbl");
        w.open_full(b"stsd", 0, 0).u32(1).bytes(&self.entry);
        w.close().unwrap();
        w.open_full(b"stts", 0, 0).u32(self.stts.len() as u32);
        self.stts.iter().for_each(|&(c, d)| {
            w.u32(c).u32(d);
        });
        w.close().unwrap();
        if let Some(ss) = &self.stss {
            w.open_full(b"stss", 0, 0).u32(ss.len() as u32);
            ss.iter().for_each(|&k| {
                w.u32(k);
            });
            w.close().unwrap();
        }
        w.open_full(b"stsc", 0, 0).u32(1).u32(1).u32(self.count()).u32(1);
        w.close().unwrap();
        match &self.each {
            Some(v) => {
                w.open_full(b"stsz", 0, 0).u32(0).u32(v.len() as u32);
                v.iter().for_each(|&s| {
                    w.u32(s);
                });
            }
            None => {
                w.open_full(b"stsz", 0, 0).u32(self.size).u32(self.count());
            }
        }
        w.close().unwrap();
        w.open_full(b"stco", 0, 0).u32(1).u32((data + self.at) as u32);
        w.close().unwrap();
        for _ in 0..4 {
            w.close().unwrap(); // stbl minf mdia trak
        }
    }
}

/// How a test file is laid out around its tracks.
pub(crate) struct Layout {
    pub(crate) mvhd_version: u8,
    pub(crate) movie_timescale: u32,
    /// Whether `moov` comes before `mdat`.
    pub(crate) moov_first: bool,
    pub(crate) payload: Vec<u8>,
    /// Extra boxes inside moov, after the tracks.
    pub(crate) moov_extra: Vec<u8>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout { mvhd_version: 0, movie_timescale: 600, moov_first: false, payload: vec![0x5a; 64], moov_extra: Vec::new() }
    }
}

pub(crate) use T as TrackSpec;

pub(crate) const FTYP: &[u8] = b"\0\0\0\x14ftypqt  \0\0\x02\0qt  ";

pub(crate) fn moov(tracks: &[T], l: &Layout, data: u64) -> Vec<u8> {
    let mut w = W::default();
    w.open(b"moov");
    header(&mut w, b"mvhd", l.mvhd_version, l.movie_timescale, 1234, 80);
    for t in tracks {
        t.write(&mut w, data);
    }
    w.bytes(&l.moov_extra);
    w.close().unwrap();
    w.buf
}

/// ftyp, then moov and mdat in the layout's order; chunk offsets point into the payload.
pub(crate) fn file(tracks: &[T], l: &Layout) -> Vec<u8> {
    let mut mdat = ((8 + l.payload.len()) as u32).to_be_bytes().to_vec();
    mdat.extend(b"mdat");
    mdat.extend(&l.payload);
    if l.moov_first {
        // The moov's length does not depend on the offsets in it.
        let len = moov(tracks, l, 0).len() as u64;
        let data = FTYP.len() as u64 + len + 8;
        [FTYP, &moov(tracks, l, data), &mdat].concat()
    } else {
        let data = FTYP.len() as u64 + 8;
        [FTYP, &mdat, &moov(tracks, l, data)].concat()
    }
}

pub(crate) fn video(n: u32) -> T {
    let mut t = T::new(b"vide", 1, 25, video_entry(b"apcn", 64, 48), n, 1);
    t.stts = vec![(n, 1)];
    t
}

pub(crate) fn load_ok(tracks: &[T], l: &Layout) -> Movie {
    let f = file(tracks, l);
    load(&f).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn load_err(tracks: &[T], l: &Layout) -> QtError {
    match load(&file(tracks, l)) {
        Ok(_) => panic!("loaded"),
        Err(e) => e,
    }
}

#[test]
fn header_times_read_version_0_and_1_fields() {
    for (v, ts, dur) in [(0u8, 48_000u32, 0x1234_5678u64), (1, 90_000, 0x1_0000_0002)] {
        let mut w = W::default();
        header(&mut w, b"mdhd", v, ts, dur, 4);
        let b = children(&w.buf, 0, w.buf.len()).unwrap()[0];
        assert_eq!(header_times(&w.buf, &b).unwrap(), (v, ts, dur), "version {v}");
    }
    // A version 2 header (none exists) is read as version 0.
    let mut w = W::default();
    w.open_full(b"mvhd", 2, 0).u32(CREATED).u32(MODIFIED).u32(25).u32(50);
    w.close().unwrap();
    let b = children(&w.buf, 0, w.buf.len()).unwrap()[0];
    assert_eq!(header_times(&w.buf, &b).unwrap(), (0, 25, 50));
    // An empty box is an error, not a panic; so is a version 1 box cut after its times.
    let e = header_times(b"\0\0\0\x08mvhd", &BoxRef { typ: *b"mvhd", start: 0, body: 8, end: 8 }).unwrap_err();
    assert!(matches!(&e, QtError::Malformed(m) if m == "empty header box"), "{e}");
    let mut w = W::default();
    w.open_full(b"mvhd", 1, 0).u64(1).u64(2).u32(25);
    w.close().unwrap();
    let b = children(&w.buf, 0, w.buf.len()).unwrap()[0];
    assert!(header_times(&w.buf, &b).is_err());
}

#[test]
fn movie_and_media_headers_of_either_version_give_timescale_and_duration() {
    for version in [0u8, 1] {
        let l = Layout { mvhd_version: version, movie_timescale: 2997, ..Default::default() };
        let mut v = video(10);
        v.mdhd_version = version;
        v.tkhd_version = version;
        v.id = 7;
        v.timescale = 30000;
        v.stts = vec![(10, 1001)];
        let m = load_ok(&[v], &l);
        assert_eq!((m.timescale, m.duration), (2997, 1234), "mvhd version {version}");
        let t = &m.tracks[0];
        assert_eq!((t.id, t.timescale, &t.handler), (7, 30000, b"vide"), "tkhd/mdhd version {version}");
        assert_eq!((t.entry.format, t.entry.width, t.entry.height), (*b"apcn", 64, 48));
    }
}

/// A sound track of `n` samples in `format`, its samples of `size` bytes each.
pub(crate) fn sound(format: &[u8; 4], size: u32, delta: u32) -> T {
    let mut t = T::new(b"soun", 2, 48_000, sound_v0(format, 2, 16, 48_000), 8, size);
    t.stts = vec![(8, delta)];
    t
}

fn is_pcm(t: T) -> (bool, bool) {
    let m = load_ok(&[video(4), t], &Layout::default());
    (m.tracks[1].is_pcm(), m.tracks[1].is_pcm_format())
}

#[test]
fn pcm_is_a_pcm_format_or_one_tick_per_constant_sized_sample() {
    for f in [b"lpcm", b"sowt", b"twos", b"in24", b"in32", b"fl32", b"fl64", b"raw ", b"NONE", b"ulaw", b"alaw"] {
        // Even with a sample lasting two ticks: the format says it.
        assert_eq!(is_pcm(sound(f, 4, 2)), (true, true), "{}", fourcc(f));
    }
    // AAC: per-sample sizes, 1024 ticks a packet.
    let mut aac = sound(b"mp4a", 0, 1024);
    aac.each = Some(vec![300, 301, 302, 303, 304, 305, 306, 307]);
    assert_eq!(is_pcm(aac), (false, false));
    // An unknown format whose constant-sized samples last one tick each is PCM...
    assert_eq!(is_pcm(sound(b"xpcm", 6, 1)), (true, false));
    // ...but not when they last longer...
    assert_eq!(is_pcm(sound(b"xpcm", 6, 2)), (false, false));
    // ...nor when stsz says 1 (legacy compressed audio such as ima4 lies so).
    assert_eq!(is_pcm(sound(b"ima4", 1, 1)), (false, false));
    // A PCM format with stsz 1 (legacy QuickTime PCM) is PCM.
    assert_eq!(is_pcm(sound(b"twos", 1, 1)), (true, true));
    // Per-sample sizes, even of a PCM format, cannot be cut by moving a chunk offset.
    let mut each = sound(b"sowt", 0, 1);
    each.each = Some(vec![4; 8]);
    assert_eq!(is_pcm(each), (false, true));
}

fn sound_entry_of(e: Vec<u8>, size: u32) -> Movie {
    let mut s = sound(b"in24", size, 1);
    s.entry = e;
    load_ok(&[video(4), s], &Layout::default())
}

#[test]
fn sound_descriptions_of_each_version_give_channels_bits_rate_and_frame_bytes() {
    let m = sound_entry_of(sound_v0(b"in24", 6, 24, 48_000), 18);
    let e = &m.tracks[1].entry;
    assert_eq!((e.channels, e.bits, e.sample_rate, e.pcm_frame_bytes), (6, 24, 48_000, Some(18)));
    let m = sound_entry_of(sound_v1(b"in24", 2, 16, 44_100, 6), 6);
    let e = &m.tracks[1].entry;
    assert_eq!((e.channels, e.bits, e.sample_rate, e.pcm_frame_bytes), (2, 16, 44_100, Some(6)));
    let m = sound_entry_of(sound_v2(b"in24", 8, 24, 96_000.0, 24), 24);
    let e = &m.tracks[1].entry;
    assert_eq!((e.channels, e.bits, e.sample_rate, e.pcm_frame_bytes), (8, 24, 96_000, Some(24)));
    // A v2 rate is rounded to whole hertz; one that is no rate (NaN, zero, negative,
    // absurd) becomes 0, and counts past 16 bits saturate.
    assert_eq!(sound_entry_of(sound_v2(b"in24", 1, 24, 44_099.6, 3), 3).tracks[1].entry.sample_rate, 44_100);
    for bad in [f64::NAN, 0.0, -48_000.0, 1e9, f64::INFINITY] {
        assert_eq!(sound_entry_of(sound_v2(b"in24", 1, 24, bad, 3), 3).tracks[1].entry.sample_rate, 0, "{bad}");
    }
    assert_eq!(sound_entry_of(sound_v2(b"in24", 1, 24, 1e9 - 1.0, 3), 3).tracks[1].entry.sample_rate, 999_999_999);
    let e = sound_entry_of(sound_v2(b"in24", 70_000, 80_000, 48_000.0, 3), 3).tracks[1].entry.clone();
    assert_eq!((e.channels, e.bits), (u16::MAX, u16::MAX));
    // An unknown version: the version 0 fields, no frame size.
    let mut unknown = sound_v0(b"in24", 2, 24, 48_000);
    unknown[17] = 3;
    let e = sound_entry_of(unknown, 6).tracks[1].entry.clone();
    assert_eq!((e.channels, e.bits, e.sample_rate, e.pcm_frame_bytes), (2, 24, 48_000, None));
    // A version 1 or 2 description cut to version 0's size: its fields are not read from
    // the boxes after it.
    for version in [1u8, 2] {
        let mut cut = sound_v0(b"in24", 2, 24, 48_000);
        cut[17] = version;
        let mut s = sound(b"in24", 6, 1);
        s.entry = cut;
        let e = load_err(&[video(4), s], &Layout::default());
        assert!(matches!(&e, QtError::Malformed(m) if m.contains("past end of box")), "version {version}: {e}");
    }
    // So is a video description cut before its size.
    let mut v = video(4);
    v.entry = entry(b"apcn", &[0; 16]);
    let e = load_err(&[v], &Layout::default());
    assert!(matches!(&e, QtError::Malformed(m) if m.contains("past end of box")), "{e}");
}

#[test]
fn legacy_pcm_sized_1_takes_its_frame_bytes_from_the_description() {
    // stsz says 1 byte a sample; the description says 2 channels of 16 bits.
    let m = sound_entry_of(sound_v0(b"twos", 2, 16, 48_000), 1);
    assert_eq!(m.tracks[1].table.bytes_per_sample, Some(4));
    let m = sound_entry_of(sound_v1(b"twos", 2, 16, 48_000, 4), 1);
    assert_eq!(m.tracks[1].table.bytes_per_sample, Some(4));
    // A description that gives 0 bytes a frame is ignored (the stsz size stands).
    let m = sound_entry_of(sound_v0(b"twos", 2, 4, 48_000), 1);
    assert_eq!(m.tracks[1].table.bytes_per_sample, None);
    // Only a size of 1 is legacy: a real constant size is used as it is.
    let m = sound_entry_of(sound_v0(b"twos", 2, 16, 48_000), 4);
    assert_eq!(m.tracks[1].table.bytes_per_sample, None);
}

pub(crate) fn tmcd(entry: Vec<u8>) -> T {
    let mut t = T::new(b"tmcd", 3, 24_000, entry, 1, 4);
    t.stts = vec![(1, 1001 * 4)];
    t
}

fn tmcd_entry_of(e: Vec<u8>) -> TmcdEntry {
    let m = load_ok(&[video(4), tmcd(e)], &Layout::default());
    m.tracks[1].entry.tmcd.clone().expect("a tmcd entry")
}

#[test]
fn tmcd_descriptions_give_counting_and_reel() {
    let reel = name_box(b"A001C003", 8);
    let e = tmcd_entry_of(tmcd_entry(3, 30_000, 1001, 30, &reel));
    assert_eq!((e.flags, e.timescale, e.frame_duration, e.fps), (3, 30_000, 1001, 30));
    assert_eq!(e.reel.as_deref(), Some("A001C003"));
    // ffmpeg pads some entries with 2 bytes before the name: scanned past.
    let e = tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &[[0u8, 0].as_slice(), &reel].concat()));
    assert_eq!(e.reel, None, "2 bytes of padding are no box: the scan stops there");
    // Another box before the name is stepped over; trailing NULs are not part of a reel.
    let other = {
        let mut w = W::default();
        w.open(b"udta").bytes(&[9; 8]);
        w.close().unwrap();
        w.buf
    };
    let e = tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &[other.as_slice(), &name_box(b"B002\0\0", 6)].concat()));
    assert_eq!(e.reel.as_deref(), Some("B002"));
    // So is an empty (8-byte) box.
    let e = tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &[b"\0\0\0\x08free".as_slice(), &name_box(b"F06", 3)].concat()));
    assert_eq!(e.reel.as_deref(), Some("F06"));
    // The declared length counts, not the box's: what follows it is padding.
    let e = tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &name_box(b"A001pad", 4)));
    assert_eq!(e.reel.as_deref(), Some("A001"));
    // A length past the box is cut at the box; an empty name at the very end is read.
    let e = tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &name_box(b"C03", 200)));
    assert_eq!(e.reel.as_deref(), Some("C03"));
    let e = tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &name_box(b"", 0)));
    assert_eq!(e.reel.as_deref(), Some(""));
    // A box that claims more than the entry holds, or less than a header, ends the scan.
    let mut long = name_box(b"D04", 3);
    long[3] = 200;
    assert_eq!(tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &long)).reel, None);
    let mut short = name_box(b"E05", 3);
    short[3] = 7;
    assert_eq!(tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &short)).reel, None);
    // A `name` box too short for its length field is not a name.
    let e = tmcd_entry_of(tmcd_entry(0, 25, 1, 25, b"\0\0\0\x0bname\0\x01\0\0\0\0"));
    assert_eq!(e.reel, None);
    // Nothing after the fixed part: no reel.
    assert_eq!(tmcd_entry_of(tmcd_entry(0, 25, 1, 25, &[])).reel, None);
    // An entry cut before its fps byte is an error (not a read of the box after it).
    let e = load_err(&[video(4), tmcd(entry(b"tmcd", &[0; 16]))], &Layout::default());
    assert!(matches!(&e, QtError::Malformed(m) if m == "short tmcd entry"), "{e}");
}

#[test]
fn sample_descriptions_that_are_missing_or_overrun_are_errors() {
    let with_stsd = |body: Vec<u8>| {
        let mut t = T::new(b"text", 5, 600, Vec::new(), 4, 1);
        t.entry = body;
        t
    };
    // A 16-byte entry (just the common header) of an unknown handler is enough.
    let m = load_ok(&[video(4), with_stsd(entry(b"tx3g", &[]))], &Layout::default());
    assert_eq!(m.tracks[1].entry.format, *b"tx3g");
    for (what, body) in [
        ("a size under 16", {
            let mut e = entry(b"tx3g", &[0; 4]);
            e[3] = 15;
            e
        }),
        ("a size past the stsd", {
            let mut e = entry(b"tx3g", &[0; 4]);
            e[3] = 21;
            e
        }),
        ("12 bytes", entry(b"tx3g", &[])[..12].to_vec()),
    ] {
        let e = load_err(&[video(4), with_stsd(body)], &Layout::default());
        assert!(matches!(&e, QtError::Malformed(_)), "{what}: {e}");
    }
    // Too short for the common header: said so, before its size field is believed.
    let e = load_err(&[video(4), with_stsd(entry(b"tx3g", &[])[..12].to_vec())], &Layout::default());
    assert!(matches!(&e, QtError::Malformed(m) if m == "'stsd' has no sample description"), "{e}");
    // An stsd declaring no entry.
    let f = file(&[video(4)], &Layout::default());
    let at = f.windows(4).position(|w| w == b"stsd").unwrap() + 8;
    let mut g = f.clone();
    g[at..at + 4].copy_from_slice(&0u32.to_be_bytes());
    let e = load(&g).err().unwrap();
    assert!(matches!(&e, QtError::Malformed(m) if m == "'stsd' has no sample description"), "{e}");
}

#[test]
fn the_first_edit_with_a_media_time_is_the_tracks_edit() {
    let edit = |elst: Option<(u8, Vec<(u64, i64)>)>| {
        let mut v = video(10);
        v.elst = elst;
        load_ok(&[v], &Layout::default()).tracks[0].edit.map(|e| (e.media_time, e.duration))
    };
    assert_eq!(edit(None), None);
    assert_eq!(edit(Some((0, vec![(300, 2)]))), Some((2, 300)));
    // Empty edits (-1) only delay; the first real one counts, later ones do not.
    assert_eq!(edit(Some((0, vec![(40, -1), (300, 0), (100, 7)]))), Some((0, 300)));
    assert_eq!(edit(Some((1, vec![(40, -1), (0x1_0000_0001, 3), (100, 7)]))), Some((3, 0x1_0000_0001)));
    assert_eq!(edit(Some((0, vec![(40, -1)]))), None);
    assert_eq!(edit(Some((1, vec![]))), None);
    // An edts without an elst: no edit.
    let mut v = video(10);
    v.bare_edts = true;
    assert!(load_ok(&[v], &Layout::default()).tracks[0].edit.is_none());
    // An entry count past the box's bytes is an error (12 bytes each in version 0).
    for (version, entries) in [(0u8, vec![(300u64, 0i64); 2]), (1, vec![(300, 0); 2])] {
        let mut v = video(10);
        v.elst = Some((version, entries));
        let f = file(&[v], &Layout::default());
        let at = f.windows(4).position(|w| w == b"elst").unwrap() + 8;
        let mut g = f.clone();
        g[at..at + 4].copy_from_slice(&3u32.to_be_bytes());
        let e = load(&g).err().unwrap();
        assert!(matches!(&e, QtError::Malformed(m) if m.contains("entry count")), "version {version}: {e}");
        // Exactly as many entries as fit is fine.
        assert!(load(&f).is_ok());
    }
}

#[test]
fn tracks_that_point_outside_the_file_or_lack_a_timescale_are_refused() {
    let mut v = video(4);
    v.dref = Some((vec![1, 1], None));
    assert!(load(&file(&[v.clone()], &Layout::default())).is_ok(), "self-contained references");
    v.dref = Some((vec![1, 0], None));
    let e = load_err(&[v.clone()], &Layout::default());
    assert!(matches!(&e, QtError::Unsupported(m) if m == "track 1 refers to media outside the file"), "{e}");
    v.dref = Some((vec![1], Some(2)));
    let e = load_err(&[v.clone()], &Layout::default());
    assert!(matches!(&e, QtError::Unsupported(_)), "a count that is not the entries': {e}");
    // Flag 3 has the in-this-file bit set too.
    v.dref = Some((vec![3], None));
    assert!(load(&file(&[v.clone()], &Layout::default())).is_ok());
    v.dref = Some((vec![2], None));
    assert!(load(&file(&[v], &Layout::default())).is_err());
    let mut v = video(4);
    v.timescale = 0;
    let e = load_err(&[v], &Layout::default());
    assert!(matches!(&e, QtError::Malformed(m) if m == "track 1 has a zero media timescale"), "{e}");
    let e = load_err(&[video(4)], &Layout { movie_timescale: 0, ..Default::default() });
    assert!(matches!(&e, QtError::Malformed(m) if m == "movie timescale is zero"), "{e}");
}

#[test]
fn track_references_pick_the_timecode_track() {
    let tc = |id: u32| {
        let mut t = tmcd(tmcd_entry(0, 25, 1, 25, &[]));
        t.id = id;
        t
    };
    let mut s = sound(b"sowt", 4, 1);
    s.id = 9;
    let mut v = video(4);
    v.id = 2;
    v.tref = vec![(*b"chap", vec![9]), (*b"tmcd", vec![4, 3])];
    // Sound first, so neither the video nor the timecode is at index 0 or 1 by chance.
    let m = load_ok(&[s.clone(), v.clone(), tc(3), tc(4)], &Layout::default());
    assert_eq!(m.tracks[1].tref, vec![(*b"chap", vec![9]), (*b"tmcd", vec![4, 3])]);
    assert_eq!(m.video(), Some(1));
    assert_eq!(m.timecode(), Some(3), "the video's tmcd reference names track 4");
    // A reference to a track that is no timecode falls back to the first timecode track.
    v.tref = vec![(*b"tmcd", vec![9])];
    let m = load_ok(&[s.clone(), v.clone(), tc(3), tc(4)], &Layout::default());
    assert_eq!(m.timecode(), Some(2));
    // No reference: the first timecode track; no timecode track: none.
    v.tref = Vec::new();
    assert_eq!(load_ok(&[s.clone(), v.clone(), tc(7), tc(4)], &Layout::default()).timecode(), Some(2));
    let m = load_ok(&[s.clone(), v.clone()], &Layout::default());
    assert_eq!((m.video(), m.timecode()), (Some(1), None));
    let m = load_ok(&[s], &Layout::default());
    assert_eq!(m.video(), None);
    assert!(matches!(m.frame_times(), Err(QtError::Unsupported(_))));
}

/// A tmcd track of three samples (two breaks) at 25 fps, its samples at the end of the
/// file: (start frame, value) = (0, 90000), (10, 5), (25, 77).
pub(crate) fn broken_timecode() -> Vec<u8> {
    let mut t = tmcd(tmcd_entry(2, 25, 1, 25, &name_box(b"R1", 2)));
    t.timescale = 25;
    t.stts = vec![(1, 10), (2, 15)];
    t.size = 4;
    t.at = 52;
    let mut payload = vec![0x5au8; 52];
    for v in [90_000u32, 5, 77] {
        payload.extend(v.to_be_bytes());
    }
    // stts (10, 15, 15): the third sample starts at 25.
    file(&[video(40), t], &Layout { moov_first: true, payload, ..Default::default() })
}

#[test]
fn every_tmcd_sample_is_read_with_the_frame_it_starts_at() {
    let f = broken_timecode();
    let m = load(&f).unwrap();
    assert_eq!(m.tmcd_start(&f, 1).unwrap(), 90_000);
    assert_eq!(m.tmcd_samples(&f, 1).unwrap(), vec![(0, 90_000), (10, 5), (25, 77)]);
    let info = m.info(&f).unwrap();
    let tc = info.timecode.unwrap();
    assert_eq!((tc.start_frame, tc.samples.len(), tc.flags, tc.drop_frame), (90_000, 3, 2, false));
    assert_eq!((tc.timescale, tc.frame_duration, tc.fps, tc.reel.as_deref()), (25, 1, 25, Some("R1")));
    // The last sample ends at the last byte of the file; one byte less and it is past it.
    let cut = &f[..f.len() - 1];
    let e = m.tmcd_samples(&cut.to_vec(), 1).unwrap_err();
    assert!(matches!(&e, QtError::Truncated(msg) if msg.contains("past the end of the file")), "{e}");
    assert_eq!(m.tmcd_start(&cut.to_vec(), 1).unwrap(), 90_000);
}

#[test]
fn a_tmcd_frame_duration_of_zero_puts_every_sample_at_frame_0() {
    let mut t = tmcd(tmcd_entry(0, 25, 0, 25, &[]));
    t.stts = vec![(2, 10)];
    t.size = 4;
    let mut payload = 7u32.to_be_bytes().to_vec();
    payload.extend(8u32.to_be_bytes());
    let f = file(&[video(4), t], &Layout { payload, ..Default::default() });
    let m = load(&f).unwrap();
    assert_eq!(m.tmcd_samples(&f, 1).unwrap(), vec![(0, 7), (0, 8)]);
}

#[test]
fn drop_frame_is_flag_bit_0_alone() {
    for (flags, drop) in [(0u32, false), (1, true), (2, false), (3, true), (8, false)] {
        let mut t = tmcd(tmcd_entry(flags, 30_000, 1001, 30, &[]));
        t.size = 4;
        let f = file(&[video(4), t], &Layout::default());
        let tc = load(&f).unwrap().info(&f).unwrap().timecode.unwrap();
        assert_eq!((tc.flags, tc.drop_frame), (flags, drop), "flags {flags}");
    }
}

#[test]
fn timecode_tracks_without_samples_or_with_too_many_are_errors() {
    let mut t = tmcd(tmcd_entry(0, 25, 1, 25, &[]));
    t.stts = Vec::new();
    let f = file(&[video(4), t], &Layout::default());
    let m = load(&f).unwrap();
    for e in [m.tmcd_start(&f, 1).unwrap_err(), m.tmcd_samples(&f, 1).unwrap_err(), m.info(&f).unwrap_err()] {
        assert!(matches!(&e, QtError::Malformed(msg) if msg == "timecode track has no sample"), "{e}");
    }
    // MAX_TMCD_SAMPLES samples are read; one more is refused before any is.
    let many = |n: u32| {
        let mut t = tmcd(tmcd_entry(0, 25, 1, 25, &[]));
        t.stts = vec![(n, 1)];
        t.size = 4;
        file(&[video(4), t], &Layout { payload: vec![0; n as usize * 4], ..Default::default() })
    };
    let f = many(MAX_TMCD_SAMPLES as u32);
    assert_eq!(load(&f).unwrap().tmcd_samples(&f, 1).unwrap().len() as u64, MAX_TMCD_SAMPLES);
    let f = many(MAX_TMCD_SAMPLES as u32 + 1);
    let e = load(&f).unwrap().tmcd_samples(&f, 1).unwrap_err();
    assert!(matches!(&e, QtError::Unsupported(m) if m.contains("100001 samples")), "{e}");
}

#[test]
fn info_reports_every_track_and_the_video_timing() {
    let mut v = video(6);
    v.timescale = 24_000;
    v.stts = vec![(5, 1001), (1, 2002)];
    let mut s = sound(b"sowt", 4, 1);
    s.stts = vec![(96, 1)];
    let mut t = tmcd(tmcd_entry(0, 24_000, 1001, 24, &[]));
    t.size = 4;
    let mut x = T::new(b"sbtl", 8, 1000, entry(b"tx3g", &[]), 2, 3);
    x.stts = vec![(2, 500)];
    let payload: Vec<u8> = (0..200u8).collect();
    let l = Layout { moov_first: true, payload, ..Default::default() };
    let f = file(&[v, s, t, x], &l);
    let m = load(&f).unwrap();
    let i = m.info(&f).unwrap();
    assert_eq!((i.timescale, i.duration, i.moov_first), (600, 1234, true));
    assert_eq!((i.video_frame_count, i.video_frame_duration), (6, (24_000, 1001)));
    let kinds: Vec<_> = i.tracks.iter().map(|t| (t.id, t.kind.clone(), t.codec.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (1, TrackKind::Video, "apcn"),
            (2, TrackKind::Audio, "sowt"),
            (3, TrackKind::Timecode, "tmcd"),
            (8, TrackKind::Other("sbtl".into()), "tx3g")
        ]
    );
    let v = &i.tracks[0];
    assert_eq!((v.timescale, v.duration, v.sample_count, v.width, v.height), (24_000, 5 * 1001 + 2002, 6, 64, 48));
    let a = &i.tracks[1];
    assert_eq!((a.timescale, a.duration, a.sample_count, a.sample_rate, a.channels, a.bits), (48_000, 96, 96, 48_000, 2, 16));
    // The first timecode sample is the payload's bytes 0..4.
    assert_eq!(i.timecode.unwrap().start_frame, u32::from_be_bytes([0, 1, 2, 3]));
    // No video: no frame count, no frame duration.
    let f = file(&[sound(b"sowt", 4, 1)], &Layout::default());
    let i = load(&f).unwrap().info(&f).unwrap();
    assert_eq!((i.video_frame_count, i.video_frame_duration, i.moov_first), (0, (0, 0), false));
}

#[test]
fn frame_times_start_at_the_edit() {
    let mut v = video(5);
    v.stts = vec![(2, 10), (3, 20)];
    v.elst = Some((0, vec![(0, 10)]));
    let m = load_ok(&[v.clone()], &Layout::default());
    assert_eq!(m.frame_times().unwrap(), (vec![0, 10, 30, 50], 25));
    v.elst = None;
    let m = load_ok(&[v], &Layout::default());
    assert_eq!(m.frame_times().unwrap(), (vec![0, 10, 20, 40, 60], 25));
}

#[test]
fn the_movie_weighs_its_moov_ftyp_and_tables() {
    let mut s = sound(b"mp4a", 0, 1024);
    s.each = Some(vec![300; 8]);
    let mut m = load_ok(&[video(4), s], &Layout::default());
    // With every box list at its length, the weight is exact: the moov and ftyp bytes,
    // each table's own weight and one BoxRef per box listed.
    for t in &mut m.tracks {
        t.kids.shrink_to_fit();
        t.mdia_kids.shrink_to_fit();
        t.minf_kids.shrink_to_fit();
    }
    let boxref = std::mem::size_of::<BoxRef>();
    let tracks: usize =
        m.tracks.iter().map(|t| t.table.heap_bytes() + (t.kids.len() + t.mdia_kids.len() + t.minf_kids.len()) * boxref).sum();
    assert!(m.tracks[1].table.heap_bytes() >= 32 && boxref > 1);
    assert_eq!(m.heap_bytes(), m.moov.len() + FTYP.len() + tracks);
}

/// A file of `head` bytes followed by a moov declared `size` bytes long, whose body
/// reading fails: lets a test declare a 512 MB moov without one.
struct HugeMoov {
    head: Vec<u8>,
    size: u64,
}

impl ReadAt for HugeMoov {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if buf.len() > 64 {
            return Err(io::Error::other("the test source serves box headers only"));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            let o = offset as usize + i;
            *b = if o < self.head.len() {
                self.head[o]
            } else if o < self.head.len() + 4 {
                (self.size as u32).to_be_bytes()[o - self.head.len()]
            } else if o < self.head.len() + 8 {
                b"moov"[o - self.head.len() - 4]
            } else {
                0
            };
        }
        Ok(buf.len())
    }
    fn len(&self) -> u64 {
        self.head.len() as u64 + self.size
    }
}

#[test]
fn a_moov_over_512_mb_is_refused_before_it_is_read() {
    let head = FTYP.to_vec();
    let e = load(&HugeMoov { head: head.clone(), size: MAX_MOOV + 1 }).err().unwrap();
    assert!(matches!(&e, QtError::Unsupported(m) if m.contains("over the")), "{e}");
    // At the limit it is read (and here the read fails).
    let e = load(&HugeMoov { head, size: MAX_MOOV }).err().unwrap();
    assert!(matches!(&e, QtError::Io(_)), "{e}");
}

#[test]
fn top_level_boxes_ftyp_moov_and_their_order() {
    let f = file(&[video(4)], &Layout::default());
    let m = load(&f).unwrap();
    assert_eq!((m.ftyp.as_deref(), m.moov_first), (Some(FTYP), false));
    let m = load_ok(&[video(4)], &Layout { moov_first: true, ..Default::default() });
    assert!(m.moov_first);
    // The first ftyp and the first moov count; a second of each is ignored.
    let mut other_ftyp = FTYP.to_vec();
    other_ftyp[8..12].copy_from_slice(b"isom");
    let junk_moov = b"\0\0\0\x10moov\0\0\0\x08cmov".to_vec();
    let g = [f.as_slice(), &other_ftyp, &junk_moov].concat();
    let m = load(&g).unwrap();
    assert_eq!((m.ftyp.as_deref(), m.tracks.len()), (Some(FTYP), 1));
    // An ftyp over 4 KiB is not kept (a slice copies it into memory).
    let mut big = vec![0u8; 4097];
    big[..4].copy_from_slice(&4097u32.to_be_bytes());
    big[4..8].copy_from_slice(b"ftyp");
    let g = [big.as_slice(), &f[FTYP.len()..]].concat();
    assert!(load(&g).unwrap().ftyp.is_none());
    let mut four_k = big[..4096].to_vec();
    four_k[..4].copy_from_slice(&4096u32.to_be_bytes());
    let g = [four_k.as_slice(), &f[FTYP.len()..]].concat();
    assert_eq!(load(&g).unwrap().ftyp.map(|f| f.len()), Some(4096));
    // No moov: what was found says why.
    let e = load(&FTYP.to_vec()).err().unwrap();
    assert!(matches!(&e, QtError::Truncated(m) if m.contains("no 'moov' box in 20 bytes")), "{e}");
    let e = load(&[FTYP, b"\0\0\0\x40mdat"].concat()).err().unwrap();
    assert!(matches!(&e, QtError::Truncated(m) if m.contains("before the damage")), "{e}");
}

#[test]
fn fragmented_and_compressed_movies_are_refused() {
    let f = file(&[video(4)], &Layout::default());
    let e = load(&[f.as_slice(), b"\0\0\0\x08moof"].concat()).err().unwrap();
    assert!(matches!(&e, QtError::Unsupported(m) if m.contains("'moof'")), "{e}");
    for (typ, says) in [(b"cmov", "'cmov'"), (b"mvex", "'mvex'")] {
        let extra = [b"\0\0\0\x08".as_slice(), typ].concat();
        let e = load_err(&[video(4)], &Layout { moov_extra: extra, ..Default::default() });
        assert!(matches!(&e, QtError::Unsupported(m) if m.contains(says)), "{e}");
    }
    // Other boxes in moov (udta, ...) are no tracks.
    let m = load_ok(&[video(4)], &Layout { moov_extra: b"\0\0\0\x0cudta\0\0\0\0".to_vec(), ..Default::default() });
    assert_eq!(m.tracks.len(), 1);
}

#[test]
fn frame_times_refuse_more_frames_than_a_clip_holds() {
    // One stts run and a constant size declare 50 M + 1 frames in a few bytes; the
    // samples must fit in the file, which a sparse source provides without memory.
    let n = MAX_VIDEO_SAMPLES as u32 + 1;
    let l = Layout { payload: Vec::new(), ..Default::default() };
    let mut head = FTYP.to_vec();
    head.extend((8 + n).to_be_bytes());
    head.extend(b"mdat");
    let src = SparseWithHead { head, zeros: n as u64, tail: moov(&[video(n)], &l, FTYP.len() as u64 + 8) };
    let m = load(&src).unwrap();
    let e = m.frame_times().unwrap_err();
    assert!(matches!(&e, QtError::Unsupported(msg) if msg.contains("50000001 video frames")), "{e}");
}

/// `head`, then `zeros` zero bytes, then `tail`, without holding the zeros.
pub(crate) struct SparseWithHead {
    pub(crate) head: Vec<u8>,
    pub(crate) zeros: u64,
    pub(crate) tail: Vec<u8>,
}

impl ReadAt for SparseWithHead {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let (h, z) = (self.head.len() as u64, self.zeros);
        for (i, b) in buf.iter_mut().enumerate() {
            let o = offset + i as u64;
            *b = if o < h {
                self.head[o as usize]
            } else if o < h + z {
                0
            } else if let Some(&t) = self.tail.get((o - h - z) as usize) {
                t
            } else {
                return Ok(i);
            };
        }
        Ok(buf.len())
    }
    fn len(&self) -> u64 {
        self.head.len() as u64 + self.zeros + self.tail.len() as u64
    }
}
