//! How each command's result reads on a terminal (the human text; `--json`
//! prints the result itself). Warnings and errors go to stderr, the rest to stdout.

use reelfs::archive::check::{CheckReport, RebuildReport, Stats};
use reelfs::archive::diff::Status;
use reelfs::archive::gc::GcReport;
use reelfs::archive::ingest::IngestReport;
use reelfs::archive::merge::{MergeReport, Outcome};
use reelfs::archive::restore::RestoreReport;
use reelfs::archive::EntryKind;
use reelfs::commands::diff::DiffReport;
use reelfs::commands::info::{FileInfo, FolderInfo, ProxyListing, SliceInfo};
use reelfs::commands::log::LogEntry;
use reelfs::commands::ls::{Listing, LsEntry};
use reelfs::commands::status::{StagedChange, StagedItem};
use reelfs::media::facts::MediaFacts;
use reelfs::media::proxy::run::{ProxyRunReport, RenderedItem};

pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

pub fn fmt_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    // UTC, ISO-like, without pulling in a date crate for one format.
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = reelfs::fs::core::history::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, (rem / 60) % 60, rem % 60)
}

fn short(hex: &str) -> &str {
    &hex[..12.min(hex.len())]
}

pub fn ingest(rep: &IngestReport, branch: &str) {
    for (p, why) in &rep.damaged {
        eprintln!("warning: {p}: stored byte-exact, but damaged as media: {why}");
    }
    for (p, why) in &rep.failed {
        eprintln!("error: {p}: {why}");
    }
    match &rep.commit {
        Some(c) => println!(
            "committed {} on {branch}: {} files ({} unchanged), {} read, {} new stored, {} new chunks, {} deduplicated",
            short(c),
            rep.files,
            rep.files_unchanged,
            human(rep.bytes_read),
            human(rep.bytes_new_stored),
            rep.chunks_new,
            rep.chunks_dedup
        ),
        None => println!("nothing changed on {branch}: {} files, all unchanged", rep.files),
    }
    if rep.specials > 0 {
        println!("  {} symlinks/FIFOs/sockets/devices recorded (links are stored, never followed)", rep.specials);
    }
}

fn media_summary(f: &MediaFacts) -> String {
    let mut parts = Vec::new();
    if let Some(n) = f.duration_frames {
        parts.push(format!("{n}f"));
    } else if let Some(d) = f.duration_seconds {
        parts.push(format!("{d:.2}s"));
    }
    if f.timecode_source.as_deref() == Some("assumed") && f.frame_rate.is_some() {
        parts.push(reelfs::media::facts::ASSUMED_NOTE.to_string());
    } else if let Some(tc) = &f.timecode {
        parts.push(tc.clone());
        if f.timecode_set_by_user() {
            parts.push("(set by user)".to_string());
        }
    }
    if let Some(r) = f.frame_rate_fps {
        parts.push(format!("{r}fps"));
    }
    if let Some(c) = &f.codec {
        parts.push(c.clone());
    }
    parts.join(" ")
}

pub fn ls(listing: &Listing, long: bool) {
    match listing {
        Listing::Branches(b) => {
            for b in b {
                println!("{}/", b.name);
            }
        }
        Listing::Entries(entries) => {
            for e in entries {
                ls_entry(e, long);
            }
        }
    }
}

fn ls_entry(e: &LsEntry, long: bool) {
    let slash = if e.kind == EntryKind::Dir { "/" } else { "" };
    if !long {
        println!("{}{slash}", e.name);
        return;
    }
    let m = match (&e.facts, e.damaged) {
        (Some(f), _) => media_summary(f),
        (None, Some(true)) => "DAMAGED".into(),
        _ => String::new(),
    };
    // What a special entry is, where `ls -l` would show it: `name -> target`
    // for a symlink, the kind (and a device's numbers) in the last column.
    let link = e.extra.target.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default();
    let m = match (e.kind.is_special(), e.extra.rdev) {
        (true, Some(d)) => format!("[{} {}, {}]", e.kind.word(), d.major, d.minor),
        (true, None) => format!("[{}]", e.kind.word()),
        (false, _) => m,
    };
    // Owner beside the mode, so the size/time/name columns keep their places.
    let owner = match (e.uid, e.gid) {
        (Some(u), Some(g)) => format!("{u}:{g}"),
        _ => "-".into(),
    };
    println!("{} {owner}\t{:>12}\t{}\t{}{slash}{link}\t{}", e.mode, e.size, fmt_time(e.mtime_ns), e.name, m);
}

pub fn file_info(i: &FileInfo) {
    println!("path          {}", i.path);
    println!("size          {} ({})", i.size, human(i.size));
    println!("stored        {} ({})", i.stored_bytes, human(i.stored_bytes));
    println!("content hash  {}", i.content_label);
    println!("modified      {}", fmt_time(i.mtime_ns));
    match (i.uid, i.gid) {
        (Some(u), Some(g)) => println!("owner         uid {u} gid {g}"),
        _ => println!("owner         not recorded"),
    }
    if let Some(e) = &i.probe_error {
        println!("media         DAMAGED: {e}");
    }
    if let Some(f) = &i.media {
        media_lines(f);
    }
    proxies(&i.proxies);
}

/// `null` where JSON would have it: what these lines showed when they printed JSON values.
fn or_null<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

fn media_lines(f: &MediaFacts) {
    println!("container     {}", if f.container.is_empty() { "?" } else { &f.container });
    if let Some(c) = &f.codec {
        println!("codec         {}{}", c, f.profile.as_ref().map(|p| format!(" ({p})")).unwrap_or_default());
    }
    if let (Some(w), Some(h)) = (f.width, f.height) {
        println!("resolution    {w}x{h}");
    }
    if let Some(r) = &f.frame_rate {
        let vfr = if f.variable_frame_rate { ", VARIABLE" } else { "" };
        println!("frame rate    {} ({} fps){vfr}", r, or_null(f.frame_rate_fps));
    }
    if let Some(tc) = f.describe_timecode() {
        println!("timecode      {tc}");
    }
    if let Some(breaks) = &f.timecode_breaks {
        let list: Vec<String> = breaks.iter().map(|b| format!("frame {} {}", b.frame, b.timecode)).collect();
        println!("tc breaks     {}", list.join(", "));
    }
    if let Some(r) = &f.reel {
        println!("reel          {r}");
    }
    if let Some(d) = f.duration_frames {
        println!("duration      {d} frames");
    } else if let Some(d) = f.duration_seconds {
        println!("duration      {d:.3} s");
    }
    if let Some(p) = &f.color_primaries {
        println!(
            "colour        primaries {p}, transfer {}, matrix {}",
            f.color_transfer.as_deref().unwrap_or("?"),
            f.color_matrix.as_deref().unwrap_or("?")
        );
    }
    println!("audio         {} tracks, {} channels", f.audio_tracks, f.audio_channels);
    for s in &f.streams {
        let mut line = format!("  #{} {} {}", s.index, s.kind, s.codec);
        if let Some(a) = &s.audio {
            line += &format!(" {} Hz {}ch {}-bit", a.sample_rate, a.channels, a.bits_per_sample);
        }
        if let Some(v) = &s.video {
            line += &format!(" {}x{} {}", v.width, v.height, v.pix_fmt.as_deref().unwrap_or(""));
        }
        println!("{line}");
    }
}

pub fn proxies(list: &[ProxyListing]) {
    for p in list {
        println!(
            "proxy         {} v{} {} ({} bytes){}",
            p.profile,
            p.settings_version,
            p.name,
            or_null(p.size),
            p.partial_at.map(|f| format!(", PARTIAL from frame {f}")).unwrap_or_default()
        );
        if !p.note.is_empty() {
            println!("              {}", p.note);
        }
    }
}

pub fn folder_info(i: &FolderInfo) {
    println!("path          {}", i.path);
    for s in &i.sequences {
        println!("sequence      {} (frames {}-{}, {} files)", s.pattern, s.first, s.last, s.frames);
        if !s.gaps.is_empty() {
            println!("missing       {}", s.gaps.join(", "));
        }
        println!("timecode      {}", s.timecode.as_deref().unwrap_or("none in the header"));
        println!("frame rate    {}", s.frame_rate.as_deref().unwrap_or("none in the header (proxies assume 24)"));
        println!("sequence key  blake3:{}", s.sequence_key);
        proxies(&s.proxies);
    }
}

pub fn rendered(i: &RenderedItem) {
    println!(
        "rendered {}: {} ({} frames, {:.1} s){}",
        i.path,
        i.profiles.join(", "),
        i.frames,
        i.seconds,
        i.partial_at.map(|f| format!(" PARTIAL: frames from {f} do not decode")).unwrap_or_default()
    );
    if !i.damaged.is_empty() {
        println!("  {}", i.note.split("; ").filter(|n| n.starts_with("damaged:")).collect::<Vec<_>>().join("; "));
    }
}

pub fn proxy_run(rep: &ProxyRunReport) {
    for (p, why) in &rep.skipped {
        println!("skipped {p}: {why}");
    }
    for (p, why) in &rep.failed {
        eprintln!("error: {p}: {why}");
    }
    for (p, who) in &rep.elsewhere {
        println!("left to another worker {p}: {who}");
    }
    println!(
        "{} rendered, {} up to date, {} skipped, {} failed; {} frames in {:.1} s{}",
        rep.rendered.len(),
        rep.up_to_date,
        rep.skipped.len(),
        rep.failed.len(),
        rep.frames,
        rep.seconds,
        if rep.interrupted { " (interrupted: run again to render the rest)" } else { "" }
    );
}

pub fn restore(rep: &RestoreReport, dest: &std::path::Path) {
    for (p, why) in &rep.skipped {
        eprintln!("warning: {p}: {why}");
    }
    for (p, why) in &rep.failed {
        eprintln!("error: {p}: {why}");
    }
    println!("restored {} files, {} to {}", rep.files, human(rep.bytes), dest.display());
    if rep.specials > 0 || rep.hard_links > 0 {
        println!("  {} symlinks/FIFOs/sockets/devices made, {} names restored as hard links", rep.specials, rep.hard_links);
    }
}

pub fn rebuild(rep: &RebuildReport) {
    println!(
        "rebuilt catalog from {} packs: {} chunks, {} files' contents, {} trees, {} commits, {} branches{}",
        rep.packs,
        rep.chunks,
        rep.blobs,
        rep.trees,
        rep.commits,
        rep.branches,
        if rep.old_catalog.is_empty() { String::new() } else { format!("; old catalog kept as {}", rep.old_catalog) }
    );
    if rep.damaged_records > 0 {
        println!("warning: {} damaged records skipped", rep.damaged_records);
    }
    for l in &rep.lost {
        println!("lost: {l}");
    }
    if !rep.lost.is_empty() {
        println!("warning: {} items the branches reach are in no pack (a pack is missing); `reelfs check` names them", rep.lost.len());
    }
}

pub fn check(rep: &CheckReport, deep: bool) {
    for p in &rep.problems {
        println!("problem: {p}");
    }
    for f in &rep.damaged_files {
        println!("damaged: {f}");
    }
    for f in &rep.catalog_damage {
        println!("catalog: {f}");
    }
    for f in &rep.lost {
        println!("lost: {f}");
    }
    for p in &rep.uncommitted_packs {
        println!("note: {p} is from an interrupted write; the next ingest removes it");
    }
    if rep.released_skipped > 0 {
        println!(
            "note: {} released file content(s) are on tape only (`reelfs tape release`), not checked; `reelfs tape recall` brings them back",
            rep.released_skipped
        );
    }
    println!(
        "{}: {} packs, {} chunks, {} objects{}",
        if rep.ok() { "ok" } else { "FAILED" },
        rep.packs,
        rep.chunks,
        rep.objects,
        if deep { format!(", {} verified", human(rep.bytes_verified)) } else { String::new() }
    );
    if !deep && rep.packs_verified > 0 {
        println!("sampled: {} of {} packs re-read, {} verified", rep.packs_verified, rep.packs, human(rep.bytes_verified));
    }
}

pub fn log(entries: &[LogEntry]) {
    for e in entries {
        let c = &e.commit;
        let merge = if c.parents.len() > 1 {
            format!("  (merge of {})", c.parents.iter().map(|p| short(p).to_string()).collect::<Vec<_>>().join(" + "))
        } else {
            String::new()
        };
        println!("{}  {}  {}  {}{merge}", short(&c.commit), fmt_time(c.time_ns), c.author, c.message);
        if let Some(ch) = &e.change {
            let what = match &ch.renamed_from {
                Some(old) => format!("renamed {old} -> {}", ch.path),
                None => format!("{} {}", ch.status.letter(), ch.path),
            };
            println!("    {what}");
        }
    }
}

pub fn diff(d: &DiffReport) {
    for c in &d.changes {
        match c.status {
            Status::Added => println!("A  {}  ({}){}", c.path, human(c.size.unwrap_or(0)), c.notes()),
            Status::Removed => println!("D  {}  ({}){}", c.path, human(c.old_size.unwrap_or(0)), c.notes()),
            Status::Modified => {
                println!("M  {}  ({} -> {}){}", c.path, human(c.old_size.unwrap_or(0)), human(c.size.unwrap_or(0)), c.notes())
            }
            Status::Renamed => {
                println!("R  {} -> {}  ({}){}", c.old_path.as_deref().unwrap_or("?"), c.path, human(c.size.unwrap_or(0)), c.notes())
            }
        }
    }
    let sum = &d.summary;
    println!(
        "{} added, {} removed, {} modified, {} renamed; +{} -{}",
        sum.added,
        sum.removed,
        sum.modified,
        sum.renamed,
        human(sum.bytes_added),
        human(sum.bytes_removed)
    );
}

pub fn merge(rep: &MergeReport, src: &str, into: &str, dry_run: bool) {
    for p in &rep.unused_resolutions {
        eprintln!("warning: --ours/--theirs {p} matched no conflict");
    }
    let dry = if dry_run { " (dry run: nothing written)" } else { "" };
    let commit = rep.commit.as_deref().unwrap_or("");
    match rep.outcome {
        Outcome::UpToDate => println!("{into} is already up to date with {src}; nothing to merge"),
        Outcome::FastForward => println!(
            "fast-forward: {into} was an ancestor of {src}; {into} now points at {} ({} files changed){dry}",
            short(commit),
            rep.changes.len()
        ),
        Outcome::Merged => {
            for c in &rep.conflicts {
                println!("resolved {} ({}): took {}", c.path, c.kind, c.resolved.as_deref().unwrap_or("?"));
            }
            println!(
                "merged {src} into {into}: commit {} with parents {}; {} files changed{dry}",
                short(commit),
                rep.parents.iter().map(|p| short(p).to_string()).collect::<Vec<_>>().join(" + "),
                rep.changes.len()
            );
        }
        Outcome::Conflicts => {
            let open: Vec<_> = rep.conflicts.iter().filter(|c| c.resolved.is_none()).collect();
            eprintln!("merge of {src} into {into}: {} conflict(s); nothing was merged", open.len());
            for c in &open {
                println!("CONFLICT ({})  {}", c.kind, c.path);
            }
            eprintln!("resolve each with --ours PATH (keep {into}'s) or --theirs PATH (take {src}'s), then run the merge again");
        }
    }
}

pub fn gc(rep: &GcReport, dry_run: bool) {
    for p in &rep.problems {
        eprintln!("warning: {p}");
    }
    let verb = if dry_run { "would free" } else { "freed" };
    println!(
        "{verb} {} on disk: {} chunks ({} stored), {} files' contents, {} trees, {} commits; packs: {} deleted, {} compacted into {} new ({} moved)",
        human(rep.bytes_freed),
        rep.chunks_freed,
        human(rep.chunk_bytes_freed),
        rep.blobs_freed,
        rep.trees_freed,
        rep.commits_freed,
        rep.packs_deleted,
        rep.packs_compacted,
        rep.packs_written,
        human(rep.bytes_moved)
    );
    println!(
        "kept {} chunks ({}); {} of garbage left inside mostly-live packs",
        rep.live_chunks,
        human(rep.live_chunk_bytes),
        human(rep.garbage_bytes_left)
    );
}

pub fn status(rows: &[StagedItem], branch: &str) {
    if rows.is_empty() {
        println!("nothing staged on {branch}");
    }
    for r in rows {
        let size = r.size.unwrap_or(0);
        match r.change {
            StagedChange::Deleted => println!("deleted   {}", r.path),
            StagedChange::Folder => println!("folder    {}/", r.path),
            StagedChange::Moved => println!("moved     {} ({size} bytes)", r.path),
            StagedChange::Written => println!("written   {} ({size} bytes)", r.path),
            StagedChange::Special => println!("special   {}", r.path),
        }
    }
}

pub fn stats(s: &Stats) {
    println!("branches        {}", s.branches);
    println!("commits         {}", s.commits);
    println!("files           {} (across branch heads)", s.files);
    println!("logical bytes   {} ({})", s.logical_bytes, human(s.logical_bytes));
    println!("unique bytes    {} ({})", s.unique_bytes, human(s.unique_bytes));
    println!("stored bytes    {} ({})", s.stored_bytes, human(s.stored_bytes));
    println!("packs           {} ({})", s.packs, human(s.pack_bytes));
    println!("chunks          {}", s.chunks);
    println!("dedup ratio     {:.2}x", s.dedup_ratio);
    println!("compression     {:.2}x", s.compression_ratio);
    println!("catalog         {}", human(s.catalog_bytes));
}

/// `info` of a slice: what `reelfs slice` prints for it.
pub fn slice_info(i: &SliceInfo) {
    let plan = &i.plan;
    println!(
        "{}\n  source {}\n  in {} out {} ({}), first frame {}\n  frames {} (source frames {}..{}), handles {} before, {} after (asked {})\n  size {} bytes, {}",
        i.path,
        i.source,
        plan.in_tc,
        plan.out_tc,
        plan.rate,
        plan.start_tc,
        plan.end_frame - plan.first_frame,
        plan.first_frame,
        plan.end_frame,
        plan.handles_before,
        plan.handles_after,
        plan.handles_requested,
        plan.size,
        plan.method
    );
}

pub fn tape_format(rep: &reelfs::tape::ltfs::FormatReport) {
    println!(
        "formatted {} as LTFS volume {} (UUID {}, block size {} KiB)",
        rep.barcode,
        rep.volume_serial,
        rep.volume_uuid,
        rep.block_size / 1024
    );
    if let Some(bytes) = rep.data_capacity {
        println!("data partition: {} MiB free", bytes / (1024 * 1024));
    }
}
