//! The thumb of an audio-only file (a BWF from the sound recordist): a
//! waveform of its first track, 320 px wide, so a browser of the archive shows
//! something recognisable instead of nothing. The other rungs do not apply.

use super::encode::encode_jpeg;
use super::sinks::jpeg_encoder;
use super::{finish_render, open_input, ProxyError, RenderOptions, RenderStats, Rung, Source};
use crate::archive::proxies::RenderedProxy;
use ffmpeg_next as ff;
use std::path::Path;
use std::sync::atomic::Ordering;

pub const WAVEFORM_WIDTH: u32 = 320;
pub const WAVEFORM_HEIGHT: u32 = 96;

/// Feed `peak` the largest absolute sample value (0..=1, over the channels)
/// of each sample of `f`, in order. The format is looked at once per frame,
/// not per sample: an hour of 8-channel audio is over a billion samples.
fn frame_peaks(f: &ff::frame::Audio, mut peak: impl FnMut(f32)) {
    use ff::format::sample::Type::Planar;
    use ff::format::Sample as S;
    let ch = f.channels().max(1) as usize;
    let fmt = f.format();
    let planar = matches!(fmt, S::U8(Planar) | S::I16(Planar) | S::I32(Planar) | S::I64(Planar) | S::F32(Planar) | S::F64(Planar));
    let bytes = fmt.bytes();
    let value = |b: &[u8]| -> f32 {
        match fmt {
            S::U8(_) => (b[0] as f32 - 128.0) / 128.0,
            S::I16(_) => i16::from_ne_bytes([b[0], b[1]]) as f32 / 32768.0,
            S::I32(_) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
            S::F32(_) => f32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            S::F64(_) => f64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
            S::I64(_) => (i64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64 / 9.223_372e18) as f32,
            S::None => 0.0,
        }
    };
    if bytes == 0 {
        return;
    }
    let planes: Vec<&[u8]> = (0..if planar { ch.min(f.planes()) } else { 1.min(f.planes()) }).map(|p| f.data(p)).collect();
    for i in 0..f.samples() {
        let mut m = 0f32;
        for c in 0..ch {
            let (plane, at) = if planar { (c, i * bytes) } else { (0, (i * ch + c) * bytes) };
            let Some(b) = planes.get(plane).and_then(|d| d.get(at..at + bytes)) else { break };
            m = m.max(value(b).abs().min(1.0));
        }
        peak(m);
    }
}

/// Column peaks (0..=1) from block peaks: each column takes the loudest block it covers.
pub fn columns(blocks: &[f32], width: usize) -> Vec<f32> {
    if blocks.is_empty() || width == 0 {
        return vec![0.0; width];
    }
    (0..width)
        .map(|c| {
            let a = c * blocks.len() / width;
            let b = ((c + 1) * blocks.len() / width).max(a + 1).min(blocks.len());
            blocks[a..b].iter().copied().fold(0.0, f32::max)
        })
        .collect()
}

pub(super) fn render(src: &Source, out_dir: &Path, opts: &RenderOptions) -> Result<(Vec<RenderedProxy>, RenderStats), ProxyError> {
    let t0 = std::time::Instant::now();
    let mut ictx = open_input(src)?;
    let (idx, mut dec) = {
        let st = ictx.streams().best(ff::media::Type::Audio).ok_or_else(|| ProxyError::Skip("no video or audio stream".into()))?;
        let dec = ff::codec::context::Context::from_parameters(st.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(|e| ProxyError::Skip(format!("cannot decode the audio: {e}")))?;
        (st.index(), dec)
    };
    // Peaks of 10 ms blocks, mapped onto the columns at the end (the length
    // is not trusted from the header: a truncated file is drawn as it is).
    let block = (dec.rate() as usize / 100).max(1);
    let (mut blocks, mut cur, mut n) = (Vec::new(), 0f32, 0usize);
    let mut frame = ff::frame::Audio::empty();
    let mut notes = vec!["waveform of the first audio track (no video)".to_string()];
    let mut on_frame = |f: &ff::frame::Audio| {
        frame_peaks(f, |p| {
            cur = cur.max(p);
            n += 1;
            if n == block {
                blocks.push(cur);
                (cur, n) = (0.0, 0);
            }
        })
    };
    for (st, pkt) in ictx.packets() {
        if opts.interrupt.load(Ordering::Relaxed) {
            return Err(ProxyError::Interrupted);
        }
        if st.index() != idx {
            continue;
        }
        if dec.send_packet(&pkt).is_err() {
            notes.push("some audio did not decode".into());
            continue;
        }
        while dec.receive_frame(&mut frame).is_ok() {
            on_frame(&frame);
        }
    }
    let _ = dec.send_eof();
    while dec.receive_frame(&mut frame).is_ok() {
        on_frame(&frame);
    }
    if n > 0 {
        blocks.push(cur);
    }
    if blocks.is_empty() {
        return Err(ProxyError::Skip("no audio decodes".into()));
    }

    let (w, h) = (WAVEFORM_WIDTH, WAVEFORM_HEIGHT);
    let mut pic = ff::frame::Video::new(ff::format::Pixel::YUVJ420P, w, h);
    for (plane, val) in [(0usize, 24u8), (1, 128), (2, 128)] {
        pic.data_mut(plane).fill(val);
    }
    let stride = pic.stride(0);
    let mid = h as usize / 2;
    let y = pic.data_mut(0);
    for (x, peak) in columns(&blocks, w as usize).into_iter().enumerate() {
        let half = ((peak * (h as f32 / 2.0 - 2.0)).round() as usize).max(1);
        for row in mid.saturating_sub(half)..(mid + half).min(h as usize) {
            y[row * stride + x] = 210;
        }
    }
    let mut enc = jpeg_encoder(w, h, ff::Rational(25, 1))?;
    let path = out_dir.join("thumb.jpg");
    encode_jpeg(&mut enc, &mut pic, &path)?;
    Ok(finish_render(vec![(Rung::Thumb, path)], 0, t0, None, notes))
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_take_the_loudest_block_they_cover() {
        assert_eq!(columns(&[0.1, 0.9, 0.2, 0.3], 2), vec![0.9, 0.3]);
        // More columns than blocks: each block spreads over several columns.
        assert_eq!(columns(&[0.5, 1.0], 4), vec![0.5, 0.5, 1.0, 1.0]);
        assert_eq!(columns(&[], 3), vec![0.0; 3]);
    }
}
