//! The fragment index of a fragmented MP4 (a preview rung): where the init
//! segment ends, and for each `moof`+`mdat` pair its byte range, its first
//! video frame, frame count and decode time, read from the boxes themselves
//! through `ReadAt` (nothing decoded, nothing loaded but the small boxes).
//!
//! Only what HLS needs is read: the video track's timescale, codec string,
//! picture size and frame duration from `moov`; per fragment, the video
//! track's `tfhd`/`tfdt`/`trun` (durations, sample count, the first sample's
//! sync flag and composition offset). Every length read from the file is
//! checked before it is used (the box walkers in `qt::boxes` do that).

use super::HlsError;
use crate::archive::read_at::ReadAt;
use crate::media::qt::boxes::{be16, be32, be64, children, find, need, read_exact_at, walk_top, BoxRef};

/// A `moov` or `moof` bigger than this is not a preview's (ffmpeg writes a few
/// KiB); refusing it keeps a hostile file from making us allocate.
const MAX_HEADER_BOX: u64 = 16 << 20;

/// One `moof`+`mdat`: an HLS segment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fragment {
    /// Byte range in the file (`moof` start to `mdat` end).
    pub offset: u64,
    pub len: u64,
    /// Index of its first video frame (in decode order; fragments start at a
    /// keyframe of a closed GOP, so this is also its first frame shown).
    pub first_frame: u64,
    pub frames: u64,
    /// Video decode time of its first sample, and the sum of its samples'
    /// durations, in the video track's timescale.
    pub decode_time: u64,
    pub duration: u64,
    /// Composition offset of its first video sample (B-frame delay): the
    /// first frame is shown this long after the fragment's decode time.
    pub first_cto: i64,
    /// Its first video sample is a sync sample (a player can start here).
    pub starts_with_sync: bool,
}

/// What a playlist needs to know about one fragmented MP4.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FragmentIndex {
    /// Bytes of the init segment (`ftyp` + `moov`), from offset 0.
    pub init_len: u64,
    pub timescale: u32,
    /// The most common video sample duration (one frame), in the timescale.
    pub frame_duration: u32,
    pub width: u32,
    pub height: u32,
    /// RFC 6381 codec strings: the video's, then the audio's if there is one.
    pub codecs: Vec<String>,
    pub fragments: Vec<Fragment>,
}

impl FragmentIndex {
    pub fn frames(&self) -> u64 {
        self.fragments.iter().map(|f| f.frames).sum()
    }
    /// Frames per second as a float (HLS `FRAME-RATE`).
    pub fn frame_rate(&self) -> f64 {
        f64::from(self.timescale) / f64::from(self.frame_duration.max(1))
    }
    pub fn seconds(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.timescale.max(1))
    }
}

struct Track {
    id: u32,
    timescale: u32,
    kind: [u8; 4],
    codec: Option<String>,
    size: (u32, u32),
}

/// Read the fragment index of `src`.
pub fn index(src: &dyn ReadAt) -> Result<FragmentIndex, HlsError> {
    let (top, damage) = walk_top(src)?;
    if let Some(d) = damage {
        return Err(HlsError::Damaged(d));
    }
    let moov = top.iter().find(|b| &b.typ == b"moov").ok_or_else(|| HlsError::NotFragmented("it has no 'moov' box".into()))?;
    let first_moof = top.iter().position(|b| &b.typ == b"moof").ok_or_else(|| HlsError::NotFragmented("it has no 'moof' box".into()))?;
    if moov.offset > top[first_moof].offset {
        return Err(HlsError::NotFragmented("its 'moov' comes after the first fragment".into()));
    }
    let moov_bytes = load(src, moov.offset, moov.size)?;
    let (tracks, trex) = tracks(&moov_bytes)?;
    let video = tracks.iter().find(|t| &t.kind == b"vide").ok_or(HlsError::NoVideo)?;
    let mut codecs = vec![video.codec.clone().ok_or_else(|| {
        HlsError::Unsupported("its video is neither H.264 ('avc1'/'avc3') nor VP9 ('vp09' with a version 1 'vpcC')".into())
    })?];
    if let Some(a) = tracks.iter().find(|t| &t.kind == b"soun") {
        codecs.push(a.codec.clone().ok_or_else(|| HlsError::Unsupported("its audio is not AAC ('mp4a')".into()))?);
    }
    let defaults = trex.iter().find(|t| t.0 == video.id).map(|t| (t.1, t.2)).unwrap_or((0, 0));

    let mut fragments = Vec::new();
    let mut next_frame = 0u64;
    let mut next_time = 0u64;
    let mut durations: std::collections::HashMap<u32, u64> = Default::default();
    for (i, b) in top.iter().enumerate().skip(first_moof) {
        if &b.typ != b"moof" {
            continue;
        }
        let mdat = top
            .get(i + 1)
            .filter(|m| &m.typ == b"mdat")
            .ok_or_else(|| HlsError::NotFragmented(format!("the 'moof' at offset {} is not followed by its 'mdat'", b.offset)))?;
        let moof = load(src, b.offset, b.size)?;
        let Some(run) = video_run(&moof, video.id, defaults)? else { continue };
        for (d, n) in &run.durations {
            *durations.entry(*d).or_default() += n;
        }
        let decode_time = run.decode_time.unwrap_or(next_time);
        fragments.push(Fragment {
            offset: b.offset,
            len: mdat.offset + mdat.size - b.offset,
            first_frame: next_frame,
            frames: run.samples,
            decode_time,
            duration: run.duration,
            first_cto: run.first_cto,
            starts_with_sync: run.first_is_sync,
        });
        next_frame += run.samples;
        next_time = decode_time + run.duration;
    }
    if fragments.is_empty() {
        return Err(HlsError::NotFragmented("no fragment holds video".into()));
    }
    let frame_duration = durations.into_iter().max_by_key(|(d, n)| (*n, *d)).map(|(d, _)| d).filter(|d| *d > 0).unwrap_or(1);
    Ok(FragmentIndex {
        init_len: moov.offset + moov.size,
        timescale: video.timescale,
        frame_duration,
        width: video.size.0,
        height: video.size.1,
        codecs,
        fragments,
    })
}

fn load(src: &dyn ReadAt, offset: u64, size: u64) -> Result<Vec<u8>, HlsError> {
    if size > MAX_HEADER_BOX {
        return Err(HlsError::Damaged(format!("a header box at offset {offset} claims {size} bytes")));
    }
    let mut buf = vec![0u8; size as usize];
    read_exact_at(src, offset, &mut buf)?;
    Ok(buf)
}

/// (tracks, trex defaults: (track id, default sample duration, default sample flags)).
fn tracks(moov: &[u8]) -> Result<(Vec<Track>, Vec<(u32, u32, u32)>), HlsError> {
    let top = children(moov, 0, moov.len())?;
    let body = need(&top, b"moov", "file")?;
    let kids = children(moov, body.body, body.end)?;
    let mut trex = Vec::new();
    if let Some(mvex) = find(&kids, b"mvex") {
        for t in children(moov, mvex.body, mvex.end)?.iter().filter(|b| &b.typ == b"trex") {
            // version/flags, track_ID, sample description index, duration, size, flags
            trex.push((be32(moov, t.body + 4)?, be32(moov, t.body + 12)?, be32(moov, t.body + 20)?));
        }
    }
    let mut out = Vec::new();
    for trak in kids.iter().filter(|b| &b.typ == b"trak") {
        let tk = children(moov, trak.body, trak.end)?;
        let tkhd = need(&tk, b"tkhd", "trak")?;
        let id = if moov.get(tkhd.body) == Some(&1) { be32(moov, tkhd.body + 20)? } else { be32(moov, tkhd.body + 12)? };
        let mdia = need(&tk, b"mdia", "trak")?;
        let md = children(moov, mdia.body, mdia.end)?;
        let mdhd = need(&md, b"mdhd", "mdia")?;
        let timescale = if moov.get(mdhd.body) == Some(&1) { be32(moov, mdhd.body + 20)? } else { be32(moov, mdhd.body + 12)? };
        let hdlr = need(&md, b"hdlr", "mdia")?;
        let kind = be32(moov, hdlr.body + 8)?.to_be_bytes();
        let minf = need(&md, b"minf", "mdia")?;
        let stbl = need(&children(moov, minf.body, minf.end)?, b"stbl", "minf")?.to_owned();
        let stsd = need(&children(moov, stbl.body, stbl.end)?, b"stsd", "stbl")?.to_owned();
        // stsd: version/flags, entry count, then the sample entries.
        let entry = children(moov, stsd.body + 8, stsd.end)?.into_iter().next();
        let (codec, size) = match entry {
            Some(e) => sample_entry(moov, &e)?,
            None => (None, (0, 0)),
        };
        if timescale == 0 {
            return Err(HlsError::Damaged(format!("track {id} has a timescale of 0")));
        }
        out.push(Track { id, timescale, kind, codec, size });
    }
    Ok((out, trex))
}

/// The codec string (and picture size) of a sample entry we can name.
fn sample_entry(d: &[u8], e: &BoxRef) -> Result<(Option<String>, (u32, u32)), HlsError> {
    match &e.typ {
        b"avc1" | b"avc3" => {
            // Visual sample entry: 8 bytes of SampleEntry, 16 reserved, width,
            // height, then 50 more bytes before the child boxes.
            let size = (u32::from(be16(d, e.body + 24)?), u32::from(be16(d, e.body + 26)?));
            let kids = children(d, (e.body + 78).min(e.end), e.end)?;
            let codec = find(&kids, b"avcC").map(|c| -> Result<String, HlsError> {
                let b = |i| d.get(c.body + i).copied().ok_or_else(|| HlsError::Damaged("'avcC' is cut short".into()));
                Ok(format!("{}.{:02x}{:02x}{:02x}", String::from_utf8_lossy(&e.typ), b(1)?, b(2)?, b(3)?))
            });
            Ok((codec.transpose()?, size))
        }
        b"vp09" => {
            // The same visual sample entry; the codec string comes from
            // `vpcC` (VP Codec ISO Media File Format Binding, version 1:
            // version/flags, profile, level, bit depth in the high nibble).
            let size = (u32::from(be16(d, e.body + 24)?), u32::from(be16(d, e.body + 26)?));
            let kids = children(d, (e.body + 78).min(e.end), e.end)?;
            let codec = match find(&kids, b"vpcC") {
                Some(c) => {
                    let b = |i| d.get(c.body + i).copied().ok_or_else(|| HlsError::Damaged("'vpcC' is cut short".into()));
                    // Version 0 (an early draft) laid the fields out otherwise.
                    if b(0)? == 1 {
                        Some(format!("vp09.{:02}.{:02}.{:02}", b(4)?, b(5)?, b(6)? >> 4))
                    } else {
                        None
                    }
                }
                None => None,
            };
            Ok((codec, size))
        }
        b"mp4a" => {
            // Audio sample entry: 8 bytes of SampleEntry, then version 0 (20
            // more bytes), 1 (+16) or 2 (+36) of QuickTime sound description.
            let extra = match be16(d, e.body + 8)? {
                1 => 16,
                2 => 36,
                _ => 0,
            };
            let kids = children(d, (e.body + 28 + extra).min(e.end), e.end)?;
            let codec = match find(&kids, b"esds") {
                Some(esds) => aac_codec(&d[esds.body..esds.end]),
                None => None,
            };
            Ok((Some(codec.unwrap_or_else(|| "mp4a.40.2".into())), (0, 0)))
        }
        _ => Ok((None, (0, 0))),
    }
}

/// `mp4a.OTI[.AOT]` from an `esds` body (ISO/IEC 14496-1 descriptors).
fn aac_codec(esds: &[u8]) -> Option<String> {
    let mut p = 4; // version/flags
    let (tag, len, at) = descriptor(esds, p)?;
    if tag != 0x03 {
        return None;
    }
    let end = (at + len).min(esds.len());
    let flags = *esds.get(at + 2)?;
    p = at + 3;
    if flags & 0x80 != 0 {
        p += 2;
    }
    if flags & 0x40 != 0 {
        p += 1 + *esds.get(p)? as usize;
    }
    if flags & 0x20 != 0 {
        p += 2;
    }
    let (tag, _, at) = descriptor(&esds[..end], p)?;
    if tag != 0x04 {
        return None;
    }
    let oti = *esds.get(at)?;
    if oti != 0x40 {
        return Some(format!("mp4a.{oti:02x}"));
    }
    // DecoderSpecificInfo after the 13-byte DecoderConfigDescriptor fields.
    let (tag, _, at) = descriptor(&esds[..end], at + 13)?;
    if tag != 0x05 {
        return Some("mp4a.40".into());
    }
    let b0 = *esds.get(at)?;
    let mut aot = b0 >> 3;
    if aot == 31 {
        aot = 32 + (((b0 & 0x07) << 3) | (esds.get(at + 1)? >> 5));
    }
    Some(format!("mp4a.40.{aot}"))
}

/// (tag, length, body offset) of the descriptor at `p` (lengths take 1-4
/// bytes, 7 bits each, high bit set on all but the last).
fn descriptor(d: &[u8], p: usize) -> Option<(u8, usize, usize)> {
    let tag = *d.get(p)?;
    let mut len = 0usize;
    for i in 1..=4 {
        let b = *d.get(p + i)?;
        len = (len << 7) | (b & 0x7f) as usize;
        if b & 0x80 == 0 {
            return Some((tag, len, p + i + 1));
        }
    }
    None
}

/// The video track's run in one `moof`.
struct VideoRun {
    decode_time: Option<u64>,
    samples: u64,
    duration: u64,
    /// (sample duration, how many samples had it).
    durations: Vec<(u32, u64)>,
    first_cto: i64,
    first_is_sync: bool,
}

/// ISO/IEC 14496-12 sample flags: `sample_is_non_sync_sample`.
const NON_SYNC: u32 = 0x0001_0000;

fn video_run(moof: &[u8], track: u32, trex: (u32, u32)) -> Result<Option<VideoRun>, HlsError> {
    let top = children(moof, 0, moof.len())?;
    let body = need(&top, b"moof", "fragment")?;
    for traf in children(moof, body.body, body.end)?.iter().filter(|b| &b.typ == b"traf") {
        let kids = children(moof, traf.body, traf.end)?;
        let tfhd = need(&kids, b"tfhd", "traf")?;
        let tf_flags = be32(moof, tfhd.body)? & 0x00ff_ffff;
        if be32(moof, tfhd.body + 4)? != track {
            continue;
        }
        // Optional tfhd fields, in order, after the track id.
        let mut p = tfhd.body + 8;
        let mut field = |flag: u32, len: usize| -> Result<Option<usize>, HlsError> {
            if tf_flags & flag == 0 {
                return Ok(None);
            }
            let at = p;
            p += len;
            Ok(Some(at))
        };
        field(0x01, 8)?; // base data offset
        field(0x02, 4)?; // sample description index
        let default_duration = match field(0x08, 4)? {
            Some(at) => be32(moof, at)?,
            None => trex.0,
        };
        field(0x10, 4)?; // default sample size
        let default_flags = match field(0x20, 4)? {
            Some(at) => be32(moof, at)?,
            None => trex.1,
        };
        let decode_time = match find(&kids, b"tfdt") {
            Some(t) if moof.get(t.body) == Some(&1) => Some(be64(moof, t.body + 4)?),
            Some(t) => Some(u64::from(be32(moof, t.body + 4)?)),
            None => None,
        };
        let mut run = VideoRun { decode_time, samples: 0, duration: 0, durations: Vec::new(), first_cto: 0, first_is_sync: true };
        for trun in kids.iter().filter(|b| &b.typ == b"trun") {
            let vf = be32(moof, trun.body)?;
            let (version, flags) = (vf >> 24, vf & 0x00ff_ffff);
            let count = be32(moof, trun.body + 4)?;
            let mut p = trun.body + 8;
            if flags & 0x01 != 0 {
                p += 4; // data offset
            }
            let first_flags = if flags & 0x04 != 0 {
                p += 4;
                Some(be32(moof, p - 4)?)
            } else {
                None
            };
            let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
            if (count as usize).saturating_mul(per_sample) > trun.end.saturating_sub(p) {
                return Err(HlsError::Damaged(format!("a 'trun' lists {count} samples but has room for fewer")));
            }
            for i in 0..count as usize {
                let mut q = p + i * per_sample;
                let mut next = |flag: u32| -> Result<Option<u32>, HlsError> {
                    if flags & flag == 0 {
                        return Ok(None);
                    }
                    q += 4;
                    Ok(Some(be32(moof, q - 4)?))
                };
                let dur = next(0x100)?.unwrap_or(default_duration);
                next(0x200)?;
                let sflags = next(0x400)?;
                let cto = next(0x800)?;
                if run.samples == 0 {
                    let f = if i == 0 { first_flags.or(sflags) } else { sflags }.unwrap_or(default_flags);
                    run.first_is_sync = f & NON_SYNC == 0;
                    run.first_cto = match cto {
                        Some(c) if version == 1 => i64::from(c as i32),
                        Some(c) => i64::from(c),
                        None => 0,
                    };
                }
                match run.durations.iter_mut().find(|d| d.0 == dur) {
                    Some(d) => d.1 += 1,
                    None => run.durations.push((dur, 1)),
                }
                run.samples += 1;
                run.duration += u64::from(dur);
            }
        }
        return Ok((run.samples > 0).then_some(run));
    }
    Ok(None)
}
