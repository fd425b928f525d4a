//! Rendering a movie file (MOV, MP4, MXF, …): the one decode.
//!
//! This thread reads packets and decodes the video (and the audio some rung
//! needs); every decoded picture goes, shared, to each rung's thread
//! (`sinks::Fanout`). Output picture k is source frame k for a constant-rate
//! source, placed by its timestamp: a damaged frame holds the last good picture
//! and every later frame keeps its number (`damage`); only a source that is cut
//! short ends early. A variable-rate source is conformed here, by timestamp, so
//! every rung sees the same conformed sequence.

use super::damage::{self, DamageMap};
use super::encode::share_video;
use super::encode::{is_rgb, ColourTags};
use super::sinks::{self, AudioTrack, Fanout, VideoFacts};
use super::{fail, finish_render, open_input, pick_rate, ratio, ProxyError, RenderOptions, RenderStats, Source};
use crate::archive::proxies::RenderedProxy;
use ff::ffi;
use ffmpeg_next as ff;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::Ordering;

pub(super) fn render(
    src: &Source,
    facts: &crate::media::facts::MediaFacts,
    out_dir: &Path,
    opts: &RenderOptions,
) -> Result<(Vec<RenderedProxy>, RenderStats), ProxyError> {
    let t0 = std::time::Instant::now();
    let mut ictx = open_input(src)?;
    let Some(vidx) = ictx.streams().best(ff::media::Type::Video).map(|s| s.index()) else {
        // Audio only: the thumb is a waveform; nothing else applies.
        if opts.rungs.contains(&super::Rung::Thumb) {
            drop(ictx);
            return super::waveform::render(src, out_dir, opts);
        }
        return Err(ProxyError::Skip("no video stream (audio only)".into()));
    };
    let vfr = facts.variable_frame_rate;
    let vanished = || ProxyError::Failed("internal: video stream vanished".into());
    let (rate, vfr_note, in_tb, expected, v_start) = {
        let ist = ictx.stream(vidx).ok_or_else(vanished)?;
        let (rate, note) = pick_rate(&ist, vfr);
        (rate, note, ist.time_base(), ist.frames().max(0) as u64, ist.start_time())
    };
    let mut dec = {
        let ist = ictx.stream(vidx).ok_or_else(vanished)?;
        let mut ctx = ff::codec::context::Context::from_parameters(ist.parameters()).map_err(fail("video decoder"))?;
        // Frame threads make what a long-GOP decoder reports about a damaged picture
        // depend on thread timing (a concealed picture came back unflagged in one run of
        // many), and damage must be found every time to hold its frames: inter-coded
        // video decodes on one thread. Intra-only codecs (ProRes, DNx), whose frames
        // stand alone, keep frame threads.
        let threads = if intra_only(ist.parameters().id()) { opts.threads } else { 1 };
        ctx.set_threading(ff::codec::threading::Config { kind: ff::codec::threading::Type::Frame, count: threads, ..Default::default() });
        ctx.decoder().video().map_err(|e| ProxyError::Skip(format!("cannot decode the video: {e}")))?
    };
    let (sw, sh) = (dec.width(), dec.height());
    if sw == 0 || sh == 0 {
        return Err(ProxyError::Skip("video has no picture size".into()));
    }
    let facts_v = VideoFacts {
        w: sw,
        h: sh,
        sar: dec.aspect_ratio(),
        pix: dec.format(),
        colour: ColourTags {
            primaries: dec.color_primaries(),
            trc: dec.color_transfer_characteristic(),
            space: dec.color_space(),
            range: dec.color_range(),
        }
        .for_yuv_output(is_rgb(dec.format())),
        rate,
        timecode: facts.timecode.clone(),
        reel: facts.reel.clone(),
        expected_frames: expected.max(facts.duration_frames.unwrap_or(0)),
        comment: vfr_note.clone(),
    };

    // Audio: PCM is copied; compressed tracks (and the preview's track) are decoded.
    let want_decoded = |first: bool, pcm: bool| {
        (first && opts.rungs.iter().any(|r| r.is_preview())) || (!pcm && opts.rungs.iter().any(|r| r.is_editorial()))
    };
    let mut tracks = Vec::new();
    let mut adecs: HashMap<usize, ff::decoder::Audio> = HashMap::new();
    for st in ictx.streams() {
        if st.parameters().medium() != ff::media::Type::Audio {
            continue;
        }
        // SAFETY: reading codec parameters of an open input stream.
        let raw = unsafe { &*st.parameters().as_ptr() };
        let name = st.parameters().id().name().to_string();
        let pcm = name.starts_with("pcm_") && !name.contains("planar") && raw.ch_layout.nb_channels > 0;
        let first = tracks.is_empty();
        let mut dec_fmt = None;
        if want_decoded(first, pcm) {
            let d = ff::codec::context::Context::from_parameters(st.parameters())
                .and_then(|c| c.decoder().audio())
                .map_err(fail("audio decoder"))?;
            // SAFETY: reading the opened decoder's sample format.
            dec_fmt = Some(unsafe { (*d.as_ptr()).sample_fmt });
            adecs.insert(st.index(), d);
        }
        tracks.push(AudioTrack {
            idx: st.index(),
            pcm,
            channels: raw.ch_layout.nb_channels.max(1),
            rate: raw.sample_rate,
            bits: if raw.bits_per_raw_sample > 0 { raw.bits_per_raw_sample } else { raw.bits_per_coded_sample },
            tb: st.time_base(),
            start: if st.start_time() == ffi::AV_NOPTS_VALUE { 0 } else { st.start_time() },
            params: st.parameters(),
            dec_fmt,
        });
    }

    let sinks = sinks::build(&opts.rungs, out_dir, &facts_v, &tracks, opts.threads)?;
    let mut out = Fanout::new(sinks, opts.frames_done.clone())?;

    // SAFETY: reading the opened decoder's reorder depth (B-frames shown late).
    let reorder = unsafe { (*dec.as_ptr()).has_b_frames }.clamp(0, 16) as usize;
    let conform = Conform { vfr, rate_f: ratio(rate), in_tb: ratio(in_tb), v_start, pending: None };
    let start = (v_start != ffi::AV_NOPTS_VALUE).then_some(v_start);
    let mut placer = Placer::new(conform, start, reorder + 2);
    let mut problem: Option<String> = None;
    let mut read_errors = 0;
    // A read error after the last intact video packet means the source is cut short.
    let mut read_error_at_end = false;
    let mut frame = ff::frame::Video::empty();
    let mut aframe = ff::frame::Audio::empty();
    let mut notes: Vec<String> = vfr_note.into_iter().collect();

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
                read_error_at_end = true;
                problem.get_or_insert(format!("read error: {e}"));
                if read_errors > 32 {
                    break;
                }
                continue;
            }
        }
        let si = pkt.stream();
        if si == vidx {
            let intact = !pkt.is_corrupt();
            placer.packet(&pkt, intact);
            if !intact {
                // Its slot is held (or, at the end of a cut-short file, the proxy ends before it).
                problem.get_or_insert("a damaged video packet".into());
                continue;
            }
            read_error_at_end = false;
            if let Err(e) = dec.send_packet(&pkt) {
                // The packet is consumed either way; the picture it should give
                // leaves its slot empty and the slot is held.
                problem.get_or_insert(format!("video does not decode: {e}"));
            }
            drain(&mut dec, &mut frame, &mut placer, &mut out, &mut problem)?;
            continue;
        }
        out.audio_packet(si, &pkt)?;
        if let Some(d) = adecs.get_mut(&si) {
            if d.send_packet(&pkt).is_err() {
                continue; // a damaged audio packet: the track just has a gap
            }
            while d.receive_frame(&mut aframe).is_ok() {
                out.audio_frame(si, &aframe)?;
            }
        }
    }

    // ---- flush ----
    let _ = dec.send_eof();
    drain(&mut dec, &mut frame, &mut placer, &mut out, &mut problem)?;
    let placed = placer.finish(&mut out, expected, read_error_at_end)?;
    let frames_out = out.frames_out;
    if frames_out == 0 {
        return Err(ProxyError::Skip(
            problem.map(|why| format!("no picture decodes ({why})")).unwrap_or_else(|| "no picture decodes".into()),
        ));
    }
    for (idx, d) in adecs.iter_mut() {
        let _ = d.send_eof();
        while d.receive_frame(&mut aframe).is_ok() {
            out.audio_frame(*idx, &aframe)?;
        }
    }
    let files = out.finish()?;

    let damaged = damage::ranges(&placed.held, facts_v.timecode.as_deref(), (rate.numerator(), rate.denominator()));
    if !damaged.is_empty() {
        notes.push(damage::describe(&damaged));
    }
    let partial_at = if placed.cut_short {
        let why = problem.unwrap_or_else(|| format!("the source ends after {frames_out} of {expected} frames"));
        notes.push(format!("partial: source frame {frames_out} and later do not decode (the file is cut short: {why})"));
        Some(frames_out as i64)
    } else {
        None
    };
    let (mut files, mut stats) = finish_render(files, frames_out, t0, partial_at, notes);
    for f in files.iter_mut() {
        f.damaged = damaged.clone();
    }
    stats.damaged = damaged;
    Ok((files, stats))
}

/// Every picture the decoder has ready, to the placer. An error for one
/// packet (frame threads report it late) does not stop the others.
fn drain(
    dec: &mut ff::decoder::Video,
    frame: &mut ff::frame::Video,
    placer: &mut Placer,
    out: &mut Fanout,
    problem: &mut Option<String>,
) -> Result<(), ProxyError> {
    let mut errors = 0;
    loop {
        match dec.receive_frame(frame) {
            Ok(()) => {
                errors = 0;
                placer.picture(frame, out)?;
            }
            Err(ff::Error::Eof) => return Ok(()),
            Err(ff::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(()),
            Err(e) => {
                problem.get_or_insert(format!("video does not decode: {e}"));
                errors += 1;
                if errors > 16 {
                    return Ok(());
                }
            }
        }
    }
}

/// What `Placer::finish` found.
struct Placed {
    /// Output frames that hold the last good picture, ascending.
    held: Vec<u64>,
    /// The source is cut short: the proxy ends after its last good picture.
    cut_short: bool,
}

/// A frame on its way out, in display order.
enum Entry {
    /// Decoded cleanly (timestamp, when the stream has them).
    Good(Option<i64>, ff::frame::Video),
    /// Flagged by the decoder, or its packet gave no picture.
    Held,
}

/// Puts decoded pictures in their places (constant-rate sources: by timestamp
/// among the packets' timestamps, see `damage`) and fills the frames that get
/// no good picture with the last good one.
///
/// Entries wait in a short queue (the decoder's reorder depth plus two)
/// before they are sent: a B-frame decoded after a damaged reference is shown
/// *before* it, and the damage is known only when the reference comes out.
/// Held frames are owed, not sent, until the next good picture: a source cut
/// short then ends at its last good picture instead of a run of holds.
struct Placer {
    conform: Conform,
    /// The stream's start: packets before it are preroll, not frames.
    t0: Option<i64>,
    map: DamageMap,
    delay: usize,
    queue: VecDeque<Entry>,
    /// Timestamp of the last picture placed.
    last_pts: Option<i64>,
    /// Output frames placed so far (sent or owed).
    next: u64,
    held: Option<ff::frame::Video>,
    owed: u64,
    held_frames: Vec<u64>,
    /// Output frames up to and including the last good picture.
    good_end: u64,
    /// VFR: output frames where a damaged picture was skipped (the conform holds the previous).
    vfr_bad: Vec<u64>,
}

impl Placer {
    fn new(conform: Conform, t0: Option<i64>, delay: usize) -> Placer {
        Placer {
            conform,
            t0,
            map: DamageMap::default(),
            delay,
            queue: VecDeque::new(),
            last_pts: None,
            next: 0,
            held: None,
            owed: 0,
            held_frames: Vec::new(),
            good_end: 0,
            vfr_bad: Vec::new(),
        }
    }

    fn packet(&mut self, pkt: &ff::Packet, intact: bool) {
        if self.conform.vfr {
            return;
        }
        match pkt.pts() {
            Some(pts) if self.t0.is_none_or(|t0| pts >= t0) => self.map.packet(pts, pkt.is_key(), intact),
            _ => {}
        }
    }

    fn picture(&mut self, f: &ff::frame::Video, out: &mut Fanout) -> Result<(), ProxyError> {
        let bad = f.is_corrupt() || f.has_decode_errors();
        if self.conform.vfr {
            if bad {
                self.vfr_bad.push(out.frames_out);
                return Ok(());
            }
            return self.conform.push(f, out);
        }
        // Without timestamps (or packets that had none), pictures are taken in
        // the decoder's order.
        let pts = f.timestamp().filter(|_| self.map.frames() > 0);
        if let Some(ts) = pts {
            // Preroll, a repeated or backward timestamp, or one no packet had
            // at all: not a frame of this stream.
            if self.t0.is_some_and(|t0| ts < t0) || self.last_pts.is_some_and(|l| ts <= l) || self.map.max_pts().is_some_and(|m| ts > m) {
                return Ok(());
            }
            for missing in self.map.between(self.last_pts, Some(ts)) {
                self.map.mark(missing);
                self.queue.push_back(Entry::Held);
            }
            self.last_pts = Some(ts);
            if bad {
                self.map.mark(ts);
            }
        }
        self.queue.push_back(if bad { Entry::Held } else { Entry::Good(pts, share_video(f)) });
        while self.queue.len() > self.delay {
            if let Some(e) = self.queue.pop_front() {
                self.release(e, out)?;
            }
        }
        Ok(())
    }

    fn release(&mut self, e: Entry, out: &mut Fanout) -> Result<(), ProxyError> {
        let f = match e {
            Entry::Good(pts, f) if !pts.is_some_and(|t| self.map.is_held(t)) => f,
            _ => {
                self.hold();
                return Ok(());
            }
        };
        // Holds owed before the first good picture show that picture.
        let stand_in = self.held.take().unwrap_or_else(|| share_video(&f));
        for _ in 0..self.owed {
            out.video(&stand_in)?;
        }
        self.owed = 0;
        out.video(&f)?;
        self.held = Some(f);
        self.next += 1;
        self.good_end = self.next;
        Ok(())
    }

    fn hold(&mut self) {
        self.held_frames.push(self.next);
        self.owed += 1;
        self.next += 1;
    }

    /// Send what is queued and owed: one output frame per source frame, unless
    /// the source is cut short (fewer frames up to its last intact packet than
    /// it declares, or a read error after that packet): then the proxy ends
    /// after its last good picture.
    fn finish(mut self, out: &mut Fanout, expected: u64, read_error_at_end: bool) -> Result<Placed, ProxyError> {
        if self.conform.vfr {
            self.conform.finish(out)?;
            return Ok(Placed { held: self.vfr_bad, cut_short: false });
        }
        while let Some(e) = self.queue.pop_front() {
            self.release(e, out)?;
        }
        let timed = self.map.frames() > 0;
        let readable = if timed { self.map.readable_frames() } else { self.next };
        let cut_short = read_error_at_end || (expected > 0 && readable < expected);
        if cut_short {
            let end = self.good_end;
            self.held_frames.retain(|&h| h < end);
            return Ok(Placed { held: self.held_frames, cut_short });
        }
        if timed {
            for missing in self.map.between(self.last_pts, None) {
                self.map.mark(missing);
                self.hold();
            }
        }
        if let Some(h) = &self.held {
            for _ in 0..self.owed {
                out.video(h)?;
            }
        }
        Ok(Placed { held: self.held_frames, cut_short })
    }
}

/// Constant-rate sources pass straight through. A variable-rate source is
/// conformed by timestamp: each picture waits for its successor's timestamp
/// and fills every output slot that starts before it.
struct Conform {
    vfr: bool,
    rate_f: f64,
    in_tb: f64,
    v_start: i64,
    pending: Option<(ff::frame::Video, f64)>,
}

impl Conform {
    fn push(&mut self, f: &ff::frame::Video, out: &mut Fanout) -> Result<(), ProxyError> {
        if !self.vfr {
            return out.video(f);
        }
        let start = if self.v_start == ffi::AV_NOPTS_VALUE { 0 } else { self.v_start };
        let t = (f.timestamp().unwrap_or(0) - start) as f64 * self.in_tb;
        if let Some((p, _)) = &self.pending {
            while (out.frames_out as f64) / self.rate_f < t - 0.5 / self.rate_f {
                out.video(p)?;
            }
        }
        self.pending = Some((super::encode::share_video(f), t));
        Ok(())
    }

    /// The last picture of a VFR source lasts its own duration (or one slot).
    fn finish(&mut self, out: &mut Fanout) -> Result<(), ProxyError> {
        let Some((p, t)) = self.pending.take() else { return Ok(()) };
        // SAFETY: reading the duration of a decoded frame.
        let d = unsafe { (*p.as_ptr()).pkt_duration };
        let dur = if d > 0 { d as f64 * self.in_tb } else { 1.0 / self.rate_f };
        let end = t + dur;
        out.video(&p)?;
        while (out.frames_out as f64) / self.rate_f < end - 0.5 / self.rate_f {
            out.video(&p)?;
        }
        Ok(())
    }
}

/// Whether FFmpeg describes the codec as intra-only (every frame a keyframe).
fn intra_only(id: ff::codec::Id) -> bool {
    // SAFETY: avcodec_descriptor_get returns NULL or a pointer to a static descriptor.
    unsafe {
        let d = ff::ffi::avcodec_descriptor_get(id.into());
        !d.is_null() && ((*d).props & ff::ffi::AV_CODEC_PROP_INTRA_ONLY) != 0
    }
}
