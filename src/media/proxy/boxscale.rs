//! Box (area-average) downscaling by exact power-of-two factors, from planar
//! Y'CbCr of 8 to 16 bits to 8-bit 4:2:0: the preview's common case (1080p
//! 4:2:2 10-bit → 960x540 4:2:0, UHD → 960x540).
//!
//! Why our own: swscale has no fast path for this conversion and spent about
//! 5 ms a frame on it here (bicubic), a tenth of the whole render's CPU. For an
//! exact 2:1 or 4:1 decimation the area average is the textbook filter (what
//! swscale's `area` mode computes), and a vertical-then-horizontal sum with a
//! shift instead of a divide runs in well under a millisecond. Anything else
//! (odd ratios, RGB, full-range, big-endian) goes to swscale.

use ff::ffi;
use ffmpeg_next as ff;

/// How to scale one picture format to one output size (None from `plan`:
/// use swscale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BoxPlan {
    /// Per plane (Y, Cb, Cr): source width and height, factors kx, ky, and
    /// destination width and height.
    planes: [(usize, usize, usize, usize, usize, usize); 3],
    /// Bytes per source sample (1 or 2).
    bytes: usize,
    /// Right shift taking a sum of kx*ky samples to 8 bits.
    shifts: [u32; 3],
}

fn pow2_log(n: usize) -> Option<u32> {
    (n > 0 && n.is_power_of_two()).then(|| n.trailing_zeros())
}

/// A plan for `src` (format, size, range) to `dst_fmt` at `dw`x`dh`.
pub(super) fn plan(
    fmt: ff::format::Pixel,
    w: u32,
    h: u32,
    range: ff::color::Range,
    dst_fmt: ff::format::Pixel,
    dw: u32,
    dh: u32,
) -> Option<BoxPlan> {
    if dst_fmt != ff::format::Pixel::YUV420P || range == ff::color::Range::JPEG || !dw.is_multiple_of(2) || !dh.is_multiple_of(2) {
        return None;
    }
    // SAFETY: descriptor lookup for a valid pixel format.
    let d = unsafe { ffi::av_pix_fmt_desc_get(fmt.into()).as_ref()? };
    let flags = d.flags;
    let bad = (ffi::AV_PIX_FMT_FLAG_RGB
        | ffi::AV_PIX_FMT_FLAG_BE
        | ffi::AV_PIX_FMT_FLAG_PAL
        | ffi::AV_PIX_FMT_FLAG_HWACCEL
        | ffi::AV_PIX_FMT_FLAG_BITSTREAM
        | ffi::AV_PIX_FMT_FLAG_FLOAT) as u64;
    if flags & ffi::AV_PIX_FMT_FLAG_PLANAR as u64 == 0 || flags & bad != 0 || d.nb_components < 3 {
        return None;
    }
    let c = &d.comp;
    let depth = c[0].depth as usize;
    if !cfg!(target_endian = "little") || !(8..=16).contains(&depth) || c[1].depth as usize != depth || c[2].depth as usize != depth {
        return None;
    }
    // Each of Y, Cb, Cr alone in planes 0, 1, 2, no packing.
    let bytes = if depth > 8 { 2 } else { 1 };
    for (i, comp) in c.iter().take(3).enumerate() {
        if comp.plane as usize != i || comp.step as usize != bytes || comp.offset != 0 || comp.shift != 0 {
            return None;
        }
    }
    let (w, h, dw, dh) = (w as usize, h as usize, dw as usize, dh as usize);
    let (cw, ch) = ((w + (1 << d.log2_chroma_w) - 1) >> d.log2_chroma_w, (h + (1 << d.log2_chroma_h) - 1) >> d.log2_chroma_h);
    let mut planes = [(0, 0, 0, 0, 0, 0); 3];
    let mut shifts = [0; 3];
    for (i, (sw, sh, ow, oh)) in [(w, h, dw, dh), (cw, ch, dw / 2, dh / 2), (cw, ch, dw / 2, dh / 2)].into_iter().enumerate() {
        if ow == 0 || oh == 0 || sw % ow != 0 || sh % oh != 0 {
            return None;
        }
        let (kx, ky) = (sw / ow, sh / oh);
        // u16 sums: at most 64 samples of up to 10 bits (16-bit sources: 1).
        if kx > 8 || kx * ky > (1 << (16 - depth.max(10))) {
            return None;
        }
        let log = pow2_log(kx * ky)?;
        planes[i] = (sw, sh, kx, ky, ow, oh);
        shifts[i] = log + (depth as u32 - 8);
    }
    Some(BoxPlan { planes, bytes, shifts })
}

/// Scale `src` into `dst` (allocated YUV420P of the plan's size). False when the
/// picture's buffers are not as the plan expects (the caller uses swscale).
pub(super) fn run(p: &BoxPlan, src: &ff::frame::Video, dst: &mut ff::frame::Video, acc: &mut Vec<u16>) -> bool {
    for (i, &(sw, sh, kx, ky, ow, oh)) in p.planes.iter().enumerate() {
        let (sstride, dstride) = (src.stride(i), dst.stride(i));
        let data = src.data(i);
        if data.len() < (sh - 1) * sstride + sw * p.bytes {
            return false;
        }
        let out = dst.data_mut(i);
        if out.len() < (oh - 1) * dstride + ow {
            return false;
        }
        let sh = p.shifts[i];
        let ok = match (p.bytes, kx) {
            (1, 1) => decimate::<1, 1>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            (1, 2) => decimate::<1, 2>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            (1, 4) => decimate::<1, 4>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            (1, 8) => decimate::<1, 8>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            (2, 1) => decimate::<2, 1>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            (2, 2) => decimate::<2, 2>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            (2, 4) => decimate::<2, 4>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            (2, 8) => decimate::<2, 8>(data, sstride, sw, out, dstride, ow, oh, ky, sh, acc),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// One plane: sum `ky` rows into `acc`, then `KX` columns, rounding shift to
/// 8 bits. `B` is the bytes per sample (native-endian u16 when 2: the plan
/// admits little-endian formats only, and this runs on little-endian hosts).
/// u16 sums (at most 64 samples of 10 bits) and constant factors keep the
/// loops vectorisable.
#[allow(clippy::too_many_arguments)]
fn decimate<const B: usize, const KX: usize>(
    src: &[u8],
    sstride: usize,
    sw: usize,
    dst: &mut [u8],
    dstride: usize,
    ow: usize,
    oh: usize,
    ky: usize,
    shift: u32,
    acc: &mut Vec<u16>,
) -> bool {
    acc.clear();
    acc.resize(sw, 0);
    let half = if shift > 0 { 1u32 << (shift - 1) } else { 0 };
    for y in 0..oh {
        for r in 0..ky {
            let start = (y * ky + r) * sstride;
            let Some(row) = src.get(start..start + sw * B) else { return false };
            if B == 2 {
                // SAFETY: any two bytes are a valid u16; alignment is checked by align_to.
                let (pre, mid, _) = unsafe { row.align_to::<u16>() };
                if !pre.is_empty() || mid.len() < sw {
                    return false;
                }
                if r == 0 {
                    acc.copy_from_slice(&mid[..sw]);
                } else {
                    acc.iter_mut().zip(mid).for_each(|(a, &v)| *a += v);
                }
            } else if r == 0 {
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a = v as u16);
            } else {
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v as u16);
            }
        }
        let Some(out) = dst.get_mut(y * dstride..y * dstride + ow) else { return false };
        for (o, chunk) in out.iter_mut().zip(acc.chunks_exact(KX)) {
            let sum: u32 = chunk.iter().map(|&v| v as u32).sum();
            *o = ((sum + half) >> shift).min(255) as u8;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::format::Pixel;

    fn frame(fmt: Pixel, w: u32, h: u32, f: impl Fn(usize, usize, usize) -> u16) -> ff::frame::Video {
        let mut v = ff::frame::Video::new(fmt, w, h);
        for plane in 0..3 {
            let (pw, ph) =
                if plane == 0 { (w as usize, h as usize) } else { (v.plane_width(plane) as usize, v.plane_height(plane) as usize) };
            let stride = v.stride(plane);
            let wide = fmt == Pixel::YUV422P10LE;
            let d = v.data_mut(plane);
            for y in 0..ph {
                for x in 0..pw {
                    let val = f(plane, x, y);
                    if wide {
                        d[y * stride + 2 * x..y * stride + 2 * x + 2].copy_from_slice(&val.to_le_bytes());
                    } else {
                        d[y * stride + x] = val as u8;
                    }
                }
            }
        }
        v
    }

    #[test]
    fn halves_10_bit_422_to_8_bit_420_by_averaging() {
        ff::init().ok();
        let pat = |p: usize, x: usize, y: usize| ((x * 7 + y * 13 + p * 100) % 1024) as u16;
        let src = frame(Pixel::YUV422P10LE, 64, 32, pat);
        let plan = plan(Pixel::YUV422P10LE, 64, 32, ff::color::Range::MPEG, Pixel::YUV420P, 32, 16).expect("a plan");
        let mut dst = ff::frame::Video::new(Pixel::YUV420P, 32, 16);
        assert!(run(&plan, &src, &mut dst, &mut Vec::new()));
        // Luma (1, 1): mean of source (2..4, 2..4), 10 -> 8 bits, rounded.
        let want = |p: usize, x0: usize, y0: usize, kx: usize, ky: usize| {
            let mut s = 0u32;
            for y in y0..y0 + ky {
                for x in x0..x0 + kx {
                    s += pat(p, x, y) as u32;
                }
            }
            ((s + (kx * ky * 4 / 2) as u32) / (kx * ky * 4) as u32) as u8
        };
        assert_eq!(dst.data(0)[dst.stride(0) + 1], want(0, 2, 2, 2, 2));
        // Chroma of 4:2:2 (32x32) to 4:2:0 (16x8): 2 across, 4 down.
        assert_eq!(dst.data(1)[2 * dst.stride(1) + 3], want(1, 6, 8, 2, 4));
        assert_eq!(dst.data(2)[0], want(2, 0, 0, 2, 4));
    }

    #[test]
    fn only_exact_power_of_two_ratios_of_plain_yuv() {
        let r = ff::color::Range::MPEG;
        assert!(plan(Pixel::YUV422P10LE, 1920, 1080, r, Pixel::YUV420P, 960, 540).is_some());
        assert!(plan(Pixel::YUV420P, 3840, 2160, r, Pixel::YUV420P, 960, 540).is_some());
        assert!(plan(Pixel::YUV422P10LE, 1920, 1080, r, Pixel::YUV420P, 640, 360).is_none()); // 3:1
        assert!(plan(Pixel::YUV422P10LE, 1920, 1080, ff::color::Range::JPEG, Pixel::YUV420P, 960, 540).is_none());
        assert!(plan(Pixel::GBRP10LE, 1920, 1080, r, Pixel::YUV420P, 960, 540).is_none());
        assert!(plan(Pixel::YUV422P10LE, 1920, 1080, r, Pixel::YUVJ420P, 960, 540).is_none());
        assert!(plan(Pixel::YUV422P10BE, 1920, 1080, r, Pixel::YUV420P, 960, 540).is_none());
    }
}
