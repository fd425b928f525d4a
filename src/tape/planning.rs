//! `tape plan`: the files of one or more `BRANCH[/PATH]` selections, in write
//! order, laid out over cartridges (plan.rs) and stored in the tape catalog as
//! a named plan with its barcodes.

use super::error::{Result, TapeError};
use super::plan::{self, Layout, PlanFile};
use super::set_catalog::CATALOG_DIR;
use crate::archive::catalog::{CartridgeRow, TapeItemRow, TapePlanRow};
use crate::archive::objects::{now_ns, EntryKind, Hash, TreeEntry};
use crate::archive::Archive;

#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    pub selections: Vec<String>,
    /// `LTO-8`, `LTO-9`, ... (default LTO-8); gives the barcode suffix and,
    /// without `capacity`, the capacity.
    pub generation: Option<String>,
    /// Native capacity per cartridge, bytes (overrides the generation's).
    pub capacity: Option<u64>,
    pub copies: u32,
    pub pool: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedTape {
    pub barcode: String,
    pub copy: u32,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitFile {
    pub source: String,
    pub size: u64,
    pub parts: u32,
    /// The copy-1 cartridges holding its parts, in part order.
    pub barcodes: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanReport {
    pub name: String,
    pub pool: String,
    pub generation: String,
    pub capacity: u64,
    pub usable: u64,
    pub copies: u32,
    pub files: u64,
    pub bytes: u64,
    pub tapes: Vec<PlannedTape>,
    pub splits: Vec<SplitFile>,
    /// Entries that are not regular files (not written to tape), as `BRANCH/PATH`.
    pub skipped: Vec<String>,
}

/// A file selected for tape.
struct Selected {
    source: String,
    tape_path: String,
    blob: Hash,
    size: u64,
    mtime_ns: i64,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

pub fn plan(a: &Archive, req: &PlanRequest) -> Result<PlanReport> {
    if req.selections.is_empty() {
        return Err(TapeError::invalid("give what to put on tape: one or more BRANCH[/PATH], e.g. `reelfs tape plan ARCHIVE main/Day01`"));
    }
    let generation = req.generation.clone().unwrap_or_else(|| "LTO-8".into()).to_ascii_uppercase();
    let Some(&(gen_name, gen_capacity, suffix)) = plan::GENERATIONS.iter().find(|g| g.0 == generation) else {
        let known: Vec<&str> = plan::GENERATIONS.iter().map(|g| g.0).collect();
        return Err(TapeError::invalid(format!("unknown tape generation '{generation}'; give one of {}", known.join(", "))));
    };
    let capacity = req.capacity.unwrap_or(gen_capacity);
    let copies = req.copies.max(1);
    if copies > 9 {
        return Err(TapeError::invalid("--copies: at most 9 copies (pool letters A to I)"));
    }
    let pool = req.pool.clone().unwrap_or_else(|| "default".into());
    if !valid_name(&pool) {
        return Err(TapeError::invalid(format!("pool name '{pool}': use letters, digits, '-', '_' and '.' (up to 64)")));
    }
    let cat = &a.catalog;
    cat.ensure_tape_schema()?;
    let name = match &req.name {
        Some(n) if !valid_name(n) => {
            return Err(TapeError::invalid(format!("plan name '{n}': use letters, digits, '-', '_' and '.' (up to 64)")))
        }
        Some(n) if cat.tape_plan(n)?.is_some() => {
            return Err(TapeError::invalid(format!("a plan named '{n}' exists already; choose another name")))
        }
        Some(n) => n.clone(),
        None => {
            let names = cat.tape_plan_names()?;
            (names.len() + 1..).map(|n| format!("plan-{n}")).find(|n| !names.contains(n)).unwrap_or_else(|| "plan".into())
        }
    };

    let (files, skipped) = select(a, &req.selections)?;
    let layout = Layout::for_capacity(capacity);
    let plan_files: Vec<PlanFile> = files.iter().map(|f| PlanFile { tape_path: f.tape_path.clone(), size: f.size }).collect();
    let tapes = if files.is_empty() { Vec::new() } else { plan::lay_out(&plan_files, layout) };

    // Barcodes: copy 1 is pool letter A, copy 2 B, ...; numbers continue after
    // the highest this archive ever gave with that letter, so a volume serial
    // is never used twice.
    let existing = cat.barcodes()?;
    let mut report = PlanReport {
        name: name.clone(),
        pool: pool.clone(),
        generation: gen_name.to_string(),
        capacity,
        usable: layout.usable,
        copies,
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.size).sum(),
        tapes: Vec::new(),
        splits: Vec::new(),
        skipped,
    };
    let mut cartridges = Vec::new();
    let mut items = Vec::new();
    for copy in 1..=copies {
        let letter = (b'A' + (copy - 1) as u8) as char;
        let first = existing.iter().filter_map(|b| plan::barcode_number(b, letter)).max().unwrap_or(0) + 1;
        for (seq, segs) in tapes.iter().enumerate() {
            let code = plan::barcode(letter, first + seq as u32, suffix);
            cartridges.push(CartridgeRow {
                barcode: code.clone(),
                plan: name.clone(),
                copy,
                seq: seq as u32 + 1,
                state: "planned".into(),
                written_ns: None,
                note: None,
            });
            report.tapes.push(PlannedTape {
                barcode: code.clone(),
                copy,
                files: segs.len() as u64,
                bytes: segs.iter().map(|s| s.length).sum(),
            });
            for (ord, s) in segs.iter().enumerate() {
                let f = &files[s.file];
                items.push(TapeItemRow {
                    barcode: code.clone(),
                    ord: ord as i64,
                    plan: name.clone(),
                    tape_path: plan::part_name(&f.tape_path, s.part, s.parts),
                    source: f.source.clone(),
                    blob: f.blob,
                    file_size: f.size,
                    offset: s.offset,
                    length: s.length,
                    part: s.part,
                    parts: s.parts,
                    mtime_ns: f.mtime_ns,
                    state: "queued".into(),
                    partition: None,
                    start_block: None,
                    md5: None,
                    sha1: None,
                    xxh64: None,
                    blake3: None,
                    written_ns: None,
                    verified_ns: None,
                    note: None,
                });
                if copy == 1 && s.part == 1 && s.parts > 1 {
                    report.splits.push(SplitFile { source: f.source.clone(), size: f.size, parts: s.parts, barcodes: Vec::new() });
                }
                if copy == 1 && s.parts > 1 {
                    if let Some(sp) = report.splits.iter_mut().rev().find(|sp| sp.source == f.source) {
                        sp.barcodes.push(code.clone());
                    }
                }
            }
        }
    }
    let row = TapePlanRow {
        name: name.clone(),
        created_ns: now_ns(),
        pool,
        generation: gen_name.to_string(),
        capacity,
        usable: layout.usable,
        copies,
        selection: serde_json::to_string(&req.selections).unwrap_or_default(),
    };
    cat.write(|c| {
        c.insert_tape_plan(&row)?;
        for cr in &cartridges {
            c.insert_cartridge(cr)?;
        }
        for it in &items {
            c.insert_tape_item(it)?;
        }
        Ok(())
    })?;
    Ok(report)
}

/// The regular files below the selections, in write order: a folder's files
/// (by name) before its subfolders, so each folder's files are contiguous.
fn select(a: &Archive, selections: &[String]) -> Result<(Vec<Selected>, Vec<String>)> {
    let mut resolved = Vec::new();
    for spec in selections {
        let r = a.resolve(spec)?;
        if r.commit.is_none() && r.path.is_empty() {
            return Err(TapeError::invalid(format!("branch '{}' has no commits yet: nothing to put on tape", r.branch)));
        }
        resolved.push(r);
    }
    let branches: std::collections::BTreeSet<&str> = resolved.iter().map(|r| r.branch.as_str()).collect();
    // Files keep their archive paths on tape; from more than one branch, the
    // branch name leads so two versions of a path cannot collide.
    let with_branch = branches.len() > 1;
    let mut out: Vec<Selected> = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in &resolved {
        let mut stack: Vec<(String, TreeEntry)> = vec![(r.path.clone(), r.entry.clone())];
        while let Some((path, entry)) = stack.pop() {
            let source = if path.is_empty() { r.branch.clone() } else { format!("{}/{path}", r.branch) };
            match entry.kind {
                EntryKind::File => {
                    let tape_path = if with_branch { source.clone() } else { path.clone() };
                    if !seen.insert(tape_path.clone()) {
                        continue;
                    }
                    let first = tape_path.split('/').next().unwrap_or("");
                    if first == "ascmhl" || first == CATALOG_DIR {
                        return Err(TapeError::invalid(format!(
                            "{source}: '{first}/' at the root of a tape is where reelfs writes the set's manifest; select the folders below it instead"
                        )));
                    }
                    out.push(Selected { source, tape_path, blob: entry.hash, size: entry.size, mtime_ns: entry.mtime_ns });
                }
                EntryKind::Dir => {
                    let mut children = a.list_dir(&entry.hash)?;
                    children.sort_by(|x, y| x.name.cmp(&y.name));
                    let join = |n: &str| if path.is_empty() { n.to_string() } else { format!("{path}/{n}") };
                    // Pushed in reverse so they pop in order: subfolders last.
                    let (files, dirs): (Vec<_>, Vec<_>) = children.into_iter().partition(|c| c.kind != EntryKind::Dir);
                    for d in dirs.into_iter().rev() {
                        stack.push((join(&d.name), d));
                    }
                    for f in files.into_iter().rev() {
                        stack.push((join(&f.name), f));
                    }
                }
                #[allow(unreachable_patterns)]
                _ => skipped.push(source),
            }
        }
    }
    Ok((out, skipped))
}
