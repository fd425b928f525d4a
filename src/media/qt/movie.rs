//! Reading a movie: finding `moov`, parsing each track far enough to cut it, and the
//! public [`MovieInfo`] summary.

use super::boxes::{be16, be32, be64, children, find, fourcc, need, read_exact_at, walk_top, BoxRef};
use super::tables::{SampleTable, Sizes};
use super::timing::{Edit, VideoTiming};
use super::{MovieInfo, QtError, ReadAt, TmcdInfo, TrackInfo, TrackKind};

/// `moov` is read into memory whole; cap it well above anything a real camera file has
/// (a 10-hour, 16-track PCM file is a few MB) so a corrupt size cannot exhaust memory.
const MAX_MOOV: u64 = 512 << 20;

/// Video timing is expanded per sample; 50 M frames is over 9 days at 60 fps, and keeps
/// a corrupt count from asking for gigabytes.
const MAX_VIDEO_SAMPLES: u64 = 50_000_000;

/// A timecode track holds one sample per unbroken run; a hundred thousand breaks in one
/// clip is damage, not a recording.
const MAX_TMCD_SAMPLES: u64 = 100_000;

#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub format: [u8; 4],
    pub width: u16,
    pub height: u16,
    pub channels: u16,
    pub bits: u16,
    pub sample_rate: u32,
    /// Bytes of one PCM audio frame, from the sound description.
    pub pcm_frame_bytes: Option<u64>,
    pub tmcd: Option<TmcdEntry>,
}

#[derive(Debug, Clone)]
pub(crate) struct TmcdEntry {
    pub flags: u32,
    pub timescale: u32,
    pub frame_duration: u32,
    pub fps: u8,
    pub reel: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Track {
    pub trak: BoxRef,
    pub kids: Vec<BoxRef>,
    pub id: u32,
    pub handler: [u8; 4],
    pub timescale: u32,
    pub mdia_kids: Vec<BoxRef>,
    pub minf_kids: Vec<BoxRef>,
    pub stsd: BoxRef,
    pub edit: Option<Edit>,
    pub table: SampleTable,
    pub entry: Entry,
    /// Track references: (type, referenced ids).
    pub tref: Vec<([u8; 4], Vec<u32>)>,
}

impl Track {
    /// Uncompressed audio: one table sample is one audio frame, so it can be cut at any
    /// sample by moving a chunk offset, with no preroll.
    pub fn is_pcm(&self) -> bool {
        let constant = matches!(self.table.sizes, Sizes::Constant { .. });
        constant
            && (self.is_pcm_format()
                || self.table.stts.iter().all(|e| e.1 == 1) && !matches!(self.table.sizes, Sizes::Constant { size: 1, .. }))
    }

    pub fn is_pcm_format(&self) -> bool {
        const PCM: &[&[u8; 4]] = &[b"lpcm", b"sowt", b"twos", b"in24", b"in32", b"fl32", b"fl64", b"raw ", b"NONE", b"ulaw", b"alaw"];
        PCM.iter().any(|p| **p == self.entry.format)
    }
}

pub(crate) struct Movie {
    pub ftyp: Option<Vec<u8>>,
    pub moov: Vec<u8>,
    pub moov_kids: Vec<BoxRef>,
    pub timescale: u32,
    pub duration: u64,
    pub tracks: Vec<Track>,
    pub moov_first: bool,
}

/// Reads the creation/modification/timescale/duration prefix shared by mvhd and mdhd.
pub(crate) fn header_times(d: &[u8], b: &BoxRef) -> Result<(u8, u32, u64), QtError> {
    let v = *d.get(b.body).ok_or_else(|| QtError::Malformed("empty header box".into()))?;
    if v == 1 {
        Ok((1, be32(d, b.body + 20)?, be64(d, b.body + 24)?))
    } else {
        Ok((0, be32(d, b.body + 12)?, be32(d, b.body + 16)? as u64))
    }
}

fn parse_edit(d: &[u8], edts: &BoxRef) -> Result<Option<Edit>, QtError> {
    let kids = children(d, edts.body, edts.end)?;
    let Some(elst) = find(&kids, b"elst") else {
        return Ok(None);
    };
    let v = *d.get(elst.body).ok_or_else(|| QtError::Malformed("empty 'elst'".into()))?;
    let n = be32(d, elst.body + 4)? as usize;
    let w = if v == 1 { 20 } else { 12 };
    if n.saturating_mul(w) > elst.end.saturating_sub(elst.body + 8) {
        return Err(QtError::Malformed("'elst' entry count exceeds its size".into()));
    }
    for i in 0..n {
        let p = elst.body + 8 + i * w;
        let (dur, mt) = if v == 1 { (be64(d, p)?, be64(d, p + 8)? as i64) } else { (be32(d, p)? as u64, be32(d, p + 4)? as i32 as i64) };
        // Empty edits (-1) only delay the track; decisions are made on the first real one.
        if mt >= 0 {
            return Ok(Some(Edit { media_time: mt, duration: dur }));
        }
    }
    Ok(None)
}

fn parse_entry(d: &[u8], stsd: &BoxRef, handler: &[u8; 4]) -> Result<Entry, QtError> {
    let e = stsd.body + 8;
    if be32(d, stsd.body + 4)? == 0 || e + 16 > stsd.end {
        return Err(QtError::Malformed("'stsd' has no sample description".into()));
    }
    let esize = be32(d, e)? as usize;
    let eend = e
        .checked_add(esize)
        .filter(|&x| x <= stsd.end && esize >= 16)
        .ok_or_else(|| QtError::Malformed("sample description overruns 'stsd'".into()))?;
    // Every field is read from inside the entry: a description cut short is an error, not
    // a reading of whatever box follows it as its channels or its frame rate.
    let d = &d[..eend];
    let mut ent = Entry { format: [d[e + 4], d[e + 5], d[e + 6], d[e + 7]], ..Default::default() };
    match handler {
        b"vide" => {
            ent.width = be16(d, e + 32)?;
            ent.height = be16(d, e + 34)?;
        }
        b"soun" => {
            let ver = be16(d, e + 16)?;
            ent.channels = be16(d, e + 24)?;
            ent.bits = be16(d, e + 26)?;
            ent.sample_rate = be32(d, e + 32)? >> 16;
            match ver {
                0 => ent.pcm_frame_bytes = Some(ent.channels as u64 * (ent.bits as u64 / 8)),
                1 => ent.pcm_frame_bytes = Some(be32(d, e + 44)? as u64),
                2 => {
                    let sr = f64::from_bits(be64(d, e + 40)?);
                    // Equivalent mutant (scripts/mutants): `sr >= 0.0` changes nothing, because
                    // a rate of (plus or minus) zero rounds to the same 0 it is refused as.
                    ent.sample_rate = if sr.is_finite() && sr > 0.0 && sr < 1e9 { sr.round() as u32 } else { 0 };
                    ent.channels = be32(d, e + 48)?.min(u16::MAX as u32) as u16;
                    ent.bits = be32(d, e + 56)?.min(u16::MAX as u32) as u16;
                    ent.pcm_frame_bytes = Some(be32(d, e + 64)? as u64);
                }
                _ => {}
            }
        }
        b"tmcd" => {
            let flags = be32(d, e + 20)?;
            let timescale = be32(d, e + 24)?;
            let frame_duration = be32(d, e + 28)?;
            let fps = *d.get(e + 32).ok_or_else(|| QtError::Malformed("short tmcd entry".into()))?;
            // The name atom follows the fixed part; ffmpeg pads some entries with 2 bytes, so
            // scan leniently instead of insisting on a clean list of boxes.
            let mut reel = None;
            let mut p = e + 34;
            while p + 12 <= eend {
                let sz = be32(d, p)? as usize;
                if sz < 8 || p + sz > eend {
                    break;
                }
                if &d[p + 4..p + 8] == b"name" && sz >= 12 {
                    let len = be16(d, p + 8)? as usize;
                    let s = p + 12;
                    let bytes = d.get(s..(s + len).min(p + sz)).unwrap_or(&[]);
                    reel = Some(String::from_utf8_lossy(bytes).trim_end_matches('\0').to_string());
                }
                p += sz;
            }
            ent.tmcd = Some(TmcdEntry { flags, timescale, frame_duration, fps, reel });
        }
        _ => {}
    }
    Ok(ent)
}

fn parse_track(d: &[u8], trak: BoxRef, file_len: u64) -> Result<Track, QtError> {
    let kids = children(d, trak.body, trak.end)?;
    let tkhd = *need(&kids, b"tkhd", "trak")?;
    let tv = *d.get(tkhd.body).ok_or_else(|| QtError::Malformed("empty 'tkhd'".into()))?;
    let id = if tv == 1 { be32(d, tkhd.body + 20)? } else { be32(d, tkhd.body + 12)? };
    let mdia = *need(&kids, b"mdia", "trak")?;
    let mdia_kids = children(d, mdia.body, mdia.end)?;
    let mdhd = *need(&mdia_kids, b"mdhd", "mdia")?;
    let (_, timescale, _) = header_times(d, &mdhd)?;
    if timescale == 0 {
        return Err(QtError::Malformed(format!("track {id} has a zero media timescale")));
    }
    let hdlr = need(&mdia_kids, b"hdlr", "mdia")?;
    let handler = {
        let h = be32(d, hdlr.body + 8)?.to_be_bytes();
        [h[0], h[1], h[2], h[3]]
    };
    let minf = *need(&mdia_kids, b"minf", "mdia")?;
    let minf_kids = children(d, minf.body, minf.end)?;
    if let Some(dinf) = find(&minf_kids, b"dinf") {
        let dk = children(d, dinf.body, dinf.end)?;
        if let Some(dref) = find(&dk, b"dref") {
            // Every data reference must say "in this file" (flag 1): the slice can only
            // point at bytes of the file it was planned from.
            let n = be32(d, dref.body + 4)?;
            let entries = children(d, dref.body + 8, dref.end)?;
            if entries.len() as u32 != n || entries.iter().any(|en| be32(d, en.body).map_or(true, |f| f & 1 == 0)) {
                return Err(QtError::Unsupported(format!("track {id} refers to media outside the file")));
            }
        }
    }
    let stbl = *need(&minf_kids, b"stbl", "minf")?;
    let stbl_kids = children(d, stbl.body, stbl.end)?;
    let stsd = *need(&stbl_kids, b"stsd", "stbl")?;
    let mut table = SampleTable::parse(d, &stbl, file_len)?;
    let entry = parse_entry(d, &stsd, &handler)?;
    if let Sizes::Constant { size: 1, .. } = table.sizes {
        // Legacy QuickTime PCM: stsz says 1, the real frame size is in the description.
        table.bytes_per_sample = entry.pcm_frame_bytes.filter(|&b| b > 0);
    }
    let edit = match find(&kids, b"edts") {
        Some(e) => parse_edit(d, e)?,
        None => None,
    };
    let mut tref = Vec::new();
    if let Some(t) = find(&kids, b"tref") {
        for r in children(d, t.body, t.end)? {
            let n = (r.end - r.body) / 4;
            let ids = (0..n).map(|i| be32(d, r.body + 4 * i)).collect::<Result<Vec<_>, _>>()?;
            tref.push((r.typ, ids));
        }
    }
    Ok(Track { trak, kids, id, handler, timescale, mdia_kids, minf_kids, stsd, edit, table, entry, tref })
}

pub(crate) fn load(src: &dyn ReadAt) -> Result<Movie, QtError> {
    let (boxes, damage) = walk_top(src)?;
    let mut ftyp = None;
    let mut moov_box = None;
    let mut seen_mdat = false;
    let mut moov_first = false;
    for b in &boxes {
        match &b.typ {
            b"ftyp" if ftyp.is_none() && b.size <= 4096 => {
                let mut v = vec![0u8; b.size as usize];
                read_exact_at(src, b.offset, &mut v)?;
                ftyp = Some(v);
            }
            b"moov" if moov_box.is_none() => {
                moov_box = Some(*b);
                moov_first = !seen_mdat;
            }
            b"mdat" => seen_mdat = true,
            b"moof" => return Err(QtError::Unsupported("fragmented MP4 ('moof') sources cannot be sliced".into())),
            _ => {}
        }
    }
    let Some(mb) = moov_box else {
        return Err(match damage {
            Some(d) => QtError::Truncated(format!("no 'moov' box before the damage: {d}")),
            None => QtError::Truncated(format!("no 'moov' box in {} bytes (recording never finalised?)", src.len())),
        });
    };
    if mb.size > MAX_MOOV {
        return Err(QtError::Unsupported(format!("'moov' of {} bytes is over the {MAX_MOOV}-byte limit", mb.size)));
    }
    let mut moov = vec![0u8; mb.size as usize];
    read_exact_at(src, mb.offset, &mut moov)?;
    let body = mb.header as usize;
    let moov_kids = children(&moov, body, moov.len())?;
    if find(&moov_kids, b"cmov").is_some() {
        return Err(QtError::Unsupported("compressed movie header ('cmov')".into()));
    }
    if find(&moov_kids, b"mvex").is_some() {
        return Err(QtError::Unsupported("fragmented MP4 ('mvex') sources cannot be sliced".into()));
    }
    let mvhd = *need(&moov_kids, b"mvhd", "moov")?;
    let (_, timescale, duration) = header_times(&moov, &mvhd)?;
    if timescale == 0 {
        return Err(QtError::Malformed("movie timescale is zero".into()));
    }
    let mut tracks = Vec::new();
    for k in moov_kids.iter().filter(|k| &k.typ == b"trak") {
        tracks.push(parse_track(&moov, *k, src.len())?);
    }
    Ok(Movie { ftyp, moov, moov_kids, timescale, duration, tracks, moov_first })
}

impl Movie {
    pub fn video(&self) -> Option<usize> {
        self.tracks.iter().position(|t| &t.handler == b"vide")
    }

    /// The timecode track the video points at through `tref`/`tmcd`, else the first one.
    pub fn timecode(&self) -> Option<usize> {
        let referenced =
            self.video().and_then(|v| self.tracks[v].tref.iter().find(|(t, _)| t == b"tmcd").and_then(|(_, ids)| ids.first().copied()));
        referenced
            .and_then(|id| self.tracks.iter().position(|t| t.id == id && &t.handler == b"tmcd"))
            .or_else(|| self.tracks.iter().position(|t| &t.handler == b"tmcd"))
    }

    /// Which samples the source shows, and in which order (see [`VideoTiming`]).
    pub fn video_timing(&self, v: usize) -> Result<VideoTiming, QtError> {
        let t = &self.tracks[v];
        VideoTiming::build(&t.table, t.timescale, t.edit, self.timescale)
    }

    /// Heap bytes held for this movie: the `moov` it was parsed from plus its tables.
    pub fn heap_bytes(&self) -> usize {
        self.moov.capacity()
            + self.ftyp.as_ref().map_or(0, |f| f.capacity())
            + self
                .tracks
                .iter()
                .map(|t| {
                    t.table.heap_bytes()
                        + (t.kids.capacity() + t.mdia_kids.capacity() + t.minf_kids.capacity()) * std::mem::size_of::<BoxRef>()
                })
                .sum::<usize>()
    }

    /// The tmcd sample value (first sample), read from the source.
    pub fn tmcd_start(&self, src: &dyn ReadAt, tc: usize) -> Result<u32, QtError> {
        let t = &self.tracks[tc];
        if t.table.sample_count() == 0 {
            return Err(QtError::Malformed("timecode track has no sample".into()));
        }
        tmcd_sample(t, src, 0)
    }

    /// Every sample of a timecode track as (display frame of the video it starts at, its
    /// frame number). A camera that restarts its timecode inside one recording (a break)
    /// writes one sample per run; FFmpeg and most tools only read the first.
    pub fn tmcd_samples(&self, src: &dyn ReadAt, tc: usize) -> Result<Vec<(u64, u32)>, QtError> {
        let t = &self.tracks[tc];
        let n = t.table.sample_count();
        if n == 0 {
            return Err(QtError::Malformed("timecode track has no sample".into()));
        }
        if n > MAX_TMCD_SAMPLES {
            return Err(QtError::Unsupported(format!("timecode track has {n} samples (limit {MAX_TMCD_SAMPLES})")));
        }
        let fd = t.entry.tmcd.as_ref().map_or(0, |e| e.frame_duration) as u64;
        let mut out = Vec::with_capacity(n as usize);
        for k in 0..n {
            // Sample times are in the tmcd track's timescale, one frame = frame_duration.
            let frame = t.table.decode_time(k).checked_div(fd).unwrap_or(0);
            out.push((frame, tmcd_sample(t, src, k)?));
        }
        Ok(out)
    }

    /// Presentation time of each displayed video frame, zero at the first, in the video
    /// media timescale: what frame-accurate seconds slices of variable-rate clips need.
    pub fn frame_times(&self) -> Result<(Vec<i64>, u32), QtError> {
        let v = self.video().ok_or_else(|| QtError::Unsupported("the movie has no video track to time frames by".into()))?;
        let vt = self.video_timing(v)?;
        let origin = self.tracks[v].edit.map_or(0, |e| e.media_time);
        let count = vt.count();
        // One i64 per frame: refuse a count that is damage, not a recording.
        // Survivor of scripts/mutants, not equivalent, left untested on purpose: `>=` moves
        // the bound by one frame, which only a clip of exactly 50 M frames shows, and its
        // times would take 400 MB on a shared machine. One frame past the bound is tested.
        if count > MAX_VIDEO_SAMPLES {
            return Err(QtError::Unsupported(format!("{count} video frames is more than a clip holds (damaged or crafted file?)")));
        }
        let table = &self.tracks[v].table;
        let times = (0..count).map(|i| (vt.cts(table, vt.sample(i)) - origin).max(0)).collect();
        Ok((times, self.tracks[v].timescale))
    }

    pub fn info(&self, src: &dyn ReadAt) -> Result<MovieInfo, QtError> {
        let tracks = self
            .tracks
            .iter()
            .map(|t| TrackInfo {
                id: t.id,
                kind: match &t.handler {
                    b"vide" => TrackKind::Video,
                    b"soun" => TrackKind::Audio,
                    b"tmcd" => TrackKind::Timecode,
                    h => TrackKind::Other(fourcc(h)),
                },
                codec: fourcc(&t.entry.format),
                timescale: t.timescale,
                duration: t.table.duration(),
                sample_count: t.table.sample_count(),
                width: t.entry.width,
                height: t.entry.height,
                sample_rate: t.entry.sample_rate,
                channels: t.entry.channels,
                bits: t.entry.bits,
            })
            .collect();
        let timecode = match self.timecode() {
            Some(i) => {
                let e = self.tracks[i].entry.tmcd.clone().ok_or_else(|| QtError::Malformed("tmcd track without tmcd entry".into()))?;
                Some(TmcdInfo {
                    start_frame: self.tmcd_start(src, i)?,
                    samples: self.tmcd_samples(src, i)?,
                    timescale: e.timescale,
                    frame_duration: e.frame_duration,
                    fps: e.fps,
                    drop_frame: e.flags & 1 != 0,
                    flags: e.flags,
                    reel: e.reel,
                })
            }
            None => None,
        };
        let (count, fd) = match self.video() {
            Some(v) => (self.video_timing(v)?.count(), (self.tracks[v].timescale, self.tracks[v].table.modal_delta())),
            None => (0, (0, 0)),
        };
        Ok(MovieInfo {
            timescale: self.timescale,
            duration: self.duration,
            tracks,
            timecode,
            video_frame_count: count,
            video_frame_duration: fd,
            moov_first: self.moov_first,
        })
    }
}

/// Timecode sample `k` of tmcd track `t`: a 4-byte big-endian frame number, read from
/// the source (checked against its length first, so a damaged offset is an error).
fn tmcd_sample(t: &Track, src: &dyn ReadAt, k: u64) -> Result<u32, QtError> {
    let c = t.table.chunks_for(k, k + 1)?;
    let off = c[0].offset;
    if off.checked_add(4).is_none_or(|e| e > src.len()) {
        return Err(QtError::Truncated(format!("timecode sample at offset {off} lies past the end of the file ({})", src.len())));
    }
    let mut b = [0u8; 4];
    read_exact_at(src, off, &mut b)?;
    Ok(u32::from_be_bytes(b))
}

#[cfg(test)]
#[path = "movie_tests.rs"]
pub(super) mod tests;
