//! BLAKE3 outboards: the chaining values (CVs) of an input's BLAKE3 tree at a
//! fixed block size, kept beside the bytes so that one block can be checked
//! against the input's hash without reading the others.
//!
//! BLAKE3 is a binary tree over 1 KiB chunks; every aligned power-of-two run of
//! chunks is a subtree whose CV depends only on its bytes and its offset. With
//! blocks of `BLOCK_LEN` bytes (a power of two, so each block is such a
//! subtree), the hash of the whole input is the tree of the block CVs merged
//! pairwise, left-complete, exactly as `blake3::hash` does it; so:
//! - a reader verifies a block by hashing just that block at its offset and
//!   comparing the CV (after checking once that the CVs merge to the id);
//! - a writer that changed a few blocks re-hashes just those and merges the
//!   CVs again (one compression per parent: ~16 K for a 4 GiB file).
//!
//! The hash stays the plain BLAKE3 of the bytes (what `b3sum` prints). The
//! `hazmat` API of the blake3 crate gives the block CVs and the merges.
//!
//! Block size, 256 KiB: a 1 MiB random read then reads and hashes at most
//! 1.5 MiB (on average 1.25 MiB) instead of the whole 4-16 MiB chunk, and the
//! outboard of a 4 MiB chunk is 16 CVs (512 bytes, 0.012% of the data), small
//! enough to keep in the catalog for every chunk. 64 KiB blocks would cut the
//! read amplification to 1.06x but quadruple the catalog rows' size.

use super::objects::Hash;
use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};

/// log2 of the block size of every outboard this version writes.
pub const BLOCK_LOG: u32 = 18;
/// The block size of every outboard this version writes (256 KiB).
pub const BLOCK_LEN: u64 = 1 << BLOCK_LOG;

/// One block's chaining value.
pub type Cv = ChainingValue;

/// How many blocks an input of `len` bytes has (0 for an empty input).
pub fn block_count(len: u64) -> usize {
    len.div_ceil(BLOCK_LEN) as usize
}

/// True when an input of `len` bytes has an outboard at all: a single block is
/// its own root (no CV to store; verify it by hashing it whole).
pub fn has_blocks(len: u64) -> bool {
    len > BLOCK_LEN
}

/// The CV of the block starting at `offset` (a multiple of `BLOCK_LEN`) of an
/// input with more than one block.
pub fn block_cv(block: &[u8], offset: u64) -> Cv {
    debug_assert!(offset.is_multiple_of(BLOCK_LEN) && block.len() as u64 <= BLOCK_LEN && !block.is_empty());
    let mut h = blake3::Hasher::new();
    h.set_input_offset(offset);
    h.update(block);
    h.finalize_non_root()
}

/// The hash of `data` and its block CVs, from one pass over the bytes (empty
/// when `data` is a single block). The hash equals `blake3::hash(data)`.
pub fn hash_with_outboard(data: &[u8]) -> (Hash, Vec<Cv>) {
    if !has_blocks(data.len() as u64) {
        return (Hash::of(data), Vec::new());
    }
    let cvs: Vec<Cv> = data.chunks(BLOCK_LEN as usize).enumerate().map(|(i, b)| block_cv(b, i as u64 * BLOCK_LEN)).collect();
    (root_of(&cvs), cvs)
}

/// The root hash of an input from its block CVs (at least two).
pub fn root_of(cvs: &[Cv]) -> Hash {
    debug_assert!(cvs.len() >= 2);
    if cvs.len() < 2 {
        // Not an outboard (callers check `has_blocks`); no CV is a root.
        return Hash([0; 32]);
    }
    let split = left_blocks(cvs.len());
    let (l, r) = (merge(&cvs[..split]), merge(&cvs[split..]));
    Hash(*merge_subtrees_root(&l, &r, Mode::Hash).as_bytes())
}

/// How many of `n` (>= 2) blocks the left subtree holds: BLAKE3's tree is
/// left-complete, its left subtree the largest power of two below `n`.
fn left_blocks(n: usize) -> usize {
    n.next_power_of_two() / 2
}

fn merge(cvs: &[Cv]) -> Cv {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let split = left_blocks(cvs.len());
    merge_subtrees_non_root(&merge(&cvs[..split]), &merge(&cvs[split..]), Mode::Hash)
}

/// True when `cvs` is the outboard of an input of `len` bytes hashing to `id`.
pub fn matches(id: &Hash, len: u64, cvs: &[Cv]) -> bool {
    has_blocks(len) && cvs.len() == block_count(len) && root_of(cvs) == *id
}

/// CVs as the bytes the catalog stores (32 each, in order).
pub fn encode(cvs: &[Cv]) -> Vec<u8> {
    cvs.concat()
}

/// CVs back from `encode`'s bytes; None if the length is not a multiple of 32.
pub fn decode(bytes: &[u8]) -> Option<Vec<Cv>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    Some(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
}

/// Builds a stream's hash and outboard as its bytes arrive in order, hashing
/// each byte once (ingest's whole-file hash).
pub struct StreamingOutboard {
    block: blake3::Hasher,
    in_block: u64,
    pos: u64,
    cvs: Vec<Cv>,
}

impl Default for StreamingOutboard {
    fn default() -> Self {
        StreamingOutboard { block: blake3::Hasher::new(), in_block: 0, pos: 0, cvs: Vec::new() }
    }
}

impl StreamingOutboard {
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.in_block == BLOCK_LEN {
                // A full block with more bytes after it: it is not the root.
                self.cvs.push(self.block.finalize_non_root());
                self.block = blake3::Hasher::new();
                self.block.set_input_offset(self.pos);
                self.in_block = 0;
            }
            let n = ((BLOCK_LEN - self.in_block) as usize).min(data.len());
            self.block.update(&data[..n]);
            self.in_block += n as u64;
            self.pos += n as u64;
            data = &data[n..];
        }
    }

    /// The stream's hash (its plain BLAKE3) and outboard (empty for one block).
    pub fn finalize(mut self) -> (Hash, Vec<Cv>) {
        if self.cvs.is_empty() {
            return (Hash(*self.block.finalize().as_bytes()), Vec::new());
        }
        self.cvs.push(self.block.finalize_non_root());
        (root_of(&self.cvs), self.cvs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
    }

    #[test]
    fn the_outboard_root_is_the_plain_blake3_at_every_shape_of_tree() {
        let b = BLOCK_LEN as usize;
        for n in [0, 1, 1024, b - 1, b, b + 1, 2 * b, 3 * b - 7, 4 * b, 5 * b + 1, 7 * b, 8 * b + 3] {
            let data = bytes(n);
            let (h, cvs) = hash_with_outboard(&data);
            assert_eq!(h, Hash::of(&data), "len {n}");
            assert_eq!(cvs.len(), if n > b { block_count(n as u64) } else { 0 }, "len {n}");
            if has_blocks(n as u64) {
                assert!(matches(&h, n as u64, &cvs));
            }
            // Streaming, in uneven pieces, gives the same.
            let mut s = StreamingOutboard::default();
            for piece in data.chunks(100_003) {
                s.update(piece);
            }
            assert_eq!(s.finalize(), (h, cvs), "len {n}");
        }
    }

    #[test]
    fn a_changed_block_changes_only_its_cv_and_the_merge_gives_the_new_hash() {
        let b = BLOCK_LEN as usize;
        let mut data = bytes(5 * b + 100);
        let (_, mut cvs) = hash_with_outboard(&data);
        data[3 * b + 17] ^= 1;
        cvs[3] = block_cv(&data[3 * b..4 * b], 3 * BLOCK_LEN);
        assert_eq!(root_of(&cvs), Hash::of(&data));
        assert_eq!(decode(&encode(&cvs)).unwrap(), cvs);
    }
}
