//! Rendering a movie file (MOV, MP4, MXF, …): the one decode.
//!
//! This thread reads packets and decodes the video (and the audio some rung
//! needs); every decoded picture goes, shared, to each rung's thread
//! (`sinks::Fanout`). Output picture k is decoded picture k for a constant-rate
//! source; a variable-rate source is conformed here, by timestamp, so every
//! rung sees the same conformed sequence.

use super::encode::{is_rgb, ColourTags};
use super::sinks::{self, AudioTrack, Fanout, VideoFacts};
use super::{fail, open_input, pick_rate, ratio, finish_render, ProxyError, RenderOptions, RenderStats, Source};
use crate::archive::proxies::RenderedProxy;
use ff::ffi;
use ffmpeg_next as ff;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;

pub(super) fn render(src: &Source, facts: &Value, out_dir: &Path, opts: &RenderOptions) -> Result<(Vec<RenderedProxy>, RenderStats), ProxyError> {
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
    let vfr = facts["variable_frame_rate"].as_bool().unwrap_or(false);
    let vanished = || ProxyError::Failed("internal: video stream vanished".into());
    let (rate, vfr_note, in_tb, expected, v_start) = {
        let ist = ictx.stream(vidx).ok_or_else(vanished)?;
        let (rate, note) = pick_rate(&ist, vfr);
        (rate, note, ist.time_base(), ist.frames().max(0) as u64, ist.start_time())
    };
    let mut dec = {
        let ist = ictx.stream(vidx).ok_or_else(vanished)?;
        let mut ctx = ff::codec::context::Context::from_parameters(ist.parameters()).map_err(fail("video decoder"))?;
        ctx.set_threading(ff::codec::threading::Config { kind: ff::codec::threading::Type::Frame, count: opts.threads, ..Default::default() });
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
        timecode: facts["timecode"].as_str().map(str::to_string),
        reel: facts["reel"].as_str().map(str::to_string),
        expected_frames: expected.max(facts["duration_frames"].as_u64().unwrap_or(0)),
        comment: vfr_note.clone(),
    };

    // Audio: PCM is copied; compressed tracks (and the preview's track) are decoded.
    let want_decoded = |first: bool, pcm: bool| {
        (first && opts.rungs.contains(&super::Rung::Preview)) || (!pcm && opts.rungs.iter().any(|r| r.is_editorial()))
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

    let mut damage: Option<(u64, String)> = None;
    let mut video_stopped = false;
    let mut read_errors = 0;
    let mut frame = ff::frame::Video::empty();
    let mut aframe = ff::frame::Audio::empty();
    let mut conform = Conform { vfr, rate_f: ratio(rate), in_tb: ratio(in_tb), v_start, pending: None };
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
                damage.get_or_insert((out.frames_out, format!("read error: {e}")));
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
                damage.get_or_insert((out.frames_out, "a damaged video packet".into()));
                video_stopped = true;
                continue;
            }
            if let Err(e) = dec.send_packet(&pkt) {
                damage.get_or_insert((out.frames_out, format!("video does not decode: {e}")));
                video_stopped = true;
                continue;
            }
            while dec.receive_frame(&mut frame).is_ok() {
                if frame.is_corrupt() || frame.has_decode_errors() {
                    damage.get_or_insert((out.frames_out, "a picture decoded with errors".into()));
                    video_stopped = true;
                    break;
                }
                conform.push(&frame, &mut out)?;
            }
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
    if !video_stopped {
        let _ = dec.send_eof();
        while dec.receive_frame(&mut frame).is_ok() {
            if frame.is_corrupt() || frame.has_decode_errors() {
                damage.get_or_insert((out.frames_out, "a picture decoded with errors".into()));
                break;
            }
            conform.push(&frame, &mut out)?;
        }
    }
    conform.finish(&mut out)?;
    let frames_out = out.frames_out;
    if frames_out == 0 {
        return Err(ProxyError::Skip(
            damage.map(|d| format!("no picture decodes ({})", d.1)).unwrap_or_else(|| "no picture decodes".into()),
        ));
    }
    for (idx, d) in adecs.iter_mut() {
        let _ = d.send_eof();
        while d.receive_frame(&mut aframe).is_ok() {
            out.audio_frame(*idx, &aframe)?;
        }
    }
    let files = out.finish()?;

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
    Ok(finish_render(files, frames_out, t0, partial_at, notes))
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
