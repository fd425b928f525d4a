//! Rendering an image sequence: each frame file is one packet for the format's
//! decoder (DPX, EXR, TIFF), decoded in frame-number order and fed to the same
//! rung threads as a movie. The rate and start timecode come from the first
//! frame's header (`media::sequence::frame_header`).
//!
//! A gap in the numbering, or a frame that does not decode, holds the previous
//! picture so every later frame keeps its timecode; both are noted, and a bad
//! frame marks the proxy partial from there.

use super::encode::{is_rgb, ColourTags};
use super::sinks::{self, Fanout, VideoFacts};
use super::{fail, finish_render, ProxyError, RenderOptions, RenderStats, SequenceSource};
use crate::archive::proxies::RenderedProxy;
use crate::media::sequence::frame_header;
use ffmpeg_next as ff;
use std::path::Path;
use std::sync::atomic::Ordering;

fn decoder_for(ext: &str, threads: usize) -> Result<ff::decoder::Video, ProxyError> {
    let (id, name) = match ext.to_ascii_lowercase().as_str() {
        "dpx" => (ff::codec::Id::DPX, "DPX"),
        "exr" => (ff::codec::Id::EXR, "OpenEXR"),
        "tif" | "tiff" => (ff::codec::Id::TIFF, "TIFF"),
        other => return Err(ProxyError::Skip(format!("'.{other}' frames are not an image format reelfs renders"))),
    };
    let codec = ff::decoder::find(id).ok_or_else(|| ProxyError::Failed(format!("this FFmpeg has no {name} decoder")))?;
    let mut ctx = ff::codec::context::Context::new_with_codec(codec);
    // One packet in, one picture out: slice threads only (frame threads would
    // hold pictures back).
    ctx.set_threading(ff::codec::threading::Config { kind: ff::codec::threading::Type::Slice, count: threads, ..Default::default() });
    let mut opts = ff::Dictionary::new();
    if id == ff::codec::Id::EXR {
        // EXR is scene-linear: show it through the Rec. 709 transfer, as a
        // viewer would, rather than as dark linear values.
        opts.set("apply_trc", "bt709");
    }
    ctx.decoder().open_as_with(codec, opts).and_then(|d| d.video()).map_err(fail("image decoder"))
}

fn decode_one(dec: &mut ff::decoder::Video, bytes: &[u8]) -> Result<ff::frame::Video, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let pkt = ff::Packet::copy(bytes);
    dec.send_packet(&pkt).map_err(|e| e.to_string())?;
    let mut f = ff::frame::Video::empty();
    dec.receive_frame(&mut f).map_err(|e| e.to_string())?;
    if f.width() == 0 || f.height() == 0 {
        return Err("no picture".into());
    }
    Ok(f)
}

pub(super) fn render(seq: &SequenceSource, out_dir: &Path, opts: &RenderOptions) -> Result<(Vec<RenderedProxy>, RenderStats), ProxyError> {
    let t0 = std::time::Instant::now();
    let Some((first_no, first_file)) = seq.frames.first() else { return Err(ProxyError::Skip("an empty image sequence".into())) };
    let last_no = seq.frames.last().map(|f| f.0).unwrap_or(*first_no);
    let mut dec = decoder_for(&seq.ext, opts.threads)?;
    let first_bytes = first_file.read_all().map_err(|e| ProxyError::Failed(format!("frame {first_no}: {e}")))?;
    let header = frame_header(&seq.ext, &first_bytes);
    let first =
        decode_one(&mut dec, &first_bytes).map_err(|e| ProxyError::Skip(format!("the first frame ({first_no}) does not decode: {e}")))?;
    drop(first_bytes);

    let mut notes = Vec::new();
    let rate = match header.rate {
        Some((n, d)) => ff::Rational(n, d),
        None => {
            notes.push("no frame rate in the headers: 24 fps assumed".to_string());
            ff::Rational(24, 1)
        }
    };
    if header.timecode.is_none() {
        notes.push("no timecode in the headers".to_string());
    }
    let exr = seq.ext.eq_ignore_ascii_case("exr");
    let colour = ColourTags {
        primaries: first.color_primaries(),
        // EXR is shown through the Rec. 709 transfer (see decoder_for).
        trc: if exr { ff::color::TransferCharacteristic::BT709 } else { first.color_transfer_characteristic() },
        space: first.color_space(),
        range: first.color_range(),
    }
    .for_yuv_output(is_rgb(first.format()));
    let span = last_no - first_no + 1;
    let facts = VideoFacts {
        w: first.width(),
        h: first.height(),
        sar: ff::Rational(1, 1),
        pix: first.format(),
        colour,
        rate,
        timecode: header.timecode.clone(),
        reel: None,
        expected_frames: span,
        comment: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    let sinks = sinks::build(&opts.rungs, out_dir, &facts, &[], opts.threads)?;
    let mut out = Fanout::new(sinks, opts.frames_done.clone())?;

    let mut held = first;
    let mut bad: Option<(u64, String)> = None;
    let mut missing: Vec<(u64, u64)> = Vec::new();
    let mut next_no = *first_no;
    std::thread::scope(|scope| -> Result<(), ProxyError> {
        // The next frames are read (and verified) while this one decodes: a
        // 4K DPX frame is ~50 MB, and the decoder is single-threaded.
        // Buffers go back to the reader once decoded (three in all), so
        // frames reuse memory instead of faulting in a new buffer each.
        let (tx, rx) = crossbeam_channel::bounded::<(Vec<u8>, Result<(), String>)>(2);
        let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(3);
        let rest = &seq.frames[1..];
        let interrupt = &opts.interrupt;
        scope.spawn(move || {
            for (_, f) in rest {
                let mut buf = free_rx.try_recv().unwrap_or_default();
                let r = f.read_into(&mut buf);
                if interrupt.load(Ordering::Relaxed) || tx.send((buf, r)).is_err() {
                    break;
                }
            }
        });
        for (i, (no, _)) in seq.frames.iter().enumerate() {
            if opts.interrupt.load(Ordering::Relaxed) {
                return Err(ProxyError::Interrupted);
            }
            if *no > next_no {
                missing.push((next_no, no - 1));
                for _ in next_no..*no {
                    out.video(&held)?;
                }
            }
            if i > 0 {
                let (buf, read) = rx.recv().unwrap_or_else(|_| (Vec::new(), Err("the frame reader stopped".into())));
                match read.and_then(|()| decode_one(&mut dec, &buf)) {
                    Ok(f) => held = f,
                    Err(e) => {
                        bad.get_or_insert((out.frames_out, format!("frame {no} does not decode: {e}")));
                    }
                }
                let _ = free_tx.try_send(buf);
            }
            out.video(&held)?;
            next_no = no + 1;
        }
        Ok(())
    })?;
    let files = out.finish()?;
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
        notes.push(format!("frames {} missing from the sequence: the previous frame is held", list.join(", ")));
    }
    let partial_at = bad.map(|(k, why)| {
        notes.push(format!("partial: {why} (the previous frame is held)"));
        k as i64
    });
    Ok(finish_render(files, span, t0, partial_at, notes))
}
