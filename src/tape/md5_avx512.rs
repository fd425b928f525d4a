//! MD5 of one stream with AVX-512VL's ternary logic and rotate.
//!
//! MD5 is one long dependency chain: each of a block's 64 steps needs the
//! step before it, so its speed is the latency of a step, not throughput.
//! On the general-purpose registers a step's chain is at least five
//! instructions (the mixing function takes two or three, then the add, the
//! rotate and the add of `b`); in one lane of an XMM register the mixing
//! function is a single `vpternlogd` and the rotate a single `vprold`, so the
//! chain is four. On an Intel bench machine that took MD5 from 565 MB/s
//! (libcrypto's hand-written assembly) to 660 MB/s; on an AMD EPYC with the
//! same flags it ran at 640 against libcrypto's 750, so `hashes::fastest`
//! times both and keeps the faster. MD5 sets the pace of `tape write` (each
//! file's MD5 is serial and the slowest of its hashes).
//! No crate does this for one stream: the AVX-512 MD5s published are
//! multi-buffer (16 messages at once), which a tape writer, hashing one
//! large file at a time, cannot use.
//!
//! The step is inline assembly, not intrinsics, because the compiler
//! reassociates `a + f + (m + k)` and puts the add of the constant after the
//! mixing function, back on the chain.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_cvtsi32_si128};

/// The RFC 1321 additive constants, in step order.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1,
    0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453,
    0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942,
    0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d,
    0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// Which message word each step adds (RFC 1321: rounds 2-4 permute them).
const WORD: [usize; 64] = {
    let mut w = [0usize; 64];
    let mut i = 0;
    while i < 64 {
        w[i] = match i / 16 {
            0 => i,
            1 => (5 * i + 1) % 16,
            2 => (3 * i + 5) % 16,
            _ => (7 * i) % 16,
        };
        i += 1;
    }
    w
};

/// The mixing functions as `vpternlogd` truth tables over (b, c, d):
/// F = b ? c : d, G = d ? b : c, H = b ^ c ^ d, I = c ^ (b | !d).
const F: u8 = 0xCA;
const G: u8 = 0xE4;
const H: u8 = 0x96;
const I: u8 = 0x39;

const INIT: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// An MD5 in progress. Made only by [`Md5Avx512::new`], which returns it
/// only on a CPU with AVX-512F and AVX-512VL.
#[derive(Clone)]
pub struct Md5Avx512 {
    state: [u32; 4],
    /// A partial block carried to the next update.
    buf: [u8; 64],
    buf_len: usize,
    /// Bytes hashed so far (MD5 appends the bit count mod 2^64).
    len: u64,
}

impl Md5Avx512 {
    /// `None` when this CPU lacks the instructions: the caller uses another MD5.
    pub fn new() -> Option<Md5Avx512> {
        if !supported() {
            return None;
        }
        Some(Md5Avx512 { state: INIT, buf: [0; 64], buf_len: 0, len: 0 })
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return;
            }
            let block = self.buf;
            self.compress(&block);
            self.buf_len = 0;
        }
        let whole = data.len() / 64 * 64;
        self.compress(&data[..whole]);
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn finish(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let end = if self.buf_len < 56 { 64 } else { 128 };
        tail[end - 8..end].copy_from_slice(&bits.to_le_bytes());
        self.compress(&tail[..end]);
        let mut out = [0u8; 16];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// `blocks` is a whole number of 64-byte blocks.
    fn compress(&mut self, blocks: &[u8]) {
        debug_assert_eq!(blocks.len() % 64, 0);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Md5Avx512` exists only where `supported()` said the CPU
        // has AVX-512F and AVX-512VL, the features `compress_blocks` enables.
        unsafe {
            compress_blocks(&mut self.state, blocks)
        }
    }
}

fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One step, `a = b + ((a + f(b, c, d) + m + k) <<< s)`, with `m + k` added
/// to `a` before the step's chain starts (it does not depend on `b`).
#[cfg(target_arch = "x86_64")]
macro_rules! step {
    ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $block:expr, $i:expr, $s:expr) => {
        let word = u32::from_le_bytes([
            $block[4 * WORD[$i]],
            $block[4 * WORD[$i] + 1],
            $block[4 * WORD[$i] + 2],
            $block[4 * WORD[$i] + 3],
        ]);
        let t = _mm_add_epi32($a, _mm_cvtsi32_si128(word.wrapping_add(K[$i]) as i32));
        std::arch::asm!(
            "vmovdqa {f}, {b}",
            "vpternlogd {f}, {c}, {d}, {imm}",
            "vpaddd {t}, {t}, {f}",
            "vprold {t}, {t}, {s}",
            "vpaddd {t}, {t}, {b}",
            t = inout(xmm_reg) t => $a,
            f = out(xmm_reg) _,
            b = in(xmm_reg) $b,
            c = in(xmm_reg) $c,
            d = in(xmm_reg) $d,
            imm = const $f,
            s = const $s,
            options(pure, nomem, nostack, preserves_flags),
        );
    };
}

/// The four steps of one line of RFC 1321's rounds: a, d, c, b in turn.
#[cfg(target_arch = "x86_64")]
macro_rules! four {
    ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $block:expr, $i:expr, $s0:expr, $s1:expr, $s2:expr, $s3:expr) => {
        step!($f, $a, $b, $c, $d, $block, $i, $s0);
        step!($f, $d, $a, $b, $c, $block, $i + 1, $s1);
        step!($f, $c, $d, $a, $b, $block, $i + 2, $s2);
        step!($f, $b, $c, $d, $a, $block, $i + 3, $s3);
    };
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn compress_blocks(state: &mut [u32; 4], blocks: &[u8]) {
    let lane = |w: u32| -> __m128i { _mm_cvtsi32_si128(w as i32) };
    let (mut a, mut b, mut c, mut d) = (lane(state[0]), lane(state[1]), lane(state[2]), lane(state[3]));
    for block in blocks.chunks_exact(64) {
        let (a0, b0, c0, d0) = (a, b, c, d);
        four!(F, a, b, c, d, block, 0, 7, 12, 17, 22);
        four!(F, a, b, c, d, block, 4, 7, 12, 17, 22);
        four!(F, a, b, c, d, block, 8, 7, 12, 17, 22);
        four!(F, a, b, c, d, block, 12, 7, 12, 17, 22);
        four!(G, a, b, c, d, block, 16, 5, 9, 14, 20);
        four!(G, a, b, c, d, block, 20, 5, 9, 14, 20);
        four!(G, a, b, c, d, block, 24, 5, 9, 14, 20);
        four!(G, a, b, c, d, block, 28, 5, 9, 14, 20);
        four!(H, a, b, c, d, block, 32, 4, 11, 16, 23);
        four!(H, a, b, c, d, block, 36, 4, 11, 16, 23);
        four!(H, a, b, c, d, block, 40, 4, 11, 16, 23);
        four!(H, a, b, c, d, block, 44, 4, 11, 16, 23);
        four!(I, a, b, c, d, block, 48, 6, 10, 15, 21);
        four!(I, a, b, c, d, block, 52, 6, 10, 15, 21);
        four!(I, a, b, c, d, block, 56, 6, 10, 15, 21);
        four!(I, a, b, c, d, block, 60, 6, 10, 15, 21);
        a = _mm_add_epi32(a, a0);
        b = _mm_add_epi32(b, b0);
        c = _mm_add_epi32(c, c0);
        d = _mm_add_epi32(d, d0);
    }
    *state = [a, b, c, d].map(|x| _mm_cvtsi128_si32(x) as u32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Digest;
    use proptest::prelude::*;

    /// The truth tables above, from the functions' definitions.
    #[test]
    fn the_truth_tables_are_the_rfc_functions() {
        let table =
            |f: fn(bool, bool, bool) -> bool| -> u8 { (0..8).filter(|i| f(i & 4 != 0, i & 2 != 0, i & 1 != 0)).map(|i| 1u8 << i).sum() };
        assert_eq!(table(|b, c, d| if b { c } else { d }), F);
        assert_eq!(table(|b, c, d| if d { b } else { c }), G);
        assert_eq!(table(|b, c, d| b ^ c ^ d), H);
        assert_eq!(table(|b, c, d| c ^ (b || !d)), I);
    }

    /// RFC 1321, appendix A.5, on the fast path where this CPU has it (the
    /// bench machines so far all have; elsewhere `new` is `None` and the
    /// caller's fallback is tested in `hashes`).
    #[test]
    fn it_gives_the_rfc_answers() {
        assert_eq!(Md5Avx512::new().is_some(), supported());
        let Some(fresh) = Md5Avx512::new() else {
            eprintln!("no AVX-512F/VL on this CPU: the fast MD5 is not used here");
            return;
        };
        let hex = |data: &[u8]| {
            let mut m = fresh.clone();
            m.update(data);
            hex::encode(m.finish())
        };
        assert_eq!(hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    proptest! {
        /// Any bytes, cut into updates anywhere (a partial block carried
        /// over, lengths either side of the 56-byte padding boundary), give
        /// the md-5 crate's digest.
        #[test]
        fn any_bytes_in_any_pieces_give_the_reference_md5(data in proptest::collection::vec(any::<u8>(), 0..700), cuts in proptest::collection::vec(0usize..700, 0..6)) {
            let Some(mut m) = Md5Avx512::new() else { return Ok(()) };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut from = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                m.update(&data[from..c]);
                from = c;
            }
            prop_assert_eq!(m.finish()[..].to_vec(), md5::Md5::digest(&data).to_vec());
        }
    }
}
