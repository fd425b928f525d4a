//! A file's content id from its bytes and its zero runs, without reading the
//! zeros from anywhere.
//!
//! The id is the file's BLAKE3, exactly what `b3sum` prints, whenever its zero
//! runs total at most `EXACT_ZERO_BYTES`: those zeros are fed to the hasher from
//! a static buffer (compute only, no I/O, a few GB/s).
//!
//! Beyond that, an exact BLAKE3 cannot be cheap: BLAKE3 mixes each 1 KiB
//! chunk's index into its chaining value, so no two zero chunks of a file hash
//! alike and the subtree values of a zero run cannot be cached or combined in
//! less than O(bytes) (the `hazmat` API merges subtrees, but each leaf still
//! needs its own compression). A 999999999999999-byte hole (pjdfstest's
//! ftruncate) would take days. So a file with more zero-run bytes gets a
//! *layout id* instead: BLAKE3 in derive-key mode (domain-separated from plain
//! BLAKE3, so it never equals any file's b3sum) over its segments in order,
//! each maximal data segment as `D`, length, BLAKE3 of its bytes, and each
//! maximal zero run as `Z`, length. It costs O(data bytes + extents), is
//! stable for the same bytes and holes (chunk boundaries do not matter), and
//! the same function is used by commit, restore and check, so verification
//! still covers every stored byte. The limit is part of the format: changing
//! it changes ids.

use super::objects::Hash;

/// Zero-run bytes per file hashed exactly (as zeros) before the layout id is used.
pub const EXACT_ZERO_BYTES: u64 = 1 << 30;

const LAYOUT_ID_CONTEXT: &str = "reelfs 2026-11-29 sparse file layout id v1";

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// True when a committed blob's id is the plain BLAKE3 of its bytes, false
/// for a layout id (more than `EXACT_ZERO_BYTES` in zero runs), so that what
/// is shown as `blake3:` is one.
pub fn is_plain_blake3(cat: &super::catalog::Catalog, blob: &Hash) -> super::Result<bool> {
    Ok(cat.zero_run_bytes(blob)? <= EXACT_ZERO_BYTES)
}

/// How a content id is written for people and tools: `blake3:HEX` when it is
/// the file's BLAKE3, `reelfs-layout:HEX` when it is a layout id.
pub fn label(id: &Hash, plain_blake3: bool) -> String {
    if plain_blake3 {
        format!("blake3:{id}")
    } else {
        format!("reelfs-layout:{id}")
    }
}

pub struct ContentHasher {
    kind: Kind,
}

enum Kind {
    Exact(Box<blake3::Hasher>),
    Layout { layout: Box<blake3::Hasher>, data: Option<(Box<blake3::Hasher>, u64)>, zeros: u64 },
}

impl ContentHasher {
    /// A hasher for a file with `zero_run_bytes` bytes in zero runs (which
    /// decides, with `EXACT_ZERO_BYTES`, which id it gets).
    pub fn new(zero_run_bytes: u64) -> ContentHasher {
        let kind = if zero_run_bytes <= EXACT_ZERO_BYTES {
            Kind::Exact(Box::new(blake3::Hasher::new()))
        } else {
            Kind::Layout { layout: Box::new(blake3::Hasher::new_derive_key(LAYOUT_ID_CONTEXT)), data: None, zeros: 0 }
        };
        ContentHasher { kind }
    }

    /// True when the id is the plain BLAKE3 of the bytes (what `b3sum` prints).
    pub fn is_exact(&self) -> bool {
        matches!(self.kind, Kind::Exact(_))
    }

    /// The next bytes of the file that are stored data.
    pub fn data(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match &mut self.kind {
            Kind::Exact(h) => {
                h.update(bytes);
            }
            Kind::Layout { layout, data, zeros } => {
                end_zeros(layout, zeros);
                let (h, n) = data.get_or_insert_with(|| (Box::new(blake3::Hasher::new()), 0));
                h.update(bytes);
                *n += bytes.len() as u64;
            }
        }
    }

    /// The next `n` bytes of the file are a zero run.
    pub fn zeros(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        match &mut self.kind {
            Kind::Exact(h) => {
                let mut left = n;
                while left > 0 {
                    let k = left.min(ZEROS.len() as u64) as usize;
                    h.update(&ZEROS[..k]);
                    left -= k as u64;
                }
            }
            Kind::Layout { layout, data, zeros } => {
                end_data(layout, data);
                *zeros = zeros.saturating_add(n);
            }
        }
    }

    pub fn finalize(self) -> Hash {
        match self.kind {
            Kind::Exact(h) => h.finalize().into(),
            Kind::Layout { mut layout, mut data, mut zeros } => {
                end_data(&mut layout, &mut data);
                end_zeros(&mut layout, &mut zeros);
                layout.finalize().into()
            }
        }
    }
}

fn end_data(layout: &mut blake3::Hasher, data: &mut Option<(Box<blake3::Hasher>, u64)>) {
    if let Some((h, n)) = data.take() {
        layout.update(b"D");
        layout.update(&n.to_le_bytes());
        layout.update(h.finalize().as_bytes());
    }
}

fn end_zeros(layout: &mut blake3::Hasher, zeros: &mut u64) {
    if *zeros > 0 {
        layout.update(b"Z");
        layout.update(&zeros.to_le_bytes());
        *zeros = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_holes_give_the_plain_blake3_of_the_bytes() {
        let mut bytes = vec![7u8; 5000];
        bytes.extend(std::iter::repeat_n(0u8, 300_000));
        bytes.extend_from_slice(b"tail");
        let mut h = ContentHasher::new(300_000);
        assert!(h.is_exact());
        h.data(&bytes[..5000]);
        h.zeros(300_000);
        h.data(b"tail");
        assert_eq!(h.finalize(), Hash::of(&bytes));
    }

    #[test]
    fn huge_holes_get_a_layout_id_that_ignores_how_data_was_split() {
        let big = EXACT_ZERO_BYTES + 1;
        let id = |parts: &[&[u8]]| {
            let mut h = ContentHasher::new(big);
            assert!(!h.is_exact());
            for p in parts {
                h.data(p);
            }
            h.zeros(big - 10);
            h.zeros(10);
            h.data(b"end");
            h.finalize()
        };
        assert_eq!(id(&[b"abc", b"def"]), id(&[b"abcdef"]));
        assert_ne!(id(&[b"abcdef"]), id(&[b"abcdeg"]));
        // A hole of another length is another file.
        let mut h = ContentHasher::new(big);
        h.data(b"abcdef");
        h.zeros(big + 1);
        h.data(b"end");
        assert_ne!(h.finalize(), id(&[b"abcdef"]));
    }
}
