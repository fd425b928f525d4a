//! `tape export`: the set catalog of a plan, to put in the box with the tapes:
//! JSON, CSV, the join list for split files, a one-page HTML index, and per
//! written cartridge the ASC MHL manifest of its files (in `BARCODE/ascmhl/`,
//! so a copy of that cartridge's files beside it verifies with `ascmhl`).
//!
//! Every name written is made here from the plan name and barcodes, both
//! checked, so nothing in the catalog can put a file outside DIR; existing
//! files are never overwritten.

use super::error::{Result, TapeError};
use super::mhl::{self, MhlEntry};
use super::plan::valid_barcode;
use super::set_catalog::SetCatalog;
use crate::archive::objects::now_ns;
use crate::archive::Archive;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub plan: String,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

pub fn export(a: &Archive, plan_name: &str, dir: &Path) -> Result<ExportReport> {
    let cat = &a.catalog;
    cat.ensure_tape_schema()?;
    let plan = cat.tape_plan(plan_name)?.ok_or_else(|| TapeError::NoSuchPlan(plan_name.into()))?;
    let safe = |s: &str| !s.is_empty() && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !safe(&plan.name) {
        return Err(TapeError::invalid(format!("the plan name '{}' in the catalog is not a safe file name; nothing exported", plan.name)));
    }
    let carts = cat.cartridges(Some(plan_name))?;
    if let Some(bad) = carts.iter().find(|c| !valid_barcode(&c.barcode)) {
        return Err(TapeError::invalid(format!(
            "the catalog names a cartridge '{}', which is not a barcode; nothing exported",
            bad.barcode
        )));
    }
    let set = SetCatalog::new(plan, carts, cat.tape_items_of_plan(plan_name)?);
    std::fs::create_dir_all(dir).map_err(|e| TapeError::Io { path: dir.into(), source: e })?;
    let mut out: Vec<(PathBuf, Vec<u8>)> = vec![
        (dir.join(format!("{plan_name}.json")), set.json()),
        (dir.join(format!("{plan_name}.csv")), set.csv()),
        (dir.join(format!("{plan_name}.html")), set.html()),
    ];
    if let Some(j) = set.joins() {
        out.push((dir.join(format!("{plan_name}-joins.txt")), j));
    }
    let now = now_ns();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "localhost".into());
    for c in set.cartridges.iter().filter(|c| c.state != "planned") {
        let entries: Vec<MhlEntry> = set.mhl_entries(&c.barcode);
        for (rel, bytes) in mhl::manifest_files(&c.barcode, &entries, now, &host) {
            out.push((dir.join(&c.barcode).join(rel), bytes));
        }
    }
    let mut files = Vec::new();
    for (path, bytes) in out {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| TapeError::Io { path: parent.into(), source: e })?;
        }
        let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(TapeError::invalid(format!("{} exists already; export into an empty folder", path.display())))
            }
            Err(e) => return Err(TapeError::Io { path, source: e }),
        };
        f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| TapeError::Io { path: path.clone(), source: e })?;
        files.push(path);
    }
    Ok(ExportReport { plan: plan_name.into(), dir: dir.into(), files })
}
