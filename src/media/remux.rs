//! Slices of containers that cannot be sliced in place (MXF and others): the
//! range is remuxed once, with FFmpeg (ffmpeg-next), into a MOV in the
//! archive's cache/ — essence packets copied, never re-encoded — with the
//! slice's start timecode and reel in a tmcd track. Later lookups reuse it;
//! [`cache`] bounds the folder and runs one remux per name at a time.
//!
//! The source is read straight from the archive through a Read+Seek cursor, so
//! no temporary copy of a (possibly huge) original is made.

use crate::archive::BlobReader;
use ffmpeg_next as ff;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

pub mod cache;

/// Everything one remuxed slice is made from: enough to make it again after it
/// was evicted, and to name it in the cache.
#[derive(Clone)]
pub struct RemuxJob {
    pub reader: Arc<BlobReader>,
    /// The clip's file name, a hint for FFmpeg's format probe.
    pub name_hint: String,
    pub first: u64,
    pub end: u64,
    pub start_tc: String,
    pub reel: Option<String>,
}

impl std::fmt::Debug for RemuxJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemuxJob({} {}..{} @{})", self.reader.hash.to_hex(), self.first, self.end, self.start_tc)
    }
}

impl RemuxJob {
    /// The cache name: content, frames, and the timecode and reel written into
    /// the file (a start timecode set later by a user must not reuse the old file).
    pub fn key(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(self.start_tc.as_bytes());
        h.update(&[0]);
        h.update(self.reel.as_deref().unwrap_or("").as_bytes());
        let tag = h.finalize().to_hex();
        format!("{}_{}_{}_{}", self.reader.hash.to_hex(), self.first, self.end, &tag[..8])
    }

    /// The cached file, remuxed now if it is not there (or was evicted).
    pub fn cached(&self, cache: &cache::RemuxCache) -> Result<(std::path::PathBuf, Arc<std::fs::File>), cache::CacheError> {
        cache.get_or_make(&self.key(), |tmp| {
            log::info!("remuxing {} frames {}..{} (timecode {})", self.name_hint, self.first, self.end, self.start_tc);
            remux_range(self.reader.clone(), &self.name_hint, self.first, self.end, &self.start_tc, self.reel.as_deref(), tmp)
        })
    }
}

/// Read+Seek over an archived file, for FFmpeg's custom I/O.
pub struct BlobCursor {
    reader: Arc<BlobReader>,
    pos: u64,
}

impl BlobCursor {
    pub fn new(reader: Arc<BlobReader>) -> BlobCursor {
        BlobCursor { reader, pos: 0 }
    }
}

impl Read for BlobCursor {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read_at(self.pos, buf).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobCursor {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let size = self.reader.size as i128;
        let p = match to {
            SeekFrom::Start(o) => o as i128,
            SeekFrom::End(o) => size + o as i128,
            SeekFrom::Current(o) => self.pos as i128 + o as i128,
        };
        if p < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"));
        }
        self.pos = p as u64;
        Ok(self.pos)
    }
}

/// Frames [first, end) of the first video stream (and the audio that plays with
/// them, PCM cut sample-exact) into a MOV at `out`. `out` is a temporary: the
/// cache renames it into place once complete.
pub fn remux_range(
    reader: Arc<BlobReader>,
    name_hint: &str,
    first: u64,
    end: u64,
    start_tc: &str,
    reel: Option<&str>,
    out: &Path,
) -> Result<(), String> {
    super::probe::init_ffmpeg();
    let io = ff::format::context::StreamIo::from_read_seek(BlobCursor::new(reader)).map_err(|e| e.to_string())?;
    let mut ictx = ff::format::input_from_stream(io, Some(name_hint), None).map_err(|e| format!("FFmpeg cannot open the source: {e}"))?;
    remux_inner(&mut ictx, first, end, start_tc, reel, out)
}

struct Map {
    out_index: usize,
    in_tb: ff::Rational,
    kind: ff::media::Type,
    /// For PCM audio: bytes per sample frame (all channels) and the sample rate.
    pcm_block: Option<(usize, i32)>,
}

fn remux_inner(
    ictx: &mut ff::format::context::Input,
    first: u64,
    end: u64,
    start_tc: &str,
    reel: Option<&str>,
    tmp: &Path,
) -> Result<(), String> {
    let mut octx = ff::format::output_as(tmp, "mov").map_err(|e| format!("{}: {e}", tmp.display()))?;
    let video = ictx.streams().best(ff::media::Type::Video).ok_or("the source has no video stream")?;
    let vidx = video.index();
    let rate = if video.avg_frame_rate().numerator() > 0 { video.avg_frame_rate() } else { video.rate() };
    if rate.numerator() <= 0 || rate.denominator() <= 0 {
        return Err("the video stream has no frame rate".into());
    }
    let v_tb = video.time_base();
    let v_start = if video.start_time() == ff::ffi::AV_NOPTS_VALUE { 0 } else { video.start_time() };
    // pts of frame k in the video time base, exact in integers.
    let frame_pts = |k: u64| -> i64 {
        let num = k as i128 * rate.denominator() as i128 * v_tb.denominator() as i128;
        let den = rate.numerator() as i128 * v_tb.numerator() as i128;
        v_start + (num / den.max(1)) as i64
    };
    let (p0, p1) = (frame_pts(first), frame_pts(end));
    let mut maps: Vec<Option<Map>> = Vec::new();
    for ist in ictx.streams() {
        let par = ist.parameters();
        let kind = par.medium();
        if !(ist.index() == vidx || kind == ff::media::Type::Audio) {
            maps.push(None);
            continue;
        }
        let out_index = octx.nb_streams() as usize;
        let mut ost = octx.add_stream(ff::encoder::find(ff::codec::Id::None)).map_err(|e| e.to_string())?;
        ost.set_parameters(par.clone());
        // SAFETY: parameters of a stream we just created; codec_tag 0 lets the
        // mov muxer choose the tag for the codec.
        unsafe {
            (*ost.parameters().as_mut_ptr()).codec_tag = 0;
        }
        if ist.index() == vidx {
            let mut md = ff::Dictionary::new();
            md.set("timecode", start_tc);
            if let Some(r) = reel {
                md.set("reel_name", r);
            }
            ost.set_metadata(md);
            ost.set_time_base(v_tb);
            // movenc builds the tmcd track from this rate; without it the timecode is dropped.
            ost.set_avg_frame_rate(rate);
            ost.set_rate(rate);
        }
        // SAFETY: reading plain fields of the input stream's parameters.
        let raw = unsafe { &*par.as_ptr() };
        let bits = unsafe { ff::ffi::av_get_bits_per_sample(raw.codec_id) };
        let pcm_block = (kind == ff::media::Type::Audio && bits > 0)
            .then(|| ((bits as usize / 8) * raw.ch_layout.nb_channels.max(1) as usize, raw.sample_rate));
        maps.push(Some(Map { out_index, in_tb: ist.time_base(), kind, pcm_block }));
    }
    // Seek near the in point; demuxers without an index fall back to reading from the start.
    let seek_ts = ((p0 - v_start) as f64 * v_tb.numerator() as f64 / v_tb.denominator() as f64 * ff::ffi::AV_TIME_BASE as f64) as i64;
    if first > 0 {
        let _ = ictx.seek(seek_ts, ..seek_ts + 1);
    }
    // The movie timescale must count the video's frames exactly, or the tmcd
    // track's duration rounds and tools read the last frame's timecode wrong.
    let mut opts = ff::Dictionary::new();
    opts.set("movie_timescale", &v_tb.denominator().to_string());
    octx.write_header_with(opts).map_err(|e| format!("writing the MOV header: {e}"))?;
    let out_tbs: Vec<ff::Rational> =
        (0..octx.nb_streams() as usize).map(|i| octx.stream(i).map(|s| s.time_base()).unwrap_or(v_tb)).collect();
    // Start/end in seconds as exact rationals (sec = pts * tb).
    let t0 = (p0 - v_start) as f64 * f64::from(v_tb);
    let t1 = (p1 - v_start) as f64 * f64::from(v_tb);
    let mut video_done = false;
    let mut audio_done: Vec<bool> = maps.iter().map(|m| !matches!(m, Some(m) if m.kind == ff::media::Type::Audio)).collect();
    for (stream, mut packet) in ictx.packets() {
        let i = stream.index();
        let Some(Some(m)) = maps.get(i) else { continue };
        let Some(pts) = packet.pts().or(packet.dts()) else { continue };
        if i == vidx {
            if pts >= p1 {
                video_done = true;
            } else if pts >= p0 {
                let rel = pts - p0;
                packet.set_pts(Some(rel));
                packet.set_dts(Some(rel));
                packet.rescale_ts(m.in_tb, out_tbs[m.out_index]);
                packet.set_position(-1);
                packet.set_stream(m.out_index);
                packet.write_interleaved(&mut octx).map_err(|e| format!("writing video: {e}"))?;
            }
        } else if let Some((block, sr)) = m.pcm_block {
            // PCM: keep exactly samples [floor(t0*sr), floor(t1*sr)) of the stream's clock.
            let start_t = pts as f64 * f64::from(m.in_tb);
            let s_pkt = (start_t * sr as f64).round() as i64;
            let n = packet.size() / block.max(1);
            let (s0, s1) = ((t0 * sr as f64).floor() as i64, (t1 * sr as f64).floor() as i64);
            if s_pkt >= s1 {
                audio_done[i] = true;
                continue;
            }
            let a = (s0 - s_pkt).clamp(0, n as i64) as usize;
            let b = (s1 - s_pkt).clamp(0, n as i64) as usize;
            if b <= a {
                continue;
            }
            let data = packet.data().map(|d| d[a * block..b * block].to_vec()).unwrap_or_default();
            let mut p = ff::Packet::copy(&data);
            let rel = s_pkt + a as i64 - s0;
            p.set_pts(Some(rel));
            p.set_dts(Some(rel));
            p.rescale_ts(ff::Rational(1, sr), out_tbs[m.out_index]);
            p.set_stream(m.out_index);
            p.write_interleaved(&mut octx).map_err(|e| format!("writing audio: {e}"))?;
        } else {
            let t = pts as f64 * f64::from(m.in_tb);
            if t >= t1 {
                audio_done[i] = true;
            } else if t >= t0 {
                let rel = pts - (t0 / f64::from(m.in_tb)).round() as i64;
                packet.set_pts(Some(rel));
                packet.set_dts(Some(rel));
                packet.rescale_ts(m.in_tb, out_tbs[m.out_index]);
                packet.set_position(-1);
                packet.set_stream(m.out_index);
                packet.write_interleaved(&mut octx).map_err(|e| format!("writing audio: {e}"))?;
            }
        }
        if video_done && audio_done.iter().all(|d| *d) {
            break;
        }
    }
    octx.write_trailer().map_err(|e| format!("finishing the MOV: {e}"))?;
    Ok(())
}
