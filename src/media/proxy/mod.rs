//! The proxy ladder: one decode of the source feeds every rung.
//!
//! Each decoded picture is scaled once per rung (or passed through untouched when
//! the rung wants the source's size and pixel format) and encoded:
//!
//! - thumb: a JPEG poster frame 320 px wide, a third of the way in (the first
//!   frame from there on that is not black);
//! - preview: H.264 in fragmented MP4 (`frag_keyframe+empty_moov+default_base_moof`,
//!   so it plays from its first bytes), fitting 960x540 with the source's aspect,
//!   a keyframe every ~2 s and nothing else (fixed GOP: a later HLS cut needs no
//!   re-encode), AAC stereo from the first audio track;
//! - editorial: ProRes 422 Proxy in MOV (the `prores` encoder, prores_aw: several
//!   times faster than prores_ks here), at most 1920 wide, the source's rate and
//!   frame count, its start timecode and reel in a tmcd track, colour tags, and
//!   every audio track as PCM at the source's rate and depth (PCM is copied
//!   packet for packet; compressed audio is decoded to 24-bit PCM).
//!
//! Frame N of a video proxy is frame N of the source: output timestamps are the
//! decoded frame's index, never the source's timestamps (a constant-rate source
//! has no dropped or duplicated frames). A variable-rate source is conformed to
//! the nearest standard rate by timestamp, and the choice is noted.
//!
//! The source is read once, through the archive's `BlobReader` (custom AVIO),
//! never copied to a temporary file. Outputs go to a folder the caller gives.

use crate::archive::proxies::RenderedProxy;
use crate::archive::BlobReader;
use ff::ffi;
use ffmpeg_next as ff;
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The rungs of the ladder. The settings version is part of a proxy's key:
/// bump it when a rung's output changes, and only that rung renders again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rung {
    Thumb,
    Preview,
    Editorial,
}

impl Rung {
    pub const ALL: [Rung; 3] = [Rung::Thumb, Rung::Preview, Rung::Editorial];

    pub fn name(self) -> &'static str {
        match self {
            Rung::Thumb => "thumb",
            Rung::Preview => "preview",
            Rung::Editorial => "editorial",
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            Rung::Thumb => "jpg",
            Rung::Preview => "mp4",
            Rung::Editorial => "mov",
        }
    }
    pub fn settings_version(self) -> i64 {
        match self {
            Rung::Thumb => 1,
            Rung::Preview => 1,
            Rung::Editorial => 1,
        }
    }
    pub fn parse(s: &str) -> Option<Rung> {
        Rung::ALL.into_iter().find(|r| r.name() == s.trim())
    }
    pub fn from_ext(ext: &str) -> Option<Rung> {
        Rung::ALL.into_iter().find(|r| r.ext() == ext)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Not something a proxy can be made of (not media, no video, a still).
    #[error("{0}")]
    Skip(String),
    #[error("{0}")]
    Failed(String),
    #[error("interrupted")]
    Interrupted,
}

fn fail(what: &str) -> impl Fn(ff::Error) -> ProxyError + '_ {
    move |e| ProxyError::Failed(format!("{what}: {e}"))
}

pub struct RenderOptions {
    pub rungs: Vec<Rung>,
    /// Codec threads (0: FFmpeg's choice, all cores).
    pub threads: usize,
    pub interrupt: Arc<AtomicBool>,
    /// Counts frames rendered, for a progress bar.
    pub frames_done: Arc<AtomicU64>,
}

pub enum Source {
    Path(PathBuf),
    Blob(Arc<BlobReader>),
}

#[derive(Debug, Default, serde::Serialize)]
pub struct RenderStats {
    pub frames: u64,
    pub seconds: f64,
    pub partial_at: Option<i64>,
    pub notes: Vec<String>,
}

/// Why a file gets no proxy, from its probed facts (None: it can have one).
pub fn skip_reason(facts: Option<&Value>, probe_error: Option<&str>) -> Option<String> {
    if let Some(e) = probe_error {
        return Some(format!("not decodable media: {e}"));
    }
    let Some(f) = facts else { return Some("not media".into()) };
    if f["width"].is_null() {
        return Some("no video stream (audio only)".into());
    }
    let still = f["container"].as_str().map(|c| c == "image2" || c.ends_with("_pipe")).unwrap_or(false);
    if still || f["frame_rate"].is_null() {
        return Some("a still image (image sequences are not rendered yet)".into());
    }
    None
}

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// `Read + Seek` over an archived blob, for FFmpeg's custom I/O.
struct BlobStream {
    r: Arc<BlobReader>,
    pos: u64,
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read_at(self.pos, buf).map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobStream {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
            SeekFrom::End(d) => self.r.size as i128 + d as i128,
        };
        if p < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"));
        }
        self.pos = p as u64;
        Ok(self.pos)
    }
}

fn open_input(src: &Source) -> Result<ff::format::context::Input, ProxyError> {
    init();
    let r = match src {
        Source::Path(p) => ff::format::input(p),
        Source::Blob(b) => {
            let io = ff::format::context::StreamIo::from_read_seek_with_capacity(BlobStream { r: b.clone(), pos: 0 }, 1 << 20)
                .map_err(fail("custom I/O"))?;
            ff::format::input_from_stream(io, None, None)
        }
    };
    r.map_err(|e| ProxyError::Skip(format!("FFmpeg cannot open it: {e}")))
}

fn ratio(r: ff::Rational) -> f64 {
    if r.denominator() == 0 {
        0.0
    } else {
        r.numerator() as f64 / r.denominator() as f64
    }
}

const STANDARD_RATES: [(i32, i32); 9] = [(24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1), (60000, 1001), (60, 1)];

/// (rate, note): the source's rate, or for a variable-rate source the standard
/// rate nearest its average, which the proxy is conformed to.
fn pick_rate(st: &ff::format::stream::Stream, vfr: bool) -> (ff::Rational, Option<String>) {
    let avg = st.avg_frame_rate();
    let r = st.rate();
    let base = if ratio(avg) > 0.0 { avg } else { r };
    if !vfr {
        let base = if ratio(base) > 0.0 { base } else { ff::Rational(25, 1) };
        return (base, None);
    }
    let a = ratio(base).max(1.0);
    let (n, d) = STANDARD_RATES
        .into_iter()
        .min_by(|x, y| {
            let dx = ((x.0 as f64 / x.1 as f64) / a).ln().abs();
            let dy = ((y.0 as f64 / y.1 as f64) / a).ln().abs();
            dx.total_cmp(&dy)
        })
        .unwrap_or((25, 1));
    (ff::Rational(n, d), Some(format!("variable frame rate (average {a:.3} fps) conformed to {n}/{d} by timestamp")))
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).max(1) * 2
}

/// The editorial size: the source's, or half of it for UHD/4K/DCI, at most 1920 wide.
fn editorial_size(w: u32, h: u32) -> (u32, u32) {
    if w <= 1920 {
        return (w - w % 2, h - h % 2);
    }
    let s = if w / 2 <= 1920 { 0.5 } else { 1920.0 / w as f64 };
    (even(w as f64 * s), even(h as f64 * s))
}

/// Fit (display aspect) inside a box, never upscaling.
fn fit(w: u32, h: u32, sar: ff::Rational, bw: u32, bh: u32) -> (u32, u32) {
    let sar = if ratio(sar) > 0.0 { ratio(sar) } else { 1.0 };
    let dw = w as f64 * sar;
    let s = (bw as f64 / dw).min(bh as f64 / h as f64).min(1.0);
    (even(dw * s), even(h as f64 * s))
}

/// A picture pipeline for one rung: scale (when needed) and encode.
struct VideoRung {
    enc: ff::encoder::video::Encoder,
    w: u32,
    h: u32,
    fmt: ff::format::Pixel,
    scaler: Option<(ff::format::Pixel, u32, u32, ff::software::scaling::Context)>,
    scaled: ff::frame::Video,
    tb: ff::Rational,
    /// Output stream index in its muxer (None: the thumb, written as a file).
    ost: Option<usize>,
    /// Always scale into `scaled` (the thumb encodes from there).
    always_scale: bool,
}

impl VideoRung {
    /// Scale (unless the decoded picture already fits) into `scaled`; true when
    /// the decoded picture is to be used as is.
    fn prepare(&mut self, src: &mut ff::frame::Video, pts: i64) -> Result<bool, ProxyError> {
        if !self.always_scale && src.format() == self.fmt && src.width() == self.w && src.height() == self.h {
            src.set_pts(Some(pts));
            src.set_kind(ff::picture::Type::None);
            return Ok(true);
        }
        let key = (src.format(), src.width(), src.height());
        if self.scaler.as_ref().map(|s| (s.0, s.1, s.2) != key).unwrap_or(true) {
            let ctx = ff::software::scaling::Context::get(key.0, key.1, key.2, self.fmt, self.w, self.h, ff::software::scaling::Flags::BICUBIC)
                .map_err(fail("scaler"))?;
            self.scaler = Some((key.0, key.1, key.2, ctx));
        }
        // A frame-threaded encoder (prores) keeps a reference to the pictures it
        // was sent and reads them later: never scale into a buffer it still holds.
        // SAFETY: a query on a valid frame.
        if unsafe { ffi::av_frame_is_writable(self.scaled.as_mut_ptr()) } == 0 {
            let range = self.scaled.color_range();
            self.scaled = ff::frame::Video::new(self.fmt, self.w, self.h);
            self.scaled.set_color_range(range);
        }
        let (_, _, _, ctx) = self.scaler.as_mut().ok_or_else(|| ProxyError::Failed("internal: no scaler".into()))?;
        ctx.run(src, &mut self.scaled).map_err(fail("scale"))?;
        self.scaled.set_pts(Some(pts));
        self.scaled.set_kind(ff::picture::Type::None);
        // Carry the colour description the encoder is also told about.
        self.scaled.set_color_primaries(src.color_primaries());
        self.scaled.set_color_transfer_characteristic(src.color_transfer_characteristic());
        self.scaled.set_color_space(src.color_space());
        Ok(false)
    }

    /// Scale as needed and send the picture to the encoder.
    fn send(&mut self, src: &mut ff::frame::Video, pts: i64) -> Result<(), ProxyError> {
        let pic: &ff::frame::Video = if self.prepare(src, pts)? { src } else { &self.scaled };
        self.enc.send_frame(pic).map_err(fail("video encoder"))
    }
}

struct ColourTags {
    primaries: ff::color::Primaries,
    trc: ff::color::TransferCharacteristic,
    space: ff::color::Space,
    range: ff::color::Range,
}

#[allow(clippy::too_many_arguments)]
fn video_encoder(
    name: &str,
    w: u32,
    h: u32,
    fmt: ff::format::Pixel,
    rate: ff::Rational,
    sar: ff::Rational,
    colour: Option<&ColourTags>,
    threads: usize,
    global_header: bool,
    opts: &[(&str, String)],
    setup: impl FnOnce(*mut ffi::AVCodecContext),
) -> Result<(ff::encoder::video::Encoder, ff::Codec), ProxyError> {
    let codec = ff::encoder::find_by_name(name).ok_or_else(|| ProxyError::Failed(format!("this FFmpeg has no {name} encoder")))?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec).encoder().video().map_err(fail(name))?;
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(fmt);
    let tb = ff::Rational(rate.denominator(), rate.numerator());
    enc.set_time_base(tb);
    enc.set_frame_rate(Some(rate));
    if ratio(sar) > 0.0 {
        enc.set_aspect_ratio(sar);
    }
    if let Some(c) = colour {
        enc.set_color_primaries(c.primaries);
        enc.set_color_transfer_characteristic(c.trc);
        enc.set_colorspace(c.space);
        enc.set_color_range(c.range);
    }
    enc.set_threading(ff::codec::threading::Config { kind: ff::codec::threading::Type::Frame, count: threads, ..Default::default() });
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    // SAFETY: a freshly allocated, not yet opened codec context.
    setup(unsafe { enc.as_mut_ptr() });
    let mut d = ff::Dictionary::new();
    for (k, v) in opts {
        d.set(k, v);
    }
    let opened = enc.open_as_with(codec, d).map_err(fail(name))?;
    Ok((opened, codec))
}

/// Sample-format conversion (and channel remix / rate change) through
/// libswresample, with a FIFO so encoders with a fixed frame size (AAC) get
/// exactly that many samples per frame.
struct AudioRung {
    enc: ff::encoder::audio::Encoder,
    swr: *mut ffi::SwrContext,
    out_fmt: ffi::AVSampleFormat,
    channels: i32,
    rate: i32,
    bytes_per_sample: usize,
    planar: bool,
    fifo: Vec<Vec<u8>>,
    frame_size: usize,
    next_pts: i64,
    ost: usize,
    in_channels: i32,
}

// SAFETY: the SwrContext is owned by this struct and used from one thread at a time.
unsafe impl Send for AudioRung {}

impl Drop for AudioRung {
    fn drop(&mut self) {
        // SAFETY: allocated by swr_alloc_set_opts2, freed once.
        unsafe { ffi::swr_free(&mut self.swr) };
    }
}

fn default_layout(ch: i32) -> ffi::AVChannelLayout {
    // SAFETY: zeroed is a valid empty layout, filled by av_channel_layout_default.
    unsafe {
        let mut l: ffi::AVChannelLayout = std::mem::zeroed();
        ffi::av_channel_layout_default(&mut l, ch);
        l
    }
}

impl AudioRung {
    #[allow(clippy::too_many_arguments)]
    fn new(
        octx: &mut ff::format::context::Output,
        codec_name: &str,
        in_fmt: ffi::AVSampleFormat,
        in_channels: i32,
        in_rate: i32,
        out_fmt: ffi::AVSampleFormat,
        channels: i32,
        rate: i32,
        bit_rate: usize,
    ) -> Result<AudioRung, ProxyError> {
        let codec = ff::encoder::find_by_name(codec_name).ok_or_else(|| ProxyError::Failed(format!("this FFmpeg has no {codec_name} encoder")))?;
        let global_header = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
        let mut enc = ff::codec::context::Context::new_with_codec(codec).encoder().audio().map_err(fail(codec_name))?;
        // SAFETY: plain field writes on an unopened context; the new channel
        // layout API is what FFmpeg 5.1's encoders read.
        unsafe {
            let p = enc.as_mut_ptr();
            (*p).sample_fmt = out_fmt;
            (*p).sample_rate = rate;
            (*p).ch_layout = default_layout(channels);
            (*p).time_base = ffi::AVRational { num: 1, den: rate };
            if bit_rate > 0 {
                (*p).bit_rate = bit_rate as i64;
            }
            if global_header {
                (*p).flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
            }
        }
        let enc = enc.open_as_with(codec, ff::Dictionary::new()).map_err(fail(codec_name))?;
        let ost = {
            let mut st = octx.add_stream(codec).map_err(fail("add audio stream"))?;
            st.set_parameters(&enc);
            st.set_time_base(ff::Rational(1, rate));
            st.index()
        };
        let mut swr: *mut ffi::SwrContext = std::ptr::null_mut();
        // SAFETY: standard libswresample setup with owned layouts.
        unsafe {
            let mut il = default_layout(in_channels);
            let mut ol = default_layout(channels);
            let rc = ffi::swr_alloc_set_opts2(&mut swr, &mut ol, out_fmt, rate, &mut il, in_fmt, in_rate, 0, std::ptr::null_mut());
            if rc < 0 || swr.is_null() || ffi::swr_init(swr) < 0 {
                ffi::swr_free(&mut swr);
                return Err(ProxyError::Failed("cannot set up audio conversion".into()));
            }
        }
        // SAFETY: name lookups on valid sample formats.
        let (bps, planar) = unsafe { (ffi::av_get_bytes_per_sample(out_fmt) as usize, ffi::av_sample_fmt_is_planar(out_fmt) != 0) };
        let frame_size = enc.frame_size() as usize;
        let planes = if planar { channels as usize } else { 1 };
        Ok(AudioRung {
            enc,
            swr,
            out_fmt,
            channels,
            rate,
            bytes_per_sample: bps,
            planar,
            fifo: vec![Vec::new(); planes],
            frame_size,
            next_pts: 0,
            ost,
            in_channels,
        })
    }

    fn sample_bytes(&self) -> usize {
        if self.planar {
            self.bytes_per_sample
        } else {
            self.bytes_per_sample * self.channels as usize
        }
    }

    fn queued(&self) -> usize {
        self.fifo[0].len() / self.sample_bytes()
    }

    /// Convert `frame` (None: flush the converter) into the FIFO, then encode
    /// whole frames (all that is left when `last`).
    fn push(&mut self, frame: Option<&ff::frame::Audio>, last: bool, octx: &mut ff::format::context::Output) -> Result<(), ProxyError> {
        // SAFETY: swr_convert with input pointers from a decoded frame (or none,
        // to flush) and output buffers sized by swr_get_out_samples.
        unsafe {
            let (inp, n_in) = match frame {
                Some(f) => {
                    let fp = f.as_ptr();
                    if (*fp).ch_layout.nb_channels != self.in_channels {
                        return Err(ProxyError::Failed("audio channel count changed mid-stream".into()));
                    }
                    ((*fp).extended_data as *mut *const u8, (*fp).nb_samples)
                }
                None => (std::ptr::null_mut(), 0),
            };
            let cap = ffi::swr_get_out_samples(self.swr, n_in).max(0) as usize + 32;
            let sb = self.sample_bytes();
            let mut bufs: Vec<Vec<u8>> = (0..self.fifo.len()).map(|_| vec![0u8; cap * sb]).collect();
            let mut ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr()).collect();
            let got = ffi::swr_convert(self.swr, ptrs.as_mut_ptr(), cap as i32, inp, n_in);
            if got < 0 {
                return Err(ProxyError::Failed("audio conversion failed".into()));
            }
            for (q, b) in self.fifo.iter_mut().zip(&bufs) {
                q.extend_from_slice(&b[..got as usize * sb]);
            }
        }
        let fs = if self.frame_size > 0 { self.frame_size } else { 4096 };
        while self.queued() >= fs || (last && self.queued() > 0) {
            let n = self.queued().min(fs);
            self.encode_samples(n, octx)?;
        }
        if last {
            self.enc.send_eof().map_err(fail("audio encoder"))?;
            self.drain(octx)?;
        }
        Ok(())
    }

    fn encode_samples(&mut self, n: usize, octx: &mut ff::format::context::Output) -> Result<(), ProxyError> {
        let mut f = ff::frame::Audio::empty();
        let sb = self.sample_bytes();
        // SAFETY: a fresh frame given format, layout and size, then buffers.
        unsafe {
            let p = f.as_mut_ptr();
            (*p).format = self.out_fmt as i32;
            (*p).nb_samples = n as i32;
            (*p).sample_rate = self.rate;
            (*p).ch_layout = default_layout(self.channels);
            if ffi::av_frame_get_buffer(p, 0) < 0 {
                return Err(ProxyError::Failed("out of memory for an audio frame".into()));
            }
            for (i, q) in self.fifo.iter().enumerate() {
                let dst = *(*p).extended_data.add(i);
                std::ptr::copy_nonoverlapping(q.as_ptr(), dst, n * sb);
            }
            (*p).pts = self.next_pts;
        }
        for q in self.fifo.iter_mut() {
            q.drain(..n * sb);
        }
        self.next_pts += n as i64;
        self.enc.send_frame(&f).map_err(fail("audio encoder"))?;
        self.drain(octx)
    }

    fn drain(&mut self, octx: &mut ff::format::context::Output) -> Result<(), ProxyError> {
        let mut pkt = ff::Packet::empty();
        while self.enc.receive_packet(&mut pkt).is_ok() {
            pkt.set_stream(self.ost);
            let otb = octx.stream(self.ost).map(|s| s.time_base()).unwrap_or(ff::Rational(1, self.rate));
            pkt.rescale_ts(ff::Rational(1, self.rate), otb);
            pkt.write_interleaved(octx).map_err(fail("write audio"))?;
        }
        Ok(())
    }
}

/// An audio track copied packet for packet (PCM into the editorial MOV).
struct CopyRoute {
    ost: usize,
    in_tb: ff::Rational,
    start: i64,
}

struct Muxer {
    octx: ff::format::context::Output,
    path: PathBuf,
    video: VideoRung,
}

fn write_video_packets(enc: &mut ff::encoder::video::Encoder, tb: ff::Rational, ost: usize, octx: &mut ff::format::context::Output) -> Result<(), ProxyError> {
    let mut pkt = ff::Packet::empty();
    while enc.receive_packet(&mut pkt).is_ok() {
        pkt.set_stream(ost);
        if pkt.duration() <= 0 {
            pkt.set_duration(1);
        }
        let otb = octx.stream(ost).map(|s| s.time_base()).unwrap_or(tb);
        pkt.rescale_ts(tb, otb);
        pkt.write_interleaved(octx).map_err(fail("write video"))?;
    }
    Ok(())
}

fn luma_is_black(f: &ff::frame::Video) -> bool {
    let (w, h, stride) = (f.width() as usize, f.height() as usize, f.stride(0));
    let data = f.data(0);
    let (mut sum, mut lo, mut hi) = (0u64, 255u8, 0u8);
    for y in (0..h).step_by(2) {
        for &v in data[y * stride..y * stride + w].iter().step_by(2) {
            sum += v as u64;
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let n = (w.div_ceil(2) * h.div_ceil(2)).max(1) as u64;
    sum / n < 24 && hi.saturating_sub(lo) < 40
}

/// Render the requested rungs of one source into `out_dir`.
pub fn render(src: &Source, facts: &Value, out_dir: &Path, opts: &RenderOptions) -> Result<(Vec<RenderedProxy>, RenderStats), ProxyError> {
    let t0 = std::time::Instant::now();
    let mut ictx = open_input(src)?;
    let vidx = ictx
        .streams()
        .best(ff::media::Type::Video)
        .map(|s| s.index())
        .ok_or_else(|| ProxyError::Skip("no video stream (audio only)".into()))?;
    let vfr = facts["variable_frame_rate"].as_bool().unwrap_or(false);
    let (rate, vfr_note, in_tb, expected, v_start) = {
        let ist = ictx.stream(vidx).ok_or_else(|| ProxyError::Failed("internal: video stream vanished".into()))?;
        let (rate, note) = pick_rate(&ist, vfr);
        (rate, note, ist.time_base(), ist.frames().max(0) as u64, ist.start_time())
    };
    let mut dec = {
        let ist = ictx.stream(vidx).ok_or_else(|| ProxyError::Failed("internal: video stream vanished".into()))?;
        let mut ctx = ff::codec::context::Context::from_parameters(ist.parameters()).map_err(fail("video decoder"))?;
        ctx.set_threading(ff::codec::threading::Config { kind: ff::codec::threading::Type::Frame, count: opts.threads, ..Default::default() });
        ctx.decoder().video().map_err(|e| ProxyError::Skip(format!("cannot decode the video: {e}")))?
    };
    let (sw, sh) = (dec.width(), dec.height());
    if sw == 0 || sh == 0 {
        return Err(ProxyError::Skip("video has no picture size".into()));
    }
    let sar = dec.aspect_ratio();
    let colour = ColourTags {
        primaries: dec.color_primaries(),
        trc: dec.color_transfer_characteristic(),
        space: dec.color_space(),
        range: dec.color_range(),
    };
    let timecode = facts["timecode"].as_str().map(str::to_string);
    let reel = facts["reel"].as_str().map(str::to_string);
    let want = |r: Rung| opts.rungs.contains(&r);
    let threads = opts.threads;

    // Audio streams of the source: (index, codec id, is PCM, channels, rate, time base, start).
    struct AIn {
        idx: usize,
        pcm: bool,
        channels: i32,
        rate: i32,
        bits: i32,
        tb: ff::Rational,
        start: i64,
    }
    let mut ains = Vec::new();
    for st in ictx.streams() {
        if st.parameters().medium() != ff::media::Type::Audio {
            continue;
        }
        // SAFETY: reading codec parameters of an open input stream.
        let raw = unsafe { &*st.parameters().as_ptr() };
        let name = st.parameters().id().name().to_string();
        let start = if st.start_time() == ffi::AV_NOPTS_VALUE { 0 } else { st.start_time() };
        ains.push(AIn {
            idx: st.index(),
            pcm: name.starts_with("pcm_") && !name.contains("planar") && raw.ch_layout.nb_channels > 0,
            channels: raw.ch_layout.nb_channels.max(1),
            rate: raw.sample_rate,
            bits: if raw.bits_per_raw_sample > 0 { raw.bits_per_raw_sample } else { raw.bits_per_coded_sample },
            tb: st.time_base(),
            start,
        });
    }

    let mut rendered: Vec<(Rung, PathBuf)> = Vec::new();

    // ---- editorial: ProRes 422 Proxy MOV, tmcd, PCM ----
    let mut editorial: Option<Muxer> = None;
    let mut ed_copy: Vec<(usize, CopyRoute)> = Vec::new();
    let mut ed_enc: Vec<(usize, AudioRung)> = Vec::new();
    if want(Rung::Editorial) {
        let path = out_dir.join("editorial.mov");
        let mut octx = ff::format::output_as(&path, "mov").map_err(fail("editorial output"))?;
        let (w, h) = editorial_size(sw, sh);
        let fmt = ff::format::Pixel::YUV422P10LE;
        let (enc, codec) = video_encoder("prores", w, h, fmt, rate, sar, Some(&colour), threads, false, &[("vendor", "apl0".into())], |p| {
            // SAFETY: profile 0 is ProRes 422 Proxy (apco).
            unsafe { (*p).profile = 0 };
        })?;
        let tb = ff::Rational(rate.denominator(), rate.numerator());
        let ost = {
            let mut st = octx.add_stream(codec).map_err(fail("editorial stream"))?;
            st.set_parameters(&enc);
            st.set_time_base(tb);
            st.set_avg_frame_rate(rate);
            st.set_rate(rate);
            let mut md = ff::Dictionary::new();
            if let Some(tc) = &timecode {
                md.set("timecode", tc);
            }
            if let Some(r) = &reel {
                md.set("reel_name", r);
            }
            st.set_metadata(md);
            st.index()
        };
        for a in &ains {
            if a.pcm {
                let ist = ictx.stream(a.idx).ok_or_else(|| ProxyError::Failed("internal: audio stream vanished".into()))?;
                let mut st = octx.add_stream(ff::encoder::find(ist.parameters().id())).map_err(fail("editorial audio stream"))?;
                st.set_parameters(ist.parameters());
                // SAFETY: let the muxer choose the tag for the codec (in24, sowt, ...).
                unsafe { (*st.parameters().as_mut_ptr()).codec_tag = 0 };
                st.set_time_base(ff::Rational(1, a.rate.max(1)));
                ed_copy.push((a.idx, CopyRoute { ost: st.index(), in_tb: a.tb, start: a.start }));
            }
            // Compressed tracks are decoded and kept as PCM: set up below, once
            // their decoders say what they produce.
        }
        let mut scaled = ff::frame::Video::new(fmt, w, h);
        scaled.set_color_range(colour.range);
        editorial = Some(Muxer { octx, path, video: VideoRung { enc, w, h, fmt, scaler: None, scaled, tb, ost: Some(ost), always_scale: false } });
    }

    // Audio decoders, for compressed tracks (editorial) and the preview's track.
    let preview_audio = if want(Rung::Preview) { ains.first().map(|a| a.idx) } else { None };
    let mut adecs: std::collections::HashMap<usize, ff::decoder::Audio> = std::collections::HashMap::new();
    for a in &ains {
        let needed = Some(a.idx) == preview_audio || (editorial.is_some() && !a.pcm);
        if !needed {
            continue;
        }
        let ist = ictx.stream(a.idx).ok_or_else(|| ProxyError::Failed("internal: audio stream vanished".into()))?;
        let d = ff::codec::context::Context::from_parameters(ist.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(fail("audio decoder"))?;
        adecs.insert(a.idx, d);
    }
    // Compressed tracks for the editorial need their encoder before the header is
    // written; their decoders' output format is known from the codec parameters.
    if let Some(m) = editorial.as_mut() {
        for a in ains.iter().filter(|a| !a.pcm) {
            let Some(d) = adecs.get(&a.idx) else { continue };
            // SAFETY: reading the opened decoder's sample format.
            let in_fmt = unsafe { (*d.as_ptr()).sample_fmt };
            let (codec, out_fmt) = if a.bits > 0 && a.bits <= 16 && !a.pcm && matches!(in_fmt, ffi::AVSampleFormat::AV_SAMPLE_FMT_S16 | ffi::AVSampleFormat::AV_SAMPLE_FMT_S16P) {
                ("pcm_s16le", ffi::AVSampleFormat::AV_SAMPLE_FMT_S16)
            } else {
                ("pcm_s24le", ffi::AVSampleFormat::AV_SAMPLE_FMT_S32)
            };
            let r = AudioRung::new(&mut m.octx, codec, in_fmt, a.channels, a.rate, out_fmt, a.channels, a.rate, 0)?;
            ed_enc.push((a.idx, r));
        }
        m.octx.write_header().map_err(fail("editorial header"))?;
        rendered.push((Rung::Editorial, m.path.clone()));
    }

    // ---- preview: H.264 fragmented MP4 + AAC stereo ----
    let mut preview: Option<Muxer> = None;
    let mut pv_audio: Option<AudioRung> = None;
    if want(Rung::Preview) {
        let path = out_dir.join("preview.mp4");
        let mut octx = ff::format::output_as(&path, "mp4").map_err(fail("preview output"))?;
        let gh = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
        let (w, h) = fit(sw, sh, sar, 960, 540);
        let fmt = ff::format::Pixel::YUV420P;
        let gop = (ratio(rate) * 2.0).round().max(1.0) as u32;
        let x264 = format!("keyint={gop}:min-keyint={gop}:scenecut=0");
        let (enc, codec) = video_encoder(
            "libx264",
            w,
            h,
            fmt,
            rate,
            ff::Rational(1, 1),
            Some(&ColourTags { range: ff::color::Range::MPEG, ..colour_copy(&colour) }),
            threads,
            gh,
            &[("preset", "veryfast".into()), ("crf", "23".into()), ("x264-params", x264)],
            |p| unsafe {
                // SAFETY: plain field writes on an unopened context.
                (*p).gop_size = gop as i32;
                (*p).keyint_min = gop as i32;
            },
        )?;
        let tb = ff::Rational(rate.denominator(), rate.numerator());
        let ost = {
            let mut st = octx.add_stream(codec).map_err(fail("preview stream"))?;
            st.set_parameters(&enc);
            st.set_time_base(tb);
            st.set_avg_frame_rate(rate);
            st.index()
        };
        if let (Some(ai), Some(d)) = (preview_audio, preview_audio.and_then(|i| adecs.get(&i))) {
            let a = ains.iter().find(|a| a.idx == ai).ok_or_else(|| ProxyError::Failed("internal: audio".into()))?;
            // SAFETY: reading the opened decoder's sample format.
            let in_fmt = unsafe { (*d.as_ptr()).sample_fmt };
            let out_rate = if a.rate == 44100 { 44100 } else { 48000 };
            pv_audio = Some(AudioRung::new(&mut octx, "aac", in_fmt, a.channels, a.rate, ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP, 2, out_rate, 128_000)?);
        }
        let mut hd = ff::Dictionary::new();
        hd.set("movflags", "frag_keyframe+empty_moov+default_base_moof");
        octx.write_header_with(hd).map_err(fail("preview header"))?;
        let scaled = ff::frame::Video::new(fmt, w, h);
        preview = Some(Muxer { octx, path: path.clone(), video: VideoRung { enc, w, h, fmt, scaler: None, scaled, tb, ost: Some(ost), always_scale: false } });
        rendered.push((Rung::Preview, path));
    }

    // ---- thumb: one JPEG ----
    let mut thumb: Option<VideoRung> = None;
    let thumb_target = expected.max(facts["duration_frames"].as_u64().unwrap_or(0)) / 3;
    let mut thumb_done = false;
    let mut last_frame = ff::frame::Video::empty();
    let mut have_last = false;
    if want(Rung::Thumb) {
        let (w, h) = fit(sw, sh, sar, 320, 100_000);
        let fmt = ff::format::Pixel::YUVJ420P;
        let (enc, _) = video_encoder("mjpeg", w, h, fmt, rate, ff::Rational(1, 1), None, 1, false, &[], |p| unsafe {
            // SAFETY: fixed quantiser (qscale 3) on an unopened context.
            (*p).flags |= ffi::AV_CODEC_FLAG_QSCALE as i32;
            (*p).global_quality = 3 * ffi::FF_QP2LAMBDA as i32;
            (*p).color_range = ffi::AVColorRange::AVCOL_RANGE_JPEG;
        })?;
        let tb = ff::Rational(rate.denominator(), rate.numerator());
        thumb = Some(VideoRung { enc, w, h, fmt, scaler: None, scaled: ff::frame::Video::new(fmt, w, h), tb, ost: None, always_scale: true });
    }
    let thumb_path = out_dir.join("thumb.jpg");

    // ---- the one decode ----
    let mut frames_out: u64 = 0;
    let mut damage: Option<(u64, String)> = None;
    let mut video_stopped = false;
    let mut read_errors = 0;
    let mut frame = ff::frame::Video::empty();
    let mut aframe = ff::frame::Audio::empty();
    // VFR conform: the frame waiting for its successor's timestamp.
    let mut pending = ff::frame::Video::empty();
    let mut pending_t: Option<f64> = None;
    let mut notes: Vec<String> = vfr_note.into_iter().collect();

    let emit = |f: &mut ff::frame::Video,
                    frames_out: &mut u64,
                    editorial: &mut Option<Muxer>,
                    preview: &mut Option<Muxer>,
                    thumb: &mut Option<VideoRung>,
                    thumb_done: &mut bool|
     -> Result<(), ProxyError> {
        let k = *frames_out as i64;
        for m in [editorial.as_mut(), preview.as_mut()].into_iter().flatten() {
            let v = &mut m.video;
            v.send(f, k)?;
            let (tb, ost) = (v.tb, v.ost.unwrap_or(0));
            write_video_packets(&mut v.enc, tb, ost, &mut m.octx)?;
        }
        if let Some(t) = thumb.as_mut() {
            if !*thumb_done && *frames_out >= thumb_target {
                t.prepare(f, 0)?;
                if !luma_is_black(&t.scaled) {
                    encode_thumb(t, &thumb_path)?;
                    *thumb_done = true;
                }
            }
        }
        *frames_out += 1;
        opts.frames_done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    };

    let rate_f = ratio(rate);
    let handle_decoded = |f: &mut ff::frame::Video,
                              pending: &mut ff::frame::Video,
                              pending_t: &mut Option<f64>,
                              frames_out: &mut u64,
                              editorial: &mut Option<Muxer>,
                              preview: &mut Option<Muxer>,
                              thumb: &mut Option<VideoRung>,
                              thumb_done: &mut bool|
     -> Result<(), ProxyError> {
        if !vfr {
            return emit(f, frames_out, editorial, preview, thumb, thumb_done);
        }
        let ts = f.timestamp().unwrap_or(0) - if v_start == ffi::AV_NOPTS_VALUE { 0 } else { v_start };
        let t = ts as f64 * ratio(in_tb);
        if pending_t.is_some() {
            // The waiting frame covers every output slot that starts before this one.
            while (*frames_out as f64) / rate_f < t - 0.5 / rate_f {
                emit(pending, frames_out, editorial, preview, thumb, thumb_done)?;
            }
        }
        // SAFETY: move the new picture's reference into `pending`.
        unsafe {
            ffi::av_frame_unref(pending.as_mut_ptr());
            ffi::av_frame_ref(pending.as_mut_ptr(), f.as_ptr());
        }
        *pending_t = Some(t);
        Ok(())
    };

    loop {
        if opts.interrupt.load(Ordering::Relaxed) {
            return Err(ProxyError::Interrupted);
        }
        let mut pkt = ff::Packet::empty();
        match pkt.read(&mut ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => {
                read_errors += 1;
                if damage.is_none() {
                    damage = Some((frames_out, format!("read error: {e}")));
                }
                if read_errors > 32 {
                    break;
                }
                continue;
            }
        }
        let si = pkt.stream();
        if si == vidx {
            if video_stopped {
                continue;
            }
            if pkt.is_corrupt() {
                damage.get_or_insert((frames_out, "a damaged video packet".into()));
                video_stopped = true;
                continue;
            }
            if let Err(e) = dec.send_packet(&pkt) {
                damage.get_or_insert((frames_out, format!("video does not decode: {e}")));
                video_stopped = true;
                continue;
            }
            while dec.receive_frame(&mut frame).is_ok() {
                if frame.is_corrupt() || frame.has_decode_errors() {
                    damage.get_or_insert((frames_out, "a picture decoded with errors".into()));
                    video_stopped = true;
                    break;
                }
                if thumb.is_some() && !thumb_done {
                    // SAFETY: keep a reference to the newest picture (the thumb's fallback).
                    unsafe {
                        ffi::av_frame_unref(last_frame.as_mut_ptr());
                        ffi::av_frame_ref(last_frame.as_mut_ptr(), frame.as_ptr());
                    }
                    have_last = true;
                }
                handle_decoded(&mut frame, &mut pending, &mut pending_t, &mut frames_out, &mut editorial, &mut preview, &mut thumb, &mut thumb_done)?;
            }
            continue;
        }
        // Audio: copy to the editorial, decode for the preview / compressed tracks.
        if let (Some(m), Some((_, route))) = (editorial.as_mut(), ed_copy.iter().find(|(i, _)| *i == si)) {
            let mut p = pkt.clone();
            if let Some(pts) = p.pts() {
                p.set_pts(Some(pts - route.start));
            }
            if let Some(dts) = p.dts() {
                p.set_dts(Some(dts - route.start));
            }
            p.set_stream(route.ost);
            p.set_position(-1);
            let otb = m.octx.stream(route.ost).map(|s| s.time_base()).unwrap_or(route.in_tb);
            p.rescale_ts(route.in_tb, otb);
            p.write_interleaved(&mut m.octx).map_err(fail("write editorial audio"))?;
        }
        if let Some(d) = adecs.get_mut(&si) {
            if d.send_packet(&pkt).is_err() {
                continue; // a damaged audio packet: the track just has a gap
            }
            while d.receive_frame(&mut aframe).is_ok() {
                if let (Some(m), Some((_, r))) = (editorial.as_mut(), ed_enc.iter_mut().find(|(i, _)| *i == si)) {
                    r.push(Some(&aframe), false, &mut m.octx)?;
                }
                if let (Some(m), Some(r), true) = (preview.as_mut(), pv_audio.as_mut(), Some(si) == preview_audio) {
                    r.push(Some(&aframe), false, &mut m.octx)?;
                }
            }
        }
    }

    // ---- flush ----
    if !video_stopped {
        let _ = dec.send_eof();
        while dec.receive_frame(&mut frame).is_ok() {
            if frame.is_corrupt() || frame.has_decode_errors() {
                damage.get_or_insert((frames_out, "a picture decoded with errors".into()));
                break;
            }
            if thumb.is_some() && !thumb_done {
                // SAFETY: as above.
                unsafe {
                    ffi::av_frame_unref(last_frame.as_mut_ptr());
                    ffi::av_frame_ref(last_frame.as_mut_ptr(), frame.as_ptr());
                }
                have_last = true;
            }
            handle_decoded(&mut frame, &mut pending, &mut pending_t, &mut frames_out, &mut editorial, &mut preview, &mut thumb, &mut thumb_done)?;
        }
    }
    if let Some(t) = pending_t {
        // The last picture of a VFR source lasts its own duration (or one slot).
        let dur = {
            // SAFETY: reading the duration of a decoded frame.
            let d = unsafe { (*pending.as_ptr()).pkt_duration };
            if d > 0 {
                d as f64 * ratio(in_tb)
            } else {
                1.0 / rate_f
            }
        };
        let end = t + dur;
        let mut first = true;
        while first || (frames_out as f64) / rate_f < end - 0.5 / rate_f {
            emit(&mut pending, &mut frames_out, &mut editorial, &mut preview, &mut thumb, &mut thumb_done)?;
            first = false;
        }
    }
    if frames_out == 0 {
        return Err(ProxyError::Skip(
            damage.map(|d| format!("no picture decodes ({})", d.1)).unwrap_or_else(|| "no picture decodes".into()),
        ));
    }
    for d in adecs.values_mut() {
        let _ = d.send_eof();
    }
    for (idx, d) in adecs.iter_mut() {
        while d.receive_frame(&mut aframe).is_ok() {
            if let (Some(m), Some((_, r))) = (editorial.as_mut(), ed_enc.iter_mut().find(|(i, _)| i == idx)) {
                r.push(Some(&aframe), false, &mut m.octx)?;
            }
            if let (Some(m), Some(r), true) = (preview.as_mut(), pv_audio.as_mut(), Some(*idx) == preview_audio) {
                r.push(Some(&aframe), false, &mut m.octx)?;
            }
        }
    }
    if let Some(m) = editorial.as_mut() {
        for (_, r) in ed_enc.iter_mut() {
            r.push(None, true, &mut m.octx)?;
        }
    }
    if let (Some(m), Some(r)) = (preview.as_mut(), pv_audio.as_mut()) {
        r.push(None, true, &mut m.octx)?;
    }
    for m in [editorial.as_mut(), preview.as_mut()].into_iter().flatten() {
        let v = &mut m.video;
        v.enc.send_eof().map_err(fail("video encoder"))?;
        let (tb, ost) = (v.tb, v.ost.unwrap_or(0));
        write_video_packets(&mut v.enc, tb, ost, &mut m.octx)?;
        m.octx.write_trailer().map_err(fail("write trailer"))?;
    }
    drop(ed_enc);
    drop(pv_audio);
    drop(editorial);
    drop(preview);
    if let Some(t) = thumb.as_mut() {
        if !thumb_done && have_last {
            t.prepare(&mut last_frame, 0)?;
            encode_thumb(t, &thumb_path)?;
            thumb_done = true;
        }
        if thumb_done {
            rendered.push((Rung::Thumb, thumb_path.clone()));
        }
    }

    let partial_at = match &damage {
        Some((f, why)) => {
            notes.push(format!("partial: source frame {f} and later do not decode ({why})"));
            Some(*f as i64)
        }
        None if expected > 0 && frames_out < expected && !vfr => {
            notes.push(format!("partial: the source ends after {frames_out} of {expected} frames"));
            Some(frames_out as i64)
        }
        None => None,
    };
    let note = notes.join("; ");
    let out = rendered
        .into_iter()
        .map(|(r, path)| RenderedProxy { profile: r.name().into(), settings_version: r.settings_version(), path, partial_at, note: note.clone() })
        .collect();
    Ok((out, RenderStats { frames: frames_out, seconds: t0.elapsed().as_secs_f64(), partial_at, notes }))
}

fn colour_copy(c: &ColourTags) -> ColourTags {
    ColourTags { primaries: c.primaries, trc: c.trc, space: c.space, range: c.range }
}

/// Encode the thumb rung's prepared (scaled) picture as one JPEG file.
fn encode_thumb(t: &mut VideoRung, path: &Path) -> Result<(), ProxyError> {
    // SAFETY: the frame's quality field carries the fixed quantiser.
    unsafe { (*t.scaled.as_mut_ptr()).quality = 3 * ffi::FF_QP2LAMBDA as i32 };
    t.scaled.set_pts(Some(0));
    t.enc.send_frame(&t.scaled).map_err(fail("jpeg encoder"))?;
    t.enc.send_eof().map_err(fail("jpeg encoder"))?;
    let mut pkt = ff::Packet::empty();
    t.enc.receive_packet(&mut pkt).map_err(fail("jpeg encoder"))?;
    let data = pkt.data().ok_or_else(|| ProxyError::Failed("jpeg encoder gave no data".into()))?;
    std::fs::write(path, data).map_err(|e| ProxyError::Failed(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_parse_and_name_their_files() {
        assert_eq!(Rung::parse("editorial"), Some(Rung::Editorial));
        assert_eq!(Rung::parse(" thumb "), Some(Rung::Thumb));
        assert_eq!(Rung::parse("poster"), None);
        assert_eq!(Rung::from_ext("mp4"), Some(Rung::Preview));
        assert_eq!(crate::archive::proxies::proxy_file_name("A001C003.mov", "jpg"), "A001C003.jpg");
        assert_eq!(crate::archive::proxies::proxy_file_name("clip.v2.mxf", "mov"), "clip.v2.mov");
        assert_eq!(crate::archive::proxies::proxy_file_name(".hidden", "mp4"), ".hidden.mp4");
    }

    #[test]
    fn editorial_is_at_most_1920_wide_and_half_for_uhd() {
        assert_eq!(editorial_size(1920, 1080), (1920, 1080));
        assert_eq!(editorial_size(640, 360), (640, 360));
        assert_eq!(editorial_size(3840, 2160), (1920, 1080));
        assert_eq!(editorial_size(4096, 2160), (1920, 1012));
        assert_eq!(editorial_size(2048, 1080), (1024, 540));
        assert_eq!(editorial_size(8192, 4320), (1920, 1012));
    }

    #[test]
    fn preview_and_thumb_fit_keeping_aspect() {
        let sq = ff::Rational(1, 1);
        assert_eq!(fit(1920, 1080, sq, 960, 540), (960, 540));
        assert_eq!(fit(1280, 720, sq, 960, 540), (960, 540));
        assert_eq!(fit(640, 360, sq, 960, 540), (640, 360));
        assert_eq!(fit(4096, 1716, sq, 960, 540), (960, 402));
        assert_eq!(fit(1920, 1080, sq, 320, 100_000), (320, 180));
        // Anamorphic 2x: display aspect 32:9 squeezed into 16:9 storage.
        assert_eq!(fit(1920, 1080, ff::Rational(2, 1), 960, 540), (960, 270));
    }

    #[test]
    fn skip_reasons_from_facts() {
        let v = serde_json::json!({"container": "mov,mp4,m4a,3gp,3g2,mj2", "width": 1920, "frame_rate": "24/1"});
        assert_eq!(skip_reason(Some(&v), None), None);
        assert!(skip_reason(None, None).unwrap().contains("not media"));
        assert!(skip_reason(None, Some("moov atom not found")).unwrap().contains("moov"));
        let wav = serde_json::json!({"container": "wav", "width": null});
        assert!(skip_reason(Some(&wav), None).unwrap().contains("audio only"));
        let dpx = serde_json::json!({"container": "image2", "width": 640, "frame_rate": null});
        assert!(skip_reason(Some(&dpx), None).unwrap().contains("still"));
    }
}
