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

/// A chunk's head: its first `HEAD_LEN` bytes, which a server's first piece
/// reads and checks on their own (`head_proof`), instead of the whole first
/// block. 16 KiB: a cold read of it took 0.2-0.4 ms here against 0.6-1.1 ms
/// for the 256 KiB block, and its proof is one CV per tree level above it
/// (8 CVs, 256 bytes, for a 4 MiB chunk).
pub const HEAD_LOG: u32 = 14;
pub const HEAD_LEN: u64 = 1 << HEAD_LOG;

/// The subtrees along the left edge of an input of `len` (> `HEAD_LEN`)
/// bytes from its head up to its root, bottom first: each is `(left, end)`,
/// a node [0, end) whose left child is [0, left), so its right child
/// [left, end) is the sibling a head's proof holds at that level.
fn left_edge(len: u64) -> Vec<(u64, u64)> {
    let mut edge = Vec::new();
    let mut end = len;
    while end > HEAD_LEN {
        let left = blake3::hazmat::left_subtree_len(end);
        edge.push((left, end));
        end = left;
    }
    edge.reverse();
    edge
}

/// The CVs that check an input's head against its hash: the right sibling
/// of each subtree on the left edge, bottom first. `cvs` is the input's
/// outboard (`hash_with_outboard`): siblings of whole blocks are merged from
/// it, only those inside the first block are hashed. Empty when the input
/// is no longer than its head (hash it whole).
pub fn head_proof(data: &[u8], cvs: &[Cv]) -> Vec<Cv> {
    let len = data.len() as u64;
    if len <= HEAD_LEN {
        return Vec::new();
    }
    left_edge(len)
        .into_iter()
        .map(|(left, end)| {
            if left >= BLOCK_LEN && cvs.len() == block_count(len) {
                merge(&cvs[(left / BLOCK_LEN) as usize..end.div_ceil(BLOCK_LEN) as usize])
            } else {
                let mut h = blake3::Hasher::new();
                h.set_input_offset(left);
                h.update(&data[left as usize..end as usize]);
                h.finalize_non_root()
            }
        })
        .collect()
}

/// True when `head` (the first `HEAD_LEN` bytes of an input of `len` bytes)
/// and `proof` hash to `id`: the head's bytes are then the input's.
pub fn head_matches(id: &Hash, len: u64, head: &[u8], proof: &[Cv]) -> bool {
    let edge = left_edge(len);
    if len <= HEAD_LEN || head.len() as u64 != HEAD_LEN || proof.len() != edge.len() {
        return false;
    }
    let mut h = blake3::Hasher::new();
    h.update(head);
    let mut cv = h.finalize_non_root();
    let (top, below) = proof.split_last().unwrap_or((&[0; 32], &[]));
    for sibling in below {
        cv = merge_subtrees_non_root(&cv, sibling, Mode::Hash);
    }
    merge_subtrees_root(&cv, top, Mode::Hash).as_bytes() == &id.0
}

/// The root of a BLAKE3 tree built from its block CVs as they arrive, holding
/// only one CV per tree level (at most 64), never the whole list: BLAKE3's own
/// lazy-merge scheme. A CV is merged into its left neighbours only when the
/// next one arrives, so every merge before `root` is known not to be the root,
/// and `root` folds what is left right to left, the last merge the root one.
#[derive(Default)]
pub struct MergeStack {
    stack: Vec<Cv>,
    count: u64,
}

impl MergeStack {
    /// Add the next block's CV.
    pub fn push(&mut self, cv: Cv) {
        // The blocks before this one form popcount(count) complete subtrees.
        let keep = self.count.count_ones() as usize;
        while self.stack.len() > keep {
            let (Some(r), Some(l)) = (self.stack.pop(), self.stack.pop()) else { break };
            self.stack.push(merge_subtrees_non_root(&l, &r, Mode::Hash));
        }
        self.stack.push(cv);
        self.count += 1;
    }

    /// How many CVs were pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The root hash of the pushed CVs (at least two; None otherwise: a
    /// single block is its own root and has no outboard).
    pub fn root(mut self) -> Option<Hash> {
        if self.count < 2 {
            return None;
        }
        let mut right = self.stack.pop()?;
        while self.stack.len() > 1 {
            let left = self.stack.pop()?;
            right = merge_subtrees_non_root(&left, &right, Mode::Hash);
        }
        let left = self.stack.pop()?;
        Some(Hash(*merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()))
    }
}

/// CVs a catalog piece holds (1 MiB of CVs, 8 GiB of file): the unit in which
/// a file's outboard is kept in memory, spilled, stored and read back.
pub const PIECE_CVS: usize = 1 << 15;

/// A file's block CVs as ingest produced them: at most one piece in memory,
/// the full pieces before it in an unnamed temporary file (gone when this is
/// dropped), so a 1 TiB file costs 1 MiB of memory here, not 128 MiB.
pub struct SpooledCvs {
    spill: Option<std::fs::File>,
    spill_dir: Option<std::path::PathBuf>,
    spilled: usize,
    tail: Vec<Cv>,
    /// How many CVs may be held before they spill (one piece; less in tests).
    bound: usize,
    error: Option<std::io::Error>,
}

impl SpooledCvs {
    /// CVs beyond one piece go to a temporary file in `spill_dir` (the
    /// archive's own disk: /tmp may be a small tmpfs); without a folder they
    /// stay in memory (callers that know the input is small).
    pub fn new(spill_dir: Option<std::path::PathBuf>) -> Self {
        Self::with_bound(spill_dir, PIECE_CVS)
    }

    fn with_bound(spill_dir: Option<std::path::PathBuf>, bound: usize) -> Self {
        SpooledCvs { spill: None, spill_dir, spilled: 0, tail: Vec::new(), bound: bound.max(1), error: None }
    }

    /// Add the next CV (spilling the held ones first when at the bound).
    pub fn push(&mut self, cv: Cv) {
        if self.tail.len() >= self.bound && self.spill_dir.is_some() {
            if let Err(e) = self.spill_tail() {
                // Kept to be returned by `StreamingOutboard::finish`; the
                // CVs stay in memory meanwhile, so nothing is lost.
                self.error.get_or_insert(e);
                self.spill_dir = None;
            }
        }
        self.tail.push(cv);
    }

    fn spill_tail(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        let file = match &mut self.spill {
            Some(f) => f,
            None => {
                let dir = self.spill_dir.as_deref().unwrap_or(std::path::Path::new("."));
                self.spill.insert(tempfile::tempfile_in(dir)?)
            }
        };
        let mut w = std::io::BufWriter::new(file);
        for cv in &self.tail {
            w.write_all(cv)?;
        }
        w.flush()?;
        self.spilled += self.tail.len();
        self.tail.clear();
        Ok(())
    }

    /// How many CVs there are.
    pub fn len(&self) -> usize {
        self.spilled + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many CVs are held in memory now (never more than one piece when
    /// spilling is possible).
    pub fn held_in_memory(&self) -> usize {
        self.tail.len()
    }

    /// Hand every piece of `PIECE_CVS` CVs (the last may be shorter), in
    /// order, to `f`, reading spilled CVs back a piece at a time.
    pub fn for_each_piece<E: From<std::io::Error>>(&mut self, mut f: impl FnMut(usize, &[Cv]) -> Result<(), E>) -> Result<(), E> {
        use std::io::{Read, Seek};
        let mut index = 0;
        let mut piece: Vec<Cv> = Vec::new();
        if let Some(file) = &mut self.spill {
            file.seek(std::io::SeekFrom::Start(0))?;
            let mut r = std::io::BufReader::new(file);
            for _ in 0..self.spilled {
                let mut cv = [0u8; 32];
                r.read_exact(&mut cv)?;
                piece.push(cv);
                if piece.len() == PIECE_CVS {
                    f(index, &piece)?;
                    index += 1;
                    piece.clear();
                }
            }
        }
        for cv in &self.tail {
            piece.push(*cv);
            if piece.len() == PIECE_CVS {
                f(index, &piece)?;
                index += 1;
                piece.clear();
            }
        }
        if !piece.is_empty() {
            f(index, &piece)?;
        }
        Ok(())
    }

    /// Every CV in one list (for inputs known to be small, and tests).
    pub fn to_vec(&mut self) -> std::io::Result<Vec<Cv>> {
        let mut all = Vec::with_capacity(self.len());
        self.for_each_piece(|_, p| {
            all.extend_from_slice(p);
            Ok::<(), std::io::Error>(())
        })?;
        Ok(all)
    }
}

/// Builds a stream's hash and outboard as its bytes arrive in order, hashing
/// each byte once (ingest's whole-file hash). The root is merged as blocks
/// finish and the CVs go to a `SpooledCvs`, so memory stays bounded at any
/// length.
pub struct StreamingOutboard {
    block: blake3::Hasher,
    in_block: u64,
    pos: u64,
    stack: MergeStack,
    cvs: SpooledCvs,
}

impl Default for StreamingOutboard {
    /// Everything in memory: for inputs known to be small.
    fn default() -> Self {
        Self::spilling_to(None)
    }
}

impl StreamingOutboard {
    /// CVs beyond one piece spill to an unnamed file in `dir` (see `SpooledCvs`).
    pub fn spilling_to(dir: Option<std::path::PathBuf>) -> Self {
        Self::with_cvs(SpooledCvs::new(dir))
    }

    fn with_cvs(cvs: SpooledCvs) -> Self {
        StreamingOutboard { block: blake3::Hasher::new(), in_block: 0, pos: 0, stack: MergeStack::default(), cvs }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.in_block == BLOCK_LEN {
                // A full block with more bytes after it: it is not the root.
                self.finish_block();
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

    fn finish_block(&mut self) {
        let cv = self.block.finalize_non_root();
        self.stack.push(cv);
        self.cvs.push(cv);
    }

    /// How many CVs this holds in memory now (the merge stack's at most 64
    /// plus the unspilled piece).
    pub fn held_in_memory(&self) -> usize {
        self.stack.stack.len() + self.cvs.held_in_memory()
    }

    /// The stream's hash (its plain BLAKE3) and outboard (empty for one
    /// block); an error if the spill file could not be written.
    pub fn finish(mut self) -> std::io::Result<(Hash, SpooledCvs)> {
        if self.stack.count() == 0 {
            return Ok((Hash(*self.block.finalize().as_bytes()), self.cvs));
        }
        self.finish_block();
        if let Some(e) = self.cvs.error.take() {
            return Err(e);
        }
        let root = self.stack.root().ok_or_else(|| std::io::Error::other("internal: outboard of fewer than two blocks"))?;
        Ok((root, self.cvs))
    }

    /// `finish` with the CVs in one list.
    #[cfg(test)]
    pub fn finalize(self) -> (Hash, Vec<Cv>) {
        self.finish().and_then(|(h, mut c)| Ok((h, c.to_vec()?))).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
    }

    #[test]
    fn a_head_and_its_proof_hash_to_the_input_at_every_shape_of_tree() {
        let (h, b) = (HEAD_LEN as usize, BLOCK_LEN as usize);
        for n in [h + 1, h + 1023, 2 * h, 3 * h + 5, b - 1, b, b + 1, 2 * b + 77, 4 * b, 16 * b + 1, 22 * b - 9, 64 * b] {
            let data = bytes(n);
            let (id, cvs) = hash_with_outboard(&data);
            assert_eq!(id, Hash::of(&data));
            let proof = head_proof(&data, &cvs);
            assert_eq!(proof.len(), left_edge(n as u64).len(), "{n}");
            // Merged from the outboard or hashed from the bytes: the same CVs.
            assert_eq!(proof, head_proof(&data, &[]), "{n}");
            assert!(head_matches(&id, n as u64, &data[..h], &proof), "{n}");
            let mut flipped = data[..h].to_vec();
            flipped[h / 2] ^= 1;
            assert!(!head_matches(&id, n as u64, &flipped, &proof), "{n}: a flipped byte passed");
            let mut forged = proof.clone();
            forged[0][0] ^= 1;
            assert!(!head_matches(&id, n as u64, &data[..h], &forged), "{n}: a forged CV passed");
        }
        assert!(head_proof(&bytes(h), &[]).is_empty());
        assert!(!head_matches(&Hash::of(&bytes(h)), h as u64, &bytes(h), &[]));
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

    fn random_cvs(n: usize, seed: u64) -> Vec<Cv> {
        (0..n as u64).map(|i| *blake3::hash(&(i ^ (seed << 32)).to_le_bytes()).as_bytes()).collect()
    }

    #[test]
    fn the_merge_stack_gives_the_plain_blake3_for_every_block_count_with_odd_tails() {
        let b = BLOCK_LEN as usize;
        let data = bytes(24 * b + 1);
        for blocks in 2..=24usize {
            for tail in [1, 1023, 1024, 1025, b / 2 + 7, b] {
                let len = (blocks - 1) * b + tail;
                let mut m = MergeStack::default();
                for (i, blk) in data[..len].chunks(b).enumerate() {
                    m.push(block_cv(blk, (i * b) as u64));
                }
                assert_eq!(m.root(), Some(Hash::of(&data[..len])), "{blocks} blocks, tail {tail}");
            }
        }
    }

    #[test]
    fn the_merge_stack_matches_root_of_at_every_block_count_up_to_1100() {
        let cvs = random_cvs(1100, 7);
        for n in 2..=1100 {
            let mut m = MergeStack::default();
            cvs[..n].iter().for_each(|cv| m.push(*cv));
            assert_eq!(m.count(), n as u64);
            assert_eq!(m.root(), Some(root_of(&cvs[..n])), "{n} blocks");
        }
        let mut one = MergeStack::default();
        one.push(cvs[0]);
        assert_eq!(one.root(), None, "a single block has no outboard root");
    }

    proptest::proptest! {
        #[test]
        fn the_merge_stack_matches_root_of_for_any_block_count(n in 2usize..5000, seed in 0u64..1000) {
            let cvs = random_cvs(n, seed);
            let mut m = MergeStack::default();
            cvs.iter().for_each(|cv| m.push(*cv));
            proptest::prop_assert_eq!(m.root(), Some(root_of(&cvs)));
        }
    }

    /// Ingest's outboard of a many-block stream, with CVs spilling past a
    /// bound of 64: never more than the bound (plus the merge stack's one per
    /// level) in memory, and the same hash and CVs as the one-shot outboard.
    #[test]
    fn a_many_block_stream_holds_no_more_than_the_bound_in_memory_and_equals_the_one_shot_outboard() {
        let dir = tempfile::tempdir().unwrap();
        let bound = 64;
        let data = bytes(1000 * BLOCK_LEN as usize + 12_345);
        let mut s = StreamingOutboard::with_cvs(SpooledCvs::with_bound(Some(dir.path().into()), bound));
        let mut most = 0;
        for piece in data.chunks(1 << 20) {
            s.update(piece);
            most = most.max(s.held_in_memory());
        }
        assert!(most <= bound + 1 + 11, "held {most} CVs; bound {bound}, merge stack at most 11 for 1001 blocks");
        let (h, mut cvs) = s.finish().unwrap();
        assert!(cvs.held_in_memory() <= bound + 1);
        assert_eq!(cvs.len(), 1001);
        assert_eq!((h, cvs.to_vec().unwrap()), hash_with_outboard(&data));
        // The spill file is unnamed: nothing is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn spooled_cvs_come_back_in_full_pieces_in_order_whatever_was_spilled() {
        let dir = tempfile::tempdir().unwrap();
        let all = random_cvs(2 * PIECE_CVS + 100, 3);
        let mut sp = SpooledCvs::new(Some(dir.path().into()));
        for cv in &all {
            sp.push(*cv);
            assert!(sp.held_in_memory() <= PIECE_CVS);
        }
        let mut pieces = Vec::new();
        sp.for_each_piece(|i, p| {
            pieces.push((i, p.len()));
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
        assert_eq!(pieces, vec![(0, PIECE_CVS), (1, PIECE_CVS), (2, 100)]);
        assert_eq!(sp.to_vec().unwrap(), all);
    }
}
