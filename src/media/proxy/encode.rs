//! Encoding building blocks of the proxy ladder: a scaled-and-encoded picture
//! pipeline per rung (`VideoRung`), audio conversion with a FIFO for fixed
//! frame-size encoders (`AudioRung`), and packet writing.

use super::boxscale;
use super::{fail, ratio, ProxyError};
use ff::ffi;
use ffmpeg_next as ff;
use std::path::Path;

/// A swscale context. FFmpeg's `SwsContext` is not tied to a thread: it is
/// only ever used by the one sink thread that owns it.
pub(super) struct Scaler(ff::software::scaling::Context);

// SAFETY: owned by one sink and used from one thread at a time.
unsafe impl Send for Scaler {}

impl Scaler {
    fn new(sf: ff::format::Pixel, sw: u32, sh: u32, df: ff::format::Pixel, dw: u32, dh: u32) -> Result<Scaler, ProxyError> {
        let mut ctx =
            ff::software::scaling::Context::get(sf, sw, sh, df, dw, dh, ff::software::scaling::Flags::BICUBIC).map_err(fail("scaler"))?;
        let rgb_in = is_rgb(sf);
        if rgb_in && !is_rgb(df) {
            // RGB sources (DPX, EXR, TIFF) become Rec. 709 Y'CbCr, and are
            // tagged so; swscale's default matrix would be BT.601.
            let full_out = matches!(df, ff::format::Pixel::YUVJ420P | ff::format::Pixel::YUVJ422P | ff::format::Pixel::YUVJ444P);
            // SAFETY: a valid context; coefficient tables are static.
            unsafe {
                let t = ffi::sws_getCoefficients(ffi::SWS_CS_ITU709);
                ffi::sws_setColorspaceDetails(ctx.as_mut_ptr(), t, 1, t, full_out as i32, 0, 1 << 16, 1 << 16);
            }
        }
        Ok(Scaler(ctx))
    }
}

/// True for RGB(A) pixel formats (packed or planar, any depth).
pub(super) fn is_rgb(p: ff::format::Pixel) -> bool {
    // SAFETY: descriptor lookup for a valid pixel format.
    unsafe {
        let d = ffi::av_pix_fmt_desc_get(p.into());
        !d.is_null() && ((*d).flags & ffi::AV_PIX_FMT_FLAG_RGB as u64) != 0
    }
}

/// True when the pixel format carries an alpha plane.
pub(super) fn has_alpha(p: ff::format::Pixel) -> bool {
    // SAFETY: descriptor lookup for a valid pixel format.
    unsafe {
        let d = ffi::av_pix_fmt_desc_get(p.into());
        !d.is_null() && ((*d).flags & ffi::AV_PIX_FMT_FLAG_ALPHA as u64) != 0
    }
}

/// A second reference to a decoded picture (shares its buffers, no copy): each
/// sink thread gets its own.
pub(super) fn share_video(f: &ff::frame::Video) -> ff::frame::Video {
    let mut n = ff::frame::Video::empty();
    // SAFETY: av_frame_ref into an empty frame; both keep their own reference.
    unsafe { ffi::av_frame_ref(n.as_mut_ptr(), f.as_ptr()) };
    n
}

pub(super) fn share_audio(f: &ff::frame::Audio) -> ff::frame::Audio {
    let mut n = ff::frame::Audio::empty();
    // SAFETY: as share_video.
    unsafe { ffi::av_frame_ref(n.as_mut_ptr(), f.as_ptr()) };
    n
}

/// A picture pipeline for one rung: scale (when needed) and encode.
/// A source picture's format, size and range: what a scaling plan depends on.
pub(super) type PictureKey = (ff::format::Pixel, u32, u32, ff::color::Range);

pub(super) struct VideoRung {
    pub(super) enc: ff::encoder::video::Encoder,
    pub(super) w: u32,
    pub(super) h: u32,
    pub(super) fmt: ff::format::Pixel,
    pub(super) scaler: Option<(ff::format::Pixel, u32, u32, Scaler)>,
    pub(super) scaled: ff::frame::Video,
    pub(super) tb: ff::Rational,
    /// Output stream index in its muxer (None: the thumb, written as a file).
    pub(super) ost: Option<usize>,
    /// Always scale into `scaled` (the thumb encodes from there).
    pub(super) always_scale: bool,
    /// Colour tags of the output pictures (None: the source's).
    pub(super) tags: Option<ColourTags>,
    /// The box-downscale plan for the last source format (None inside: swscale).
    pub(super) box_plan: Option<(PictureKey, Option<boxscale::BoxPlan>)>,
    pub(super) box_acc: Vec<u16>,
}

impl VideoRung {
    /// A rung written into a muxer's stream `ost`, pictures tagged `colour`
    /// (the editorial and preview movies; the thumb is built apart).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn muxed(
        enc: ff::encoder::video::Encoder,
        w: u32,
        h: u32,
        fmt: ff::format::Pixel,
        scaled: ff::frame::Video,
        tb: ff::Rational,
        ost: usize,
        colour: ColourTags,
    ) -> VideoRung {
        VideoRung {
            enc,
            w,
            h,
            fmt,
            scaler: None,
            scaled,
            tb,
            ost: Some(ost),
            always_scale: false,
            tags: Some(colour),
            box_plan: None,
            box_acc: Vec::new(),
        }
    }

    /// Scale (unless the decoded picture already fits) into `scaled`; true when
    /// the decoded picture is to be used as is.
    pub(super) fn prepare(&mut self, src: &mut ff::frame::Video, pts: i64) -> Result<bool, ProxyError> {
        if !self.always_scale && src.format() == self.fmt && src.width() == self.w && src.height() == self.h {
            src.set_pts(Some(pts));
            src.set_kind(ff::picture::Type::None);
            return Ok(true);
        }
        // A frame-threaded encoder (prores) keeps a reference to the pictures it
        // was sent and reads them later: never scale into a buffer it still holds.
        // SAFETY: a query on a valid frame.
        if unsafe { ffi::av_frame_is_writable(self.scaled.as_mut_ptr()) } == 0 {
            let range = self.scaled.color_range();
            self.scaled = ff::frame::Video::new(self.fmt, self.w, self.h);
            self.scaled.set_color_range(range);
        }
        let key = (src.format(), src.width(), src.height(), src.color_range());
        if self.box_plan.as_ref().map(|b| b.0 != key).unwrap_or(true) {
            self.box_plan = Some((key, boxscale::plan(key.0, key.1, key.2, key.3, self.fmt, self.w, self.h)));
        }
        let boxed = match self.box_plan.as_ref().and_then(|b| b.1) {
            Some(plan) => boxscale::run(&plan, src, &mut self.scaled, &mut self.box_acc),
            None => false,
        };
        if !boxed {
            if self.scaler.as_ref().map(|s| (s.0, s.1, s.2) != (key.0, key.1, key.2)).unwrap_or(true) {
                self.scaler = Some((key.0, key.1, key.2, Scaler::new(key.0, key.1, key.2, self.fmt, self.w, self.h)?));
            }
            let (_, _, _, ctx) = self.scaler.as_mut().ok_or_else(|| ProxyError::Failed("internal: no scaler".into()))?;
            ctx.0.run(src, &mut self.scaled).map_err(fail("scale"))?;
        }
        self.scaled.set_pts(Some(pts));
        self.scaled.set_kind(ff::picture::Type::None);
        // The picture carries the colour description the encoder is told
        // about (ProRes writes its frame header from the picture's tags, and
        // an RGB source's `gbr` must not reach a Y'CbCr output).
        let (p, t, sp) = match &self.tags {
            Some(c) => (c.primaries, c.trc, c.space),
            None => (src.color_primaries(), src.color_transfer_characteristic(), src.color_space()),
        };
        self.scaled.set_color_primaries(p);
        self.scaled.set_color_transfer_characteristic(t);
        self.scaled.set_color_space(sp);
        Ok(false)
    }

    /// Scale as needed and send the picture to the encoder.
    pub(super) fn send(&mut self, src: &mut ff::frame::Video, pts: i64) -> Result<(), ProxyError> {
        let pic: &ff::frame::Video = if self.prepare(src, pts)? { src } else { &self.scaled };
        self.enc.send_frame(pic).map_err(fail("video encoder"))
    }
}

#[derive(Clone, Copy)]
pub(super) struct ColourTags {
    pub(super) primaries: ff::color::Primaries,
    pub(super) trc: ff::color::TransferCharacteristic,
    pub(super) space: ff::color::Space,
    pub(super) range: ff::color::Range,
}

impl ColourTags {
    /// The tags of Y'CbCr proxies of a source with these tags: an RGB source
    /// is converted with the Rec. 709 matrix (see `Scaler`) into limited range,
    /// and is tagged so; unknown transfer codes become unspecified.
    pub(super) fn for_yuv_output(self, rgb_source: bool) -> ColourTags {
        use ff::color::{Primaries, Range, Space, TransferCharacteristic as Trc};
        let trc = match self.trc {
            Trc::Reserved | Trc::Reserved0 => Trc::Unspecified,
            t => t,
        };
        if !rgb_source {
            return ColourTags { trc, ..self };
        }
        let primaries = if self.primaries == Primaries::Unspecified || self.primaries == Primaries::Reserved {
            Primaries::BT709
        } else {
            self.primaries
        };
        ColourTags { primaries, trc, space: Space::BT709, range: Range::MPEG }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn video_encoder(
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
pub(super) struct AudioRung {
    pub(super) enc: ff::encoder::audio::Encoder,
    swr: *mut ffi::SwrContext,
    out_fmt: ffi::AVSampleFormat,
    channels: i32,
    rate: i32,
    bytes_per_sample: usize,
    planar: bool,
    fifo: Vec<Vec<u8>>,
    frame_size: usize,
    next_pts: i64,
    pub(super) ost: usize,
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
    pub(super) fn new(
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
        let codec =
            ff::encoder::find_by_name(codec_name).ok_or_else(|| ProxyError::Failed(format!("this FFmpeg has no {codec_name} encoder")))?;
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
    pub(super) fn push(
        &mut self,
        frame: Option<&ff::frame::Audio>,
        last: bool,
        octx: &mut ff::format::context::Output,
    ) -> Result<(), ProxyError> {
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
pub(super) struct CopyRoute {
    pub(super) ost: usize,
    pub(super) in_tb: ff::Rational,
    pub(super) start: i64,
}

pub(super) fn write_video_packets(
    enc: &mut ff::encoder::video::Encoder,
    tb: ff::Rational,
    ost: usize,
    octx: &mut ff::format::context::Output,
) -> Result<(), ProxyError> {
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

pub(super) fn luma_is_black(f: &ff::frame::Video) -> bool {
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

/// Encode the thumb rung's prepared (scaled) picture as one JPEG file.
pub(super) fn encode_thumb(t: &mut VideoRung, path: &Path) -> Result<(), ProxyError> {
    encode_jpeg(&mut t.enc, &mut t.scaled, path)
}

/// Encode one picture with a (fresh) MJPEG encoder at the fixed quantiser and
/// write it as a file: the thumb, the sheet, the waveform.
pub(super) fn encode_jpeg(enc: &mut ff::encoder::video::Encoder, pic: &mut ff::frame::Video, path: &Path) -> Result<(), ProxyError> {
    // SAFETY: the frame's quality field carries the fixed quantiser.
    unsafe { (*pic.as_mut_ptr()).quality = 3 * ffi::FF_QP2LAMBDA };
    pic.set_pts(Some(0));
    enc.send_frame(pic).map_err(fail("jpeg encoder"))?;
    enc.send_eof().map_err(fail("jpeg encoder"))?;
    let mut pkt = ff::Packet::empty();
    enc.receive_packet(&mut pkt).map_err(fail("jpeg encoder"))?;
    let data = pkt.data().ok_or_else(|| ProxyError::Failed("jpeg encoder gave no data".into()))?;
    super::write_file(path, data)
}
