//! The rungs as sinks: each output (editorial MOV, preview MP4, thumb JPEG,
//! contact sheet) owns its scaler, encoders and muxer and runs on its own
//! thread, fed through a short bounded queue of *shared* decoded pictures
//! (`av_frame_ref`, no copy).
//!
//! Why threads: the decode loop is one thread, and before this split it also
//! scaled and fed every encoder in turn, so one slow rung (the preview's
//! scaler, the ProRes encoder's submit) stalled the others and the decoder. A
//! queue per rung lets the decode run ahead and every rung use a core; the
//! bounded depth is the back-pressure that keeps memory flat (at most `DEPTH`
//! pictures per rung held beyond the decoder's own pool).

use super::encode::{
    encode_jpeg, encode_thumb, has_alpha, luma_is_black, share_audio, share_video, video_encoder, write_video_packets, AudioRung,
    ColourTags, CopyRoute, VideoRung,
};
use super::{editorial_size, fail, fit, ratio, ProxyError, Rung};
use crossbeam_channel::{bounded, Sender};
use ff::ffi;
use ffmpeg_next as ff;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The files a rung wrote.
pub(super) type RungFiles = Vec<(Rung, PathBuf)>;

/// Pictures queued per rung.
const DEPTH: usize = 6;

/// What the decoder knows about the picture, for every rung's set-up.
pub(super) struct VideoFacts {
    pub w: u32,
    pub h: u32,
    pub sar: ff::Rational,
    pub pix: ff::format::Pixel,
    /// Colour description the Y'CbCr outputs are tagged with.
    pub colour: ColourTags,
    pub rate: ff::Rational,
    pub timecode: Option<String>,
    pub reel: Option<String>,
    /// Frames the source should have (0: unknown), for the thumb and sheet.
    pub expected_frames: u64,
    /// Written into the movie proxies' metadata (`comment`): how the rate was
    /// chosen when it was not the source's own (a VFR conform, a header
    /// without a rate), so the file itself says so.
    pub comment: Option<String>,
}

fn set_comment(octx: &mut ff::format::context::Output, v: &VideoFacts) {
    if let Some(c) = &v.comment {
        let mut md = ff::Dictionary::new();
        md.set("comment", c);
        octx.set_metadata(md);
    }
}

/// One audio track of the source.
pub(super) struct AudioTrack {
    pub idx: usize,
    /// Interleaved PCM: copied packet for packet into the editorial.
    pub pcm: bool,
    pub channels: i32,
    pub rate: i32,
    pub bits: i32,
    pub tb: ff::Rational,
    pub start: i64,
    pub params: ff::codec::Parameters,
    /// The opened decoder's sample format (None: the track is not decoded).
    pub dec_fmt: Option<ffi::AVSampleFormat>,
}

pub(super) enum Msg {
    Video(i64, ff::frame::Video),
    AudioPacket(usize, ff::Packet),
    AudioFrame(usize, ff::frame::Audio),
}

/// A rung's output. Methods run on the sink's own thread.
pub(super) trait Sink: Send {
    /// Picture `k` of the output (k counts from 0, one per output frame).
    fn video(&mut self, k: i64, f: ff::frame::Video) -> Result<(), ProxyError>;
    fn audio_packet(&mut self, _si: usize, _p: ff::Packet) -> Result<(), ProxyError> {
        Ok(())
    }
    fn audio_frame(&mut self, _si: usize, _f: ff::frame::Audio) -> Result<(), ProxyError> {
        Ok(())
    }
    /// Source audio streams wanted as (raw packets, decoded frames).
    fn audio_inputs(&self) -> (Vec<usize>, Vec<usize>) {
        (Vec::new(), Vec::new())
    }
    /// Flush and close; the files written.
    fn finish(&mut self) -> Result<Vec<(Rung, PathBuf)>, ProxyError>;
}

struct SinkThread {
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<Result<RungFiles, ProxyError>>>,
    packets: Vec<usize>,
    frames: Vec<usize>,
}

impl SinkThread {
    fn join(&mut self) -> Result<Vec<(Rung, PathBuf)>, ProxyError> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|_| Err(ProxyError::Failed("a proxy encoder thread panicked".into()))),
            None => Ok(Vec::new()),
        }
    }

    fn send(&mut self, m: Msg) -> Result<(), ProxyError> {
        let Some(tx) = &self.tx else { return Ok(()) };
        if tx.send(m).is_err() {
            // The sink stopped on an error: report that error.
            return match self.join() {
                Err(e) => Err(e),
                Ok(_) => Err(ProxyError::Failed("a proxy encoder stopped early".into())),
            };
        }
        Ok(())
    }
}

/// Every rung's thread, fed from the decode loop.
pub(super) struct Fanout {
    sinks: Vec<SinkThread>,
    abort: Arc<AtomicBool>,
    pub frames_out: u64,
    frames_done: Arc<AtomicU64>,
}

impl Fanout {
    pub fn new(sinks: Vec<Box<dyn Sink>>, frames_done: Arc<AtomicU64>) -> Result<Fanout, ProxyError> {
        let abort = Arc::new(AtomicBool::new(false));
        let mut out = Fanout { sinks: Vec::new(), abort: abort.clone(), frames_out: 0, frames_done };
        for mut sink in sinks {
            let (packets, frames) = sink.audio_inputs();
            let (tx, rx) = bounded::<Msg>(DEPTH);
            let abort = abort.clone();
            let handle = std::thread::Builder::new()
                .name("reelfs-proxy-rung".into())
                .spawn(move || -> Result<Vec<(Rung, PathBuf)>, ProxyError> {
                    for m in rx.iter() {
                        if abort.load(Ordering::Relaxed) {
                            return Err(ProxyError::Interrupted);
                        }
                        match m {
                            Msg::Video(k, f) => sink.video(k, f)?,
                            Msg::AudioPacket(si, p) => sink.audio_packet(si, p)?,
                            Msg::AudioFrame(si, f) => sink.audio_frame(si, f)?,
                        }
                    }
                    if abort.load(Ordering::Relaxed) {
                        return Err(ProxyError::Interrupted);
                    }
                    sink.finish()
                })
                .map_err(|e| ProxyError::Failed(format!("cannot start an encoder thread: {e}")))?;
            out.sinks.push(SinkThread { tx: Some(tx), handle: Some(handle), packets, frames });
        }
        Ok(out)
    }

    pub fn video(&mut self, f: &ff::frame::Video) -> Result<(), ProxyError> {
        let k = self.frames_out as i64;
        for s in self.sinks.iter_mut() {
            s.send(Msg::Video(k, share_video(f)))?;
        }
        self.frames_out += 1;
        self.frames_done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn audio_packet(&mut self, si: usize, p: &ff::Packet) -> Result<(), ProxyError> {
        for s in self.sinks.iter_mut().filter(|s| s.packets.contains(&si)) {
            s.send(Msg::AudioPacket(si, p.clone()))?;
        }
        Ok(())
    }

    pub fn audio_frame(&mut self, si: usize, f: &ff::frame::Audio) -> Result<(), ProxyError> {
        for s in self.sinks.iter_mut().filter(|s| s.frames.contains(&si)) {
            s.send(Msg::AudioFrame(si, share_audio(f)))?;
        }
        Ok(())
    }

    /// Close every rung (each flushes its encoders and writes its trailer in
    /// parallel) and collect the files; the first error wins.
    pub fn finish(mut self) -> Result<Vec<(Rung, PathBuf)>, ProxyError> {
        for s in self.sinks.iter_mut() {
            s.tx = None;
        }
        let mut out = Vec::new();
        let mut first_err = None;
        for s in self.sinks.iter_mut() {
            match s.join() {
                Ok(files) => out.extend(files),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

impl Drop for Fanout {
    /// An error or interrupt in the decode loop: stop every rung without
    /// finishing its file (the caller removes the render folder).
    fn drop(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        for s in self.sinks.iter_mut() {
            s.tx = None;
        }
        for s in self.sinks.iter_mut() {
            let _ = s.join();
        }
    }
}

// ---- MOV / MP4 outputs: editorial (ProRes or DNxHR) and preview ----

struct MovieSink {
    rung: Rung,
    octx: ff::format::context::Output,
    path: PathBuf,
    video: VideoRung,
    /// PCM tracks copied packet for packet, by source stream.
    copies: Vec<(usize, CopyRoute)>,
    /// Tracks decoded and encoded (PCM for the editorial, AAC for the preview).
    encs: Vec<(usize, AudioRung)>,
}

impl Sink for MovieSink {
    fn video(&mut self, k: i64, mut f: ff::frame::Video) -> Result<(), ProxyError> {
        let v = &mut self.video;
        v.send(&mut f, k)?;
        let (tb, ost) = (v.tb, v.ost.unwrap_or(0));
        write_video_packets(&mut v.enc, tb, ost, &mut self.octx)
    }

    fn audio_packet(&mut self, si: usize, mut p: ff::Packet) -> Result<(), ProxyError> {
        let Some((_, route)) = self.copies.iter().find(|(i, _)| *i == si) else { return Ok(()) };
        if let Some(pts) = p.pts() {
            p.set_pts(Some(pts - route.start));
        }
        if let Some(dts) = p.dts() {
            p.set_dts(Some(dts - route.start));
        }
        p.set_stream(route.ost);
        p.set_position(-1);
        let otb = self.octx.stream(route.ost).map(|s| s.time_base()).unwrap_or(route.in_tb);
        p.rescale_ts(route.in_tb, otb);
        p.write_interleaved(&mut self.octx).map_err(fail("write audio"))
    }

    fn audio_frame(&mut self, si: usize, f: ff::frame::Audio) -> Result<(), ProxyError> {
        if let Some((_, r)) = self.encs.iter_mut().find(|(i, _)| *i == si) {
            r.push(Some(&f), false, &mut self.octx)?;
        }
        Ok(())
    }

    fn audio_inputs(&self) -> (Vec<usize>, Vec<usize>) {
        (self.copies.iter().map(|c| c.0).collect(), self.encs.iter().map(|e| e.0).collect())
    }

    fn finish(&mut self) -> Result<Vec<(Rung, PathBuf)>, ProxyError> {
        for (_, r) in self.encs.iter_mut() {
            r.push(None, true, &mut self.octx)?;
        }
        let v = &mut self.video;
        v.enc.send_eof().map_err(fail("video encoder"))?;
        let (tb, ost) = (v.tb, v.ost.unwrap_or(0));
        write_video_packets(&mut v.enc, tb, ost, &mut self.octx)?;
        self.octx.write_trailer().map_err(fail("write trailer"))?;
        Ok(vec![(self.rung, self.path.clone())])
    }
}

fn rate_tb(rate: ff::Rational) -> ff::Rational {
    ff::Rational(rate.denominator(), rate.numerator())
}

/// Add the rung's video stream to its muxer: the encoder's parameters, one
/// tick per frame, the rate, and stream metadata. Its index.
fn add_video_stream(
    octx: &mut ff::format::context::Output,
    codec: ff::Codec,
    enc: &ff::encoder::video::Encoder,
    rate: ff::Rational,
    md: ff::Dictionary,
) -> Result<usize, ff::Error> {
    let mut st = octx.add_stream(codec)?;
    st.set_parameters(enc);
    st.set_time_base(rate_tb(rate));
    st.set_avg_frame_rate(rate);
    st.set_rate(rate);
    st.set_metadata(md);
    Ok(st.index())
}

/// The editorial rung: ProRes 422 Proxy (ProRes 4444 when the source has
/// alpha), or DNxHR LB for `Rung::EditorialDnxhr`; MOV with the source's rate,
/// a tmcd track with its start timecode and reel, every audio track as PCM.
pub(super) fn editorial(
    rung: Rung,
    out_dir: &Path,
    v: &VideoFacts,
    audio: &[AudioTrack],
    threads: usize,
) -> Result<Box<dyn Sink>, ProxyError> {
    let path = out_dir.join(format!("{}.mov", rung.name()));
    let mut octx = ff::format::output_as(&path, "mov").map_err(fail("editorial output"))?;
    let (w, h) = editorial_size(v.w, v.h);
    let alpha = has_alpha(v.pix);
    let (enc, codec, fmt) = if rung == Rung::EditorialDnxhr {
        let fmt = ff::format::Pixel::YUV422P;
        let (enc, codec) = video_encoder("dnxhd", w, h, fmt, v.rate, v.sar, Some(&v.colour), threads, false, &[], |p| {
            // SAFETY: the dnxhd encoder's private `profile` option on an unopened context.
            unsafe { ffi::av_opt_set((*p).priv_data, c"profile".as_ptr(), c"dnxhr_lb".as_ptr(), 0) };
        })?;
        (enc, codec, fmt)
    } else {
        let (fmt, profile) = if alpha { (ff::format::Pixel::YUVA444P10LE, 4) } else { (ff::format::Pixel::YUV422P10LE, 0) };
        let (enc, codec) =
            video_encoder("prores", w, h, fmt, v.rate, v.sar, Some(&v.colour), threads, false, &[("vendor", "apl0".into())], |p| {
                // SAFETY: profile 0 is ProRes 422 Proxy (apco), 4 is ProRes 4444 (ap4h).
                unsafe { (*p).profile = profile };
            })?;
        (enc, codec, fmt)
    };
    let tb = rate_tb(v.rate);
    // The start timecode and reel become the MOV's tmcd track.
    let mut md = ff::Dictionary::new();
    if let Some(tc) = &v.timecode {
        md.set("timecode", tc);
    }
    if let Some(r) = &v.reel {
        md.set("reel_name", r);
    }
    let ost = add_video_stream(&mut octx, codec, &enc, v.rate, md).map_err(fail("editorial stream"))?;
    let mut copies = Vec::new();
    let mut encs = Vec::new();
    for a in audio {
        if a.pcm {
            let mut st = octx.add_stream(ff::encoder::find(a.params.id())).map_err(fail("editorial audio stream"))?;
            st.set_parameters(a.params.clone());
            // SAFETY: let the muxer choose the tag for the codec (in24, sowt, ...).
            unsafe { (*st.parameters().as_mut_ptr()).codec_tag = 0 };
            st.set_time_base(ff::Rational(1, a.rate.max(1)));
            copies.push((a.idx, CopyRoute { ost: st.index(), in_tb: a.tb, start: a.start }));
        } else if let Some(in_fmt) = a.dec_fmt {
            // Compressed tracks are decoded and kept as PCM at the source's depth.
            let (codec, out_fmt) = if a.bits > 0
                && a.bits <= 16
                && matches!(in_fmt, ffi::AVSampleFormat::AV_SAMPLE_FMT_S16 | ffi::AVSampleFormat::AV_SAMPLE_FMT_S16P)
            {
                ("pcm_s16le", ffi::AVSampleFormat::AV_SAMPLE_FMT_S16)
            } else {
                ("pcm_s24le", ffi::AVSampleFormat::AV_SAMPLE_FMT_S32)
            };
            encs.push((a.idx, AudioRung::new(&mut octx, codec, in_fmt, a.channels, a.rate, out_fmt, a.channels, a.rate, 0)?));
        }
    }
    set_comment(&mut octx, v);
    octx.write_header().map_err(fail("editorial header"))?;
    let mut scaled = ff::frame::Video::new(fmt, w, h);
    scaled.set_color_range(v.colour.range);
    let video = VideoRung::muxed(enc, w, h, fmt, scaled, tb, ost, v.colour);
    Ok(Box::new(MovieSink { rung, octx, path, video, copies, encs }))
}

/// How one H.264 fragmented-MP4 rung differs from the others. Everything
/// else (fixed 2 s GOP without scene cuts, AAC stereo from the first audio
/// track, fragment at every keyframe) is the same for all of them, which is
/// what lets an HLS player switch rungs at any segment boundary.
struct PreviewSpec {
    /// The box the picture is fitted into (aspect kept, never upscaled).
    fit: (u32, u32),
    crf: u32,
    /// x264's VBV cap in kbit/s (maxrate = buffer: no second of video
    /// exceeds the rate by more than one buffer), None: quality alone.
    vbv_kbps: Option<u32>,
    audio_bps: usize,
    /// VP9 (libvpx) instead of H.264 (x264).
    vp9: bool,
}

impl PreviewSpec {
    fn of(rung: Rung) -> PreviewSpec {
        match rung {
            // 600 + 96 kbit/s: with the one-second VBV buffer, even the worst
            // 2 s segment stays under 1 Mb/s.
            Rung::PreviewLow => PreviewSpec { fit: (640, 360), crf: 23, vbv_kbps: Some(600), audio_bps: 96_000, vp9: false },
            Rung::PreviewHigh => PreviewSpec { fit: (1920, 1080), crf: 21, vbv_kbps: Some(8000), audio_bps: 160_000, vp9: false },
            // The low rung's picture, rate cap and audio, in VP9 (crf is
            // libvpx's scale, 0-63: 36 gives about x264's 23 at this size).
            Rung::PreviewLowVp9 => PreviewSpec { fit: (640, 360), crf: 36, vbv_kbps: Some(600), audio_bps: 96_000, vp9: true },
            // The 540p preview as it always was (settings version 1).
            _ => PreviewSpec { fit: (960, 540), crf: 23, vbv_kbps: None, audio_bps: 128_000, vp9: false },
        }
    }
}

/// A preview rung (`preview`, `preview-low`, `preview-high`: H.264;
/// `preview-low-vp9`: VP9) in fragmented MP4 with a fixed 2 s GOP, AAC stereo
/// from the first audio track.
pub(super) fn preview(
    rung: Rung,
    out_dir: &Path,
    v: &VideoFacts,
    audio: &[AudioTrack],
    threads: usize,
) -> Result<Box<dyn Sink>, ProxyError> {
    let spec = PreviewSpec::of(rung);
    let path = out_dir.join(format!("{}.mp4", rung.name()));
    let mut octx = ff::format::output_as(&path, "mp4").map_err(fail("preview output"))?;
    let gh = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
    let (w, h) = fit(v.w, v.h, v.sar, spec.fit.0, spec.fit.1);
    let fmt = ff::format::Pixel::YUV420P;
    let gop = (ratio(v.rate) * 2.0).round().max(1.0) as u32;
    // Closed GOPs: FFmpeg's libx264 wrapper turns x264's open GOP on unless
    // told otherwise, and then the B-frames just before each keyframe are
    // decoded after it, from the GOP before: a fragment (an HLS segment) would
    // not decode on its own, nor after a segment of another rung.
    let colour = ColourTags { range: ff::color::Range::MPEG, ..v.colour };
    let (enc, codec) = if spec.vp9 {
        vp9_encoder(&spec, w, h, fmt, v.rate, &colour, gop, threads, gh)?
    } else {
        let mut x264 = format!("keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0");
        if let Some(k) = spec.vbv_kbps {
            x264.push_str(&format!(":vbv-maxrate={k}:vbv-bufsize={k}"));
        }
        video_encoder(
            "libx264",
            w,
            h,
            fmt,
            v.rate,
            ff::Rational(1, 1),
            Some(&colour),
            threads,
            gh,
            &[("preset", "veryfast".into()), ("crf", spec.crf.to_string()), ("x264-params", x264)],
            |p| unsafe {
                // SAFETY: plain field writes on an unopened context.
                (*p).gop_size = gop as i32;
                (*p).keyint_min = gop as i32;
            },
        )?
    };
    let tb = rate_tb(v.rate);
    let ost = add_video_stream(&mut octx, codec, &enc, v.rate, ff::Dictionary::new()).map_err(fail("preview stream"))?;
    let mut encs = Vec::new();
    if let Some((a, in_fmt)) = audio.first().and_then(|a| a.dec_fmt.map(|f| (a, f))) {
        let out_rate = if a.rate == 44100 { 44100 } else { 48000 };
        encs.push((
            a.idx,
            AudioRung::new(
                &mut octx,
                "aac",
                in_fmt,
                a.channels,
                a.rate,
                ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                2,
                out_rate,
                spec.audio_bps,
            )?,
        ));
    }
    set_comment(&mut octx, v);
    let mut hd = ff::Dictionary::new();
    hd.set("movflags", "frag_keyframe+empty_moov+default_base_moof");
    octx.write_header_with(hd).map_err(fail("preview header"))?;
    let scaled = ff::frame::Video::new(fmt, w, h);
    let video = VideoRung::muxed(enc, w, h, fmt, scaled, tb, ost, v.colour);
    Ok(Box::new(MovieSink { rung, octx, path, video, copies: Vec::new(), encs }))
}

/// libvpx's VP9 for `preview-low-vp9`. Realtime speed: this rung is an
/// extra encode beside the ladder's, and at 360p the quality gap to
/// libvpx's "good" deadline costs more time than it gives picture. Realtime
/// also makes no alt-ref (hidden) frames, so every sample is a shown frame,
/// as the HLS fragment index counts them. Keyframes exactly every `gop`
/// frames (min = max distance): VP9 keyframes are closed, so each fragment
/// decodes on its own and starts at the same frame as the H.264 rungs'.
#[allow(clippy::too_many_arguments)]
fn vp9_encoder(
    spec: &PreviewSpec,
    w: u32,
    h: u32,
    fmt: ff::format::Pixel,
    rate: ff::Rational,
    colour: &ColourTags,
    gop: u32,
    threads: usize,
    gh: bool,
) -> Result<(ff::encoder::video::Encoder, ff::Codec), ProxyError> {
    let kbps = spec.vbv_kbps.unwrap_or(600) as i64;
    video_encoder(
        "libvpx-vp9",
        w,
        h,
        fmt,
        rate,
        ff::Rational(1, 1),
        Some(colour),
        threads,
        gh,
        &[("deadline", "realtime".into()), ("cpu-used", "8".into()), ("row-mt", "1".into()), ("crf", spec.crf.to_string())],
        |p| unsafe {
            // SAFETY: plain field writes on an unopened context. With crf
            // and a bit rate, libvpx runs constrained quality capped at it.
            (*p).gop_size = gop as i32;
            (*p).keyint_min = gop as i32;
            (*p).bit_rate = kbps * 1000;
            (*p).rc_max_rate = kbps * 1000;
            (*p).rc_buffer_size = (kbps * 1000) as i32;
        },
    )
}

pub(super) fn jpeg_encoder(w: u32, h: u32, rate: ff::Rational) -> Result<ff::encoder::video::Encoder, ProxyError> {
    let (enc, _) = video_encoder("mjpeg", w, h, ff::format::Pixel::YUVJ420P, rate, ff::Rational(1, 1), None, 1, false, &[], |p| unsafe {
        // SAFETY: fixed quantiser (qscale 3) on an unopened context.
        (*p).flags |= ffi::AV_CODEC_FLAG_QSCALE as i32;
        (*p).global_quality = 3 * ffi::FF_QP2LAMBDA;
        (*p).color_range = ffi::AVColorRange::AVCOL_RANGE_JPEG;
    })?;
    Ok(enc)
}

fn jpeg_rung(w: u32, h: u32, rate: ff::Rational) -> Result<VideoRung, ProxyError> {
    let fmt = ff::format::Pixel::YUVJ420P;
    Ok(VideoRung {
        enc: jpeg_encoder(w, h, rate)?,
        w,
        h,
        fmt,
        scaler: None,
        scaled: ff::frame::Video::new(fmt, w, h),
        tb: rate_tb(rate),
        ost: None,
        always_scale: true,
        tags: None,
        box_plan: None,
        box_acc: Vec::new(),
    })
}

// ---- thumb: the poster frame ----

struct ThumbSink {
    rung: VideoRung,
    target: i64,
    done: bool,
    last: Option<ff::frame::Video>,
    path: PathBuf,
}

/// A JPEG poster frame 320 px wide, a third of the way in: the first picture
/// from there on that is not black (the last picture if every one is).
pub(super) fn thumb(out_dir: &Path, v: &VideoFacts) -> Result<Box<dyn Sink>, ProxyError> {
    let (w, h) = fit(v.w, v.h, v.sar, 320, 100_000);
    Ok(Box::new(ThumbSink {
        rung: jpeg_rung(w, h, v.rate)?,
        target: (v.expected_frames / 3) as i64,
        done: false,
        last: None,
        path: out_dir.join("thumb.jpg"),
    }))
}

impl Sink for ThumbSink {
    fn video(&mut self, k: i64, mut f: ff::frame::Video) -> Result<(), ProxyError> {
        if self.done {
            return Ok(());
        }
        if k >= self.target {
            self.rung.prepare(&mut f, 0)?;
            if !luma_is_black(&self.rung.scaled) {
                encode_thumb(&mut self.rung, &self.path)?;
                self.done = true;
                self.last = None;
                return Ok(());
            }
        }
        self.last = Some(f);
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<(Rung, PathBuf)>, ProxyError> {
        if !self.done {
            if let Some(mut f) = self.last.take() {
                self.rung.prepare(&mut f, 0)?;
                encode_thumb(&mut self.rung, &self.path)?;
                self.done = true;
            }
        }
        Ok(if self.done { vec![(Rung::Thumb, self.path.clone())] } else { Vec::new() })
    }
}

// ---- sheet: a contact sheet of evenly spaced frames ----

/// Tiles across; rows follow from the count.
pub const SHEET_COLUMNS: usize = 5;
/// At most this many tiles (5 x 5).
pub const SHEET_TILES: usize = 25;
const SHEET_TILE_WIDTH: u32 = 240;

struct SheetSink {
    /// Output frame index of each tile, ascending.
    picks: Vec<i64>,
    next: usize,
    tile: VideoRung,
    canvas: ff::frame::Video,
    enc: ff::encoder::video::Encoder,
    placed: usize,
    path: PathBuf,
}

/// The frames a sheet shows: `n` evenly spaced over `total`, each in the middle
/// of its share (never the very first, often black, frame).
pub fn sheet_picks(total: u64, tiles: usize) -> Vec<i64> {
    if total == 0 || tiles == 0 {
        return Vec::new();
    }
    let n = (tiles as u64).min(total);
    (0..n).map(|i| ((2 * i + 1) * total / (2 * n)) as i64).collect()
}

/// A contact sheet: up to 25 frames, evenly spaced, 240 px wide tiles in rows
/// of five, as one JPEG (for browsing a clip at a glance).
pub(super) fn sheet(out_dir: &Path, v: &VideoFacts) -> Result<Box<dyn Sink>, ProxyError> {
    // Unknown length: a tile every 2 s until 25 are placed.
    let picks = if v.expected_frames > 0 {
        sheet_picks(v.expected_frames, SHEET_TILES)
    } else {
        let step = (ratio(v.rate) * 2.0).round().max(1.0) as i64;
        (0..SHEET_TILES as i64).map(|i| i * step).collect()
    };
    let (tw, th) = fit(v.w, v.h, v.sar, SHEET_TILE_WIDTH, 100_000);
    let rows = picks.len().div_ceil(SHEET_COLUMNS).max(1);
    let cols = picks.len().clamp(1, SHEET_COLUMNS);
    let (cw, ch) = (tw * cols as u32, th * rows as u32);
    let fmt = ff::format::Pixel::YUVJ420P;
    let mut canvas = ff::frame::Video::new(fmt, cw, ch);
    canvas.set_color_range(ff::color::Range::JPEG);
    for (plane, val) in [(0usize, 0u8), (1, 128), (2, 128)] {
        canvas.data_mut(plane).fill(val);
    }
    Ok(Box::new(SheetSink {
        picks,
        next: 0,
        tile: jpeg_rung(tw, th, v.rate)?,
        canvas,
        enc: jpeg_encoder(cw, ch, v.rate)?,
        placed: 0,
        path: out_dir.join("sheet.jpg"),
    }))
}

impl SheetSink {
    fn place(&mut self, slot: usize) {
        let (tw, th) = (self.tile.w as usize, self.tile.h as usize);
        let (x0, y0) = ((slot % SHEET_COLUMNS) * tw, (slot / SHEET_COLUMNS) * th);
        for plane in 0..3 {
            let (sx, sy) = if plane == 0 { (1, 1) } else { (2, 2) };
            let (w, h) = (tw / sx, th / sy);
            let (src_stride, dst_stride) = (self.tile.scaled.stride(plane), self.canvas.stride(plane));
            let src = self.tile.scaled.data(plane);
            let dst = self.canvas.data_mut(plane);
            for y in 0..h {
                let d = (y0 / sy + y) * dst_stride + x0 / sx;
                dst[d..d + w].copy_from_slice(&src[y * src_stride..y * src_stride + w]);
            }
        }
    }
}

impl Sink for SheetSink {
    fn video(&mut self, k: i64, mut f: ff::frame::Video) -> Result<(), ProxyError> {
        if self.next >= self.picks.len() || k < self.picks[self.next] {
            return Ok(());
        }
        self.tile.prepare(&mut f, 0)?;
        // One picture may stand for several picks (a short source).
        while self.next < self.picks.len() && self.picks[self.next] <= k {
            self.place(self.next);
            self.next += 1;
            self.placed += 1;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<(Rung, PathBuf)>, ProxyError> {
        if self.placed == 0 {
            return Ok(Vec::new());
        }
        encode_jpeg(&mut self.enc, &mut self.canvas, &self.path)?;
        Ok(vec![(Rung::Sheet, self.path.clone())])
    }
}

/// The sinks for the requested rungs.
pub(super) fn build(
    rungs: &[Rung],
    out_dir: &Path,
    v: &VideoFacts,
    audio: &[AudioTrack],
    threads: usize,
) -> Result<Vec<Box<dyn Sink>>, ProxyError> {
    let mut out = Vec::new();
    for r in rungs {
        out.push(match r {
            Rung::Thumb => thumb(out_dir, v)?,
            Rung::Sheet => sheet(out_dir, v)?,
            Rung::Preview | Rung::PreviewLow | Rung::PreviewHigh | Rung::PreviewLowVp9 => preview(*r, out_dir, v, audio, threads)?,
            Rung::Editorial | Rung::EditorialDnxhr => editorial(*r, out_dir, v, audio, threads)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::sheet_picks;

    #[test]
    fn sheet_picks_are_evenly_spaced_mid_share_frames() {
        // 60 frames, 25 tiles: the middle of each 2.4-frame share.
        let p = sheet_picks(60, 25);
        assert_eq!(p.len(), 25);
        assert_eq!((p[0], p[12], p[24]), (1, 30, 58));
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        // Fewer frames than tiles: every frame once.
        assert_eq!(sheet_picks(3, 25), vec![0, 1, 2]);
        assert!(sheet_picks(0, 25).is_empty());
    }
}
