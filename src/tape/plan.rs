//! Laying a selection of files out over cartridges, in write order.
//!
//! Pure arithmetic: no archive, no catalog. The input is the files in the order
//! they will be written (folder by folder); the output is, per cartridge, the
//! files or parts of files it holds. Rules:
//! - a cartridge holds at most its usable bytes (native capacity less a reserve
//!   for LTFS indexes and the set catalog written last);
//! - a folder that does not fit in the space left but fits on an empty
//!   cartridge starts the next one, when the space it leaves unused is under a
//!   quarter of a cartridge (keeping a folder on one tape is worth that much,
//!   not more);
//! - a file larger than the space left is split: the first part fills this
//!   cartridge, the rest goes on the next (as many as it takes); parts are
//!   named `NAME.part001of003` and `cat` of them in order gives the file;
//! - no part is made smaller than `min_part`: a smaller space left is skipped.

/// LTO generations reelfs knows: (name, native capacity in bytes, barcode suffix).
pub const GENERATIONS: &[(&str, u64, &str)] = &[
    ("LTO-5", 1_500_000_000_000, "L5"),
    ("LTO-6", 2_500_000_000_000, "L6"),
    ("LTO-7", 6_000_000_000_000, "L7"),
    ("LTO-8", 12_000_000_000_000, "L8"),
    ("LTO-9", 18_000_000_000_000, "L9"),
];

/// Bytes kept free on each cartridge for LTFS indexes (the index partition,
/// indexes written at intervals on the data partition) and the catalog and
/// MHL written last: 3% of native capacity, as LTFS-formatted LTO-8 shows
/// about 11.6 TB of 12. Tiny test capacities keep at least 64 KiB.
pub fn index_reserve(capacity: u64) -> u64 {
    (capacity / 100 * 3).max(64 << 10).min(capacity / 2)
}

/// A size as tape makers count it: decimal units (`12T` = 12 000 000 000 000
/// bytes, as LTO-8's "12 TB native"); `KiB`/`MiB`/`GiB`/`TiB` are binary.
pub fn parse_capacity(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim().to_ascii_uppercase());
    let mult: u64 = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "T" | "TB" => 1_000_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        "TIB" => 1 << 40,
        _ => return Err(format!("'{s}' is not a capacity: give a size like 12T, 2.5T or 800G (decimal, as tape makers count)")),
    };
    let n: f64 = num.parse().map_err(|_| format!("'{s}' is not a capacity: give a size like 12T, 2.5T or 800G"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("'{s}': a capacity must be more than zero"));
    }
    let bytes = n * mult as f64;
    if bytes < (128 << 10) as f64 || bytes > 1e18 {
        return Err(format!("'{s}': a cartridge capacity must be between 128K and 1000P"));
    }
    Ok(bytes as u64)
}

/// One file to lay out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    /// Where it goes on the cartridge (relative, `/`-separated).
    pub tape_path: String,
    pub size: u64,
}

impl PlanFile {
    fn folder(&self) -> &str {
        self.tape_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }
}

/// A file, or a part of one, on a cartridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Index of the file in the planner's input.
    pub file: usize,
    pub offset: u64,
    pub length: u64,
    /// 1-based part number and number of parts (1 of 1 for a whole file).
    pub part: u32,
    pub parts: u32,
}

/// The name a part has on tape: `A001C003.mov.part002of003` (a whole file keeps its name).
pub fn part_name(tape_path: &str, part: u32, parts: u32) -> String {
    if parts <= 1 {
        tape_path.to_string()
    } else {
        format!("{tape_path}.part{part:03}of{parts:03}")
    }
}

/// The file a part's name belongs to (the inverse of `part_name`).
pub fn whole_name(tape_path: &str, part: u32, parts: u32) -> String {
    let suffix = format!(".part{part:03}of{parts:03}");
    tape_path.strip_suffix(&suffix).unwrap_or(tape_path).to_string()
}

/// The planner's settings.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Bytes a cartridge may hold.
    pub usable: u64,
    /// Smallest part worth cutting (a smaller space left is skipped).
    pub min_part: u64,
}

impl Layout {
    pub fn for_capacity(capacity: u64) -> Layout {
        let usable = capacity - index_reserve(capacity);
        Layout { usable, min_part: (64u64 << 20).min(usable / 16).max(1) }
    }
}

/// Lay `files` (in write order) out over cartridges. Returns each cartridge's
/// segments in write order.
pub fn lay_out(files: &[PlanFile], layout: Layout) -> Vec<Vec<Segment>> {
    let cap = layout.usable.max(1);
    let mut tapes: Vec<Vec<Segment>> = vec![Vec::new()];
    let mut used = 0u64;
    let mut i = 0;
    while i < files.len() {
        let folder = files[i].folder();
        let end = files[i..].iter().position(|f| f.folder() != folder).map(|n| i + n).unwrap_or(files.len());
        let total: u64 = files[i..end].iter().map(|f| f.size).sum();
        let left = cap - used;
        if used > 0 && total > left && total <= cap && left < cap / 4 {
            tapes.push(Vec::new());
            used = 0;
        }
        for (idx, f) in files.iter().enumerate().take(end).skip(i) {
            let mut offset = 0u64;
            let mut pieces: Vec<(usize, u64, u64)> = Vec::new();
            loop {
                let left = cap - used;
                let rest = f.size - offset;
                if rest <= left {
                    pieces.push((tapes.len() - 1, offset, rest));
                    used += rest;
                    break;
                }
                if left >= layout.min_part.min(cap) {
                    pieces.push((tapes.len() - 1, offset, left));
                    offset += left;
                }
                tapes.push(Vec::new());
                used = 0;
            }
            let parts = pieces.len() as u32;
            for (n, (t, offset, length)) in pieces.into_iter().enumerate() {
                tapes[t].push(Segment { file: idx, offset, length, part: n as u32 + 1, parts });
            }
        }
        i = end;
    }
    if tapes.last().is_some_and(|t| t.is_empty()) && tapes.len() > 1 {
        tapes.pop();
    }
    tapes
}

/// A barcode as LTO labels print it: a pool letter, five digits, and the
/// generation (`A00001L8`). The LTFS volume serial is its first six characters.
pub fn barcode(letter: char, number: u32, suffix: &str) -> String {
    format!("{letter}{number:05}{suffix}")
}

/// Whether `s` is a barcode reelfs would give or accept: six of [0-9A-Z]
/// (the volume serial `mkltfs -s` takes) then `L` and a generation digit.
pub fn valid_barcode(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8
        && b[..6].iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b[6] == b'L'
        && (b[7].is_ascii_digit() || b[7].is_ascii_uppercase())
}

/// The number part of a barcode made by `barcode` with this letter, if it is one.
pub fn barcode_number(code: &str, letter: char) -> Option<u32> {
    let rest = code.strip_prefix(letter)?;
    rest.get(..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(path: &str, size: u64) -> PlanFile {
        PlanFile { tape_path: path.into(), size }
    }

    #[test]
    fn a_file_larger_than_the_space_left_is_split_and_parts_are_named() {
        let layout = Layout { usable: 100, min_part: 10 };
        let tapes = lay_out(&[f("a/x", 60), f("a/y", 90)], layout);
        assert_eq!(tapes.len(), 2);
        assert_eq!(tapes[0][1], Segment { file: 1, offset: 0, length: 40, part: 1, parts: 2 });
        assert_eq!(tapes[1][0], Segment { file: 1, offset: 40, length: 50, part: 2, parts: 2 });
        assert_eq!(part_name("a/y", 2, 2), "a/y.part002of002");
        assert_eq!(part_name("a/x", 1, 1), "a/x");
        assert_eq!(whole_name("a/y.part002of002", 2, 2), "a/y");
    }

    #[test]
    fn a_folder_that_fits_on_a_fresh_cartridge_starts_one_when_little_is_left() {
        let layout = Layout { usable: 100, min_part: 10 };
        // 80 used, 20 left (under a quarter): folder b (30) moves whole to tape 2.
        let tapes = lay_out(&[f("a/x", 80), f("b/1", 15), f("b/2", 15)], layout);
        assert_eq!(tapes.len(), 2);
        assert_eq!(tapes[1].iter().map(|s| (s.file, s.parts)).collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
        // 50 left (half a cartridge): not worth wasting, so the folder is split across.
        let tapes = lay_out(&[f("a/x", 50), f("b/1", 40), f("b/2", 40)], layout);
        assert_eq!(tapes[0].len(), 3);
        assert_eq!(tapes[0][2].length, 10);
    }

    #[test]
    fn capacity_parses_decimal_and_binary() {
        assert_eq!(parse_capacity("12T").unwrap(), 12_000_000_000_000);
        assert_eq!(parse_capacity("2.5TB").unwrap(), 2_500_000_000_000);
        assert_eq!(parse_capacity("3MiB").unwrap(), 3 << 20);
        assert!(parse_capacity("12X").is_err());
        assert!(parse_capacity("0").is_err());
        assert!(parse_capacity("-1T").is_err());
    }

    #[test]
    fn barcodes_look_like_lto_labels() {
        assert_eq!(barcode('A', 1, "L8"), "A00001L8");
        assert!(valid_barcode("A00001L8"));
        assert!(!valid_barcode("a00001L8"));
        assert!(!valid_barcode("A0001L8"));
        assert!(!valid_barcode("../../L8"));
        assert_eq!(barcode_number("B00042L9", 'B'), Some(42));
    }

    proptest! {
        /// Every byte of every file is planned exactly once, in order, and no
        /// cartridge holds more than its usable bytes.
        #[test]
        fn every_byte_planned_once_and_no_tape_over_capacity(
            sizes in proptest::collection::vec((0u8..4, 0u64..5_000), 0..40),
            usable in 100u64..3_000,
            min_part in 1u64..200,
        ) {
            let files: Vec<PlanFile> = sizes.iter().enumerate().map(|(i, (d, s))| f(&format!("d{d}/f{i:03}"), *s)).collect();
            let mut files = files;
            files.sort_by(|a, b| a.tape_path.cmp(&b.tape_path));
            let layout = Layout { usable, min_part };
            let tapes = lay_out(&files, layout);
            let mut next = vec![0u64; files.len()];
            let mut parts_seen = vec![0u32; files.len()];
            for t in &tapes {
                prop_assert!(t.iter().map(|s| s.length).sum::<u64>() <= usable);
                for s in t {
                    prop_assert_eq!(s.offset, next[s.file]);
                    next[s.file] += s.length;
                    parts_seen[s.file] += 1;
                    prop_assert_eq!(s.part, parts_seen[s.file]);
                }
            }
            for (i, file) in files.iter().enumerate() {
                prop_assert_eq!(next[i], file.size);
                let parts: Vec<u32> = tapes.iter().flatten().filter(|s| s.file == i).map(|s| s.parts).collect();
                prop_assert!(parts.iter().all(|p| *p as usize == parts.len()));
            }
        }
    }
}
