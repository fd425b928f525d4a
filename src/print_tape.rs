//! How `reelfs tape ...` results read on a terminal (JSON is print::json).

use crate::print::human;
use reelfs::commands::tape::{PlanReport, WriteOutcome};
use reelfs::tape::query::{Listing, Whereabouts};
use reelfs::tape::verify::VerifyReport;

pub fn plan(r: &PlanReport) {
    println!(
        "plan {} (pool {}, {}, {} per cartridge of which {} for files, {} cop{})",
        r.name,
        r.pool,
        r.generation,
        human(r.capacity),
        human(r.usable),
        r.copies,
        if r.copies == 1 { "y" } else { "ies" }
    );
    println!("{:<10} {:>5} {:>8} {:>12}", "BARCODE", "COPY", "FILES", "BYTES");
    for t in &r.tapes {
        println!("{:<10} {:>5} {:>8} {:>12}", t.barcode, t.copy, t.files, human(t.bytes));
    }
    for s in &r.splits {
        println!("split {} ({}) into {} parts on {}", s.source, human(s.size), s.parts, s.barcodes.join(", "));
    }
    for s in &r.skipped {
        println!("skipped {s} (not a regular file)");
    }
    println!("{} files, {} on {} cartridges", r.files, human(r.bytes), r.tapes.len());
}

pub fn write(o: &WriteOutcome) {
    let w = &o.write;
    for r in &w.removed_partial {
        eprintln!(
            "reelfs: removed {} ({}) from {}: an earlier write was killed while writing it; it is written again whole",
            r.tape_path,
            human(r.bytes),
            w.barcode
        );
    }
    for f in &w.failed {
        eprintln!("reelfs: {} ({}): {}", f.tape_path, f.source, f.error);
    }
    if let Some(a) = &w.abandoned {
        eprintln!("reelfs: {}: abandoned, not on {}: {}", a.tape_path, w.barcode, a.error);
    }
    if let Some(to) = &w.moved_to {
        eprintln!(
            "reelfs: {} file(s) moved to cartridge {to}: load it and run `reelfs tape write ARCHIVE {} --tape {to} ...`",
            w.moved, w.plan
        );
    }
    println!(
        "{}: {} files, {} written in {:.1} s ({:.1} MB/s){}",
        w.barcode,
        w.written.len(),
        human(w.bytes),
        w.seconds,
        w.mb_per_s,
        match &w.closed_early {
            Some(why) => format!("; cartridge closed early: {why}"),
            None if w.interrupted => format!(
                "; interrupted: the index is written and lists only complete files; run the same `reelfs tape write ... --tape {}` again to continue",
                w.barcode
            ),
            None => "; set catalog and ASC MHL manifest written last".into(),
        }
    );
    if let Some(v) = &o.verify {
        verify(v);
    }
}

pub fn verify(v: &VerifyReport) {
    for m in &v.mismatches {
        eprintln!(
            "reelfs: MISMATCH {} ({}): {}{}",
            m.tape_path,
            m.source,
            m.problem,
            m.requeued_to.as_deref().map(|t| format!("; queued again for {t}")).unwrap_or_default()
        );
    }
    println!(
        "{}: {} files verified ({}, {:.1} MB/s), {} mismatch{}",
        v.barcode,
        v.verified,
        human(v.bytes),
        v.mb_per_s,
        v.mismatches.len(),
        if v.mismatches.len() == 1 { "" } else { "es" }
    );
}

pub fn ls(l: &Listing) {
    match l {
        Listing::Cartridges { cartridges } => {
            println!(
                "{:<10} {:<12} {:<10} {:>4} {:<8} {:>6} {:>8} {:>9} {:>10}",
                "BARCODE", "PLAN", "POOL", "COPY", "STATE", "FILES", "WRITTEN", "VERIFIED", "BYTES"
            );
            for c in cartridges {
                println!(
                    "{:<10} {:<12} {:<10} {:>4} {:<8} {:>6} {:>8} {:>9} {:>10}",
                    c.cartridge.barcode,
                    c.cartridge.plan,
                    c.pool,
                    c.cartridge.copy,
                    c.cartridge.state,
                    c.files,
                    c.written,
                    c.verified,
                    human(c.bytes)
                );
            }
        }
        Listing::Files { cartridge, files } => {
            println!(
                "{} (plan {}, copy {}, {})",
                cartridge.cartridge.barcode, cartridge.cartridge.plan, cartridge.cartridge.copy, cartridge.cartridge.state
            );
            println!("{:<9} {:>10} {:>11} PATH ON TAPE  <-  SOURCE", "STATE", "BYTES", "START BLOCK");
            for f in files {
                println!(
                    "{:<9} {:>10} {:>11} {}  <-  {}{}",
                    f.state,
                    f.length,
                    f.start_block.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                    f.tape_path,
                    f.source,
                    f.note.as_deref().map(|n| format!("  ({n})")).unwrap_or_default()
                );
            }
        }
    }
}

pub fn where_is(w: &Whereabouts) {
    println!("{}", w.source);
    for c in &w.copies {
        println!(
            "  {} copy {} {:<8} partition {} block {} part {}/{} {}",
            c.barcode,
            c.copy,
            c.state,
            c.partition.as_deref().unwrap_or("-"),
            c.start_block.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
            c.part,
            c.parts,
            c.tape_path
        );
    }
}

pub fn release(r: &reelfs::tape::release::ReleaseReport) {
    for f in &r.released {
        println!("released {} ({}): on {}", f.source, human(f.bytes), f.barcodes.join(", "));
    }
    if !r.kept.is_empty() {
        println!(
            "{} file(s) stay on disk: verified on fewer than {} copies (`reelfs tape ls ARCHIVE --tape BARCODE`)",
            r.kept.len(),
            r.copies
        );
    }
    println!("plan {}: {} file(s) released, {} freed on disk", r.plan, r.released.len(), human(r.gc.bytes_freed));
}

pub fn recall(r: &reelfs::tape::recall::RecallReport) {
    for p in &r.refused {
        eprintln!("reelfs: {}: {}", p.source, p.error);
    }
    for s in &r.already_on_disk {
        println!("{s}: already on disk");
    }
    for f in &r.recalled {
        println!("recalled {} ({}, block {})", f.source, human(f.bytes), f.start_block);
        for p in &f.parts {
            println!("  {} from {} ({}, block {})", p.tape_path, p.barcode, human(p.bytes), p.start_block);
        }
    }
    if let Some(b) = &r.waiting_for {
        eprintln!("reelfs: waiting for cartridge {b}: put it in a free slot of the library and run the recall again");
    }
    if let Some(s) = &r.seeks {
        println!("drive: {} locate(s), {} backward ({} blocks back)", s.locates, s.backward, s.blocks_back);
    }
    println!("{}: {} file(s) recalled, {} refused", r.barcode, r.recalled.len(), r.refused.len());
}
