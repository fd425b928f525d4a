//! The `reelfs` command line. Thin: parse, call the library, print.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use reelfs::archive::check::{self, CheckReport};
use reelfs::archive::ingest::{self, IngestOptions};
use reelfs::archive::restore::{self, RestoreOptions};
use reelfs::archive::{Archive, EntryKind};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "reelfs", version, about = "A film-production archive that mounts as a filesystem")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new, empty archive (private to you; --group shares it read-only).
    Init {
        archive: PathBuf,
        /// Share the archive with this group: folders 2750 owned by it, files 0640.
        #[arg(long)]
        group: Option<String>,
    },
    /// Ingest files and folders (camera cards, sound, image sequences) as one commit.
    Ingest {
        archive: PathBuf,
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// Branch to commit to.
        #[arg(long, default_value = "main")]
        branch: String,
        /// Folder inside the branch to put the sources in.
        #[arg(long = "to", default_value = "")]
        to: String,
        /// Commit message.
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// After the commit, render the missing proxies of what was ingested.
        #[arg(long)]
        proxies: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a folder: `reelfs ls ARCHIVE [BRANCH[/PATH]]`.
    Ls {
        archive: PathBuf,
        path: Option<String>,
        /// Long listing: mode, size, mtime, and for media duration, timecode, rate, codec.
        #[arg(short = 'l')]
        long: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show what is known about a file: content hash, stored bytes, probed media facts.
    Info {
        archive: PathBuf,
        path: String,
        #[arg(long)]
        json: bool,
    },
    /// Write a file's bytes to stdout.
    Cat { archive: PathBuf, path: String },
    /// Restore files or folders byte-identical (with mode and mtime) to DEST.
    Restore {
        archive: PathBuf,
        /// One or more BRANCH[@COMMIT]/PATH, then the destination.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Verify the catalog against the packs.
    Check {
        archive: PathBuf,
        /// Re-read and re-hash every record; name each damaged file.
        #[arg(long)]
        deep: bool,
        /// Rebuild catalog.db from the packs alone (the old one is kept beside it).
        #[arg(long)]
        rebuild_catalog: bool,
        #[arg(long)]
        json: bool,
    },
    /// List branches, or create one: `reelfs branch ARCHIVE NAME --from BRANCH[@COMMIT]`.
    Branch {
        archive: PathBuf,
        name: Option<String>,
        #[arg(long)]
        from: Option<String>,
        /// Delete the branch NAME (data other branches use is untouched).
        #[arg(short = 'd', long)]
        delete: bool,
    },
    /// Show a branch's history, newest first.
    Log {
        archive: PathBuf,
        branch: Option<String>,
        /// Only commits that changed this path (followed back across renames).
        path: Option<String>,
        #[arg(short = 'n', long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// File-level differences between A and B (`BRANCH` or `BRANCH@COMMIT`):
    /// added, removed, modified, renamed, with sizes.
    Diff {
        archive: PathBuf,
        a: String,
        b: String,
        /// Only below this path.
        path: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Three-way merge of SRC (`BRANCH[@COMMIT]`) into the branch DST. Conflicts
    /// are listed and nothing is written unless each is resolved with --ours/--theirs.
    Merge {
        archive: PathBuf,
        src: String,
        #[arg(long = "into", required = true)]
        into: String,
        /// Resolve conflicts at (or below) PATH with DST's version.
        #[arg(long = "ours", value_name = "PATH")]
        ours: Vec<String>,
        /// Resolve conflicts at (or below) PATH with SRC's version.
        #[arg(long = "theirs", value_name = "PATH")]
        theirs: Vec<String>,
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// Work out the merge, write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove chunks and objects that no branch, commit, proxy or staged write
    /// reaches; report what was freed.
    Gc {
        archive: PathBuf,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Benchmark fixture: add synthetic files (many references to a pool of real
    /// chunks) to a branch without ingesting. See src/archive/synth.rs.
    #[command(hide = true)]
    Synth {
        archive: PathBuf,
        #[arg(long, default_value = "main")]
        branch: String,
        #[arg(long, default_value_t = 0)]
        add: u64,
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long, default_value_t = 0)]
        modify: u64,
        #[arg(long, default_value_t = 0)]
        existing: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 512)]
        pool_chunks: u64,
        #[arg(long, default_value_t = 25)]
        extents_per_file: u64,
    },
    /// Mount the archive: one directory per branch. Returns once the mount is ready.
    Mount {
        archive: PathBuf,
        mountpoint: PathBuf,
        /// Stay in the foreground (logs to stderr; Ctrl-C unmounts).
        #[arg(long)]
        foreground: bool,
        /// Let other users (e.g. an SMB/NFS server) see the mount.
        #[arg(long)]
        allow_other: bool,
        /// Refuse all writes (EROFS). Otherwise branch folders are writable.
        #[arg(long)]
        read_only: bool,
        /// Memory for read-ahead and decompressed chunks, e.g. 512M, 4G.
        #[arg(long, default_value = "1G", value_parser = parse_size)]
        cache_size: u64,
        /// FUSE worker threads.
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// Commit what is staged on each branch every SECS seconds.
        #[arg(long, value_name = "SECS")]
        autocommit: Option<u64>,
        /// Most disk kept for remuxed (MXF) slices in ARCHIVE/cache/slices, e.g. 2G;
        /// overrides `[cache] remux_limit` in reelfs.toml (default 10G).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        remux_cache_limit: Option<u64>,
    },
    /// Unmount a reelfs mount.
    Umount { mountpoint: PathBuf },
    /// Commit the changes staged on a branch (writes made through the mount).
    Commit {
        archive: PathBuf,
        branch: String,
        #[arg(short = 'm', long)]
        message: Option<String>,
    },
    /// Show what is staged on a branch (written through the mount, not committed).
    Status {
        archive: PathBuf,
        #[arg(default_value = "main")]
        branch: String,
        #[arg(long)]
        json: bool,
    },
    /// Resolve a timecode slice `BRANCH/PATH@IN-OUT[+H]` and say what it is (or why
    /// it does not exist); with -o, write its bytes.
    Slice {
        archive: PathBuf,
        spec: String,
        /// Write the slice to this file.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Pull timecode ranges into real files: from an EDL (--edl), an OTIO timeline
    /// (--otio), or one clip (`BRANCH/PATH --in TC --out-tc TC`).
    Extract {
        archive: PathBuf,
        /// A clip for a single pull (with --in and --out-tc).
        path: Option<String>,
        #[arg(long)]
        edl: Option<PathBuf>,
        #[arg(long)]
        otio: Option<PathBuf>,
        /// In point (single pull).
        #[arg(long = "in")]
        in_tc: Option<String>,
        /// Out point, exclusive (single pull).
        #[arg(long = "out-tc")]
        out_tc: Option<String>,
        /// Handle frames added on each side (clamped to the media).
        #[arg(long, default_value_t = 0)]
        handles: u32,
        /// Branch (optionally BRANCH/FOLDER) whose clips EDL/OTIO events match against.
        #[arg(long, default_value = "main")]
        branch: String,
        /// Folder to write the pulls and report.json into.
        #[arg(long = "out")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Render the proxies that are missing (thumb JPEG, H.264 preview MP4, ProRes
    /// editorial MOV) for the media below the given BRANCH[/PATH]s, or for all
    /// media on all branches. Interrupting keeps every proxy already stored.
    Proxy {
        archive: PathBuf,
        paths: Vec<String>,
        /// Rungs to render, comma-separated.
        #[arg(long, default_value = "thumb,sheet,preview,editorial")]
        profiles: String,
        /// Files rendered at once.
        #[arg(short = 'j', long, default_value_t = 1)]
        jobs: usize,
        /// Keep running: render whatever new commits bring, until SIGINT/SIGTERM
        /// (what systemd/reelfs-proxy@.service runs).
        #[arg(long)]
        watch: bool,
        /// With --watch: seconds between looks at the branch heads.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        #[arg(long)]
        json: bool,
    },
    /// Logical vs stored bytes, chunks, dedup and compression ratios.
    Stats {
        archive: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Record or clear a clip's start timecode (from a camera or sound report) without
    /// touching the original: `reelfs tc set ARCHIVE main/Day01/clip.mp4 01:00:00:00`.
    Tc {
        #[command(subcommand)]
        action: TcCmd,
    },
}

#[derive(Subcommand)]
enum TcCmd {
    /// Record TC as the clip's start timecode on its branch (a commit; `log` shows it).
    /// Slices, EDL pulls, `info` and the mount use it from then on.
    Set {
        archive: PathBuf,
        /// BRANCH/PATH of the clip.
        path: String,
        /// Start timecode, HH:MM:SS:FF (HH:MM:SS;FF for drop-frame).
        tc: String,
        /// Reel (tape) name to record with it.
        #[arg(long)]
        reel: Option<String>,
        /// Rate the timecode counts at (23.976, 24, 25, 29.97 DF, ...); default: the clip's.
        #[arg(long)]
        rate: Option<String>,
    },
    /// Remove a recorded timecode: the clip's own (or none) applies again.
    Clear {
        archive: PathBuf,
        /// BRANCH/PATH of the clip.
        path: String,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let m = match s[i..].to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
                "" => 1u64,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                other => return Err(format!("unknown size unit '{other}' (use K, M, G or T)")),
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not a size like 512M or 4G"))?;
    if n <= 0.0 {
        return Err("size must be positive".into());
    }
    Ok((n * mult as f64) as u64)
}

/// Start `reelfs mount --foreground` as a detached child and wait until it
/// reports the mount ready (a byte on fd 3) or exits with an error, whose log
/// is then shown. Re-executing avoids fork() in a process that has threads.
fn mount_in_background(args: &[std::ffi::OsString], mountpoint: &std::path::Path) -> Result<i32> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find the reelfs executable")?;
    let log_path = std::env::temp_dir().join(format!("reelfs-mount-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let (mut rd, wr) = std::io::pipe().context("pipe")?;
    let wr_fd = std::os::fd::AsRawFd::as_raw_fd(&wr);
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args).arg("--foreground").env("REELFS_READY_FD", "3");
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(wr_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the mount process")?;
    drop(wr);
    let mut buf = [0u8; 1];
    let n = rd.read(&mut buf).unwrap_or(0);
    if n == 1 {
        println!("mounted at {} (pid {}, log {})", mountpoint.display(), child.id(), log_path.display());
        return Ok(0);
    }
    let status = child.wait()?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    eprint!("{text}");
    Ok(status.code().unwrap_or(1).max(1))
}

fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let g = f.clone();
        // First Ctrl-C asks the operation to stop at a safe point; a second exits at once.
        let _ = ctrlc_like(move || {
            if g.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("reelfs: interrupted, stopping safely (Ctrl-C again to abort now)");
        });
        f
    })
    .clone()
}

/// Install a SIGINT/SIGTERM handler on a dedicated thread using signalfd-free
/// sigwait, so the handler may allocate and print.
fn ctrlc_like(f: impl Fn() + Send + 'static) -> std::io::Result<()> {
    // SAFETY: blocking signals in this thread before other threads start makes
    // them inherit the mask; sigwait then receives them synchronously.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) == 0 {
                f();
            }
        });
    }
    Ok(())
}

fn human(n: u64) -> String {
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

fn fmt_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    // UTC, ISO-like, without pulling in a date crate for one format.
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = reelfs::fs::core::history::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, (rem / 60) % 60, rem % 60)
}


fn media_summary(facts: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(f) = facts["duration_frames"].as_u64() {
        parts.push(format!("{f}f"));
    } else if let Some(d) = facts["duration_seconds"].as_f64() {
        parts.push(format!("{d:.2}s"));
    }
    if facts["timecode_source"] == "assumed" && !facts["frame_rate"].is_null() {
        parts.push(reelfs::media::tcfact::ASSUMED_NOTE.to_string());
    } else if let Some(tc) = facts["timecode"].as_str() {
        parts.push(tc.to_string());
        if facts["timecode_source"] == "user" {
            parts.push("(set by user)".to_string());
        }
    }
    if let Some(r) = facts["frame_rate_fps"].as_f64() {
        parts.push(format!("{r}fps"));
    }
    if let Some(c) = facts["codec"].as_str() {
        parts.push(c.to_string());
    }
    parts.join(" ")
}

fn main() {
    // Behave like other Unix tools when piped into `head`: exit quietly on EPIPE.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    // REELFS_TIMING=1: how long the command itself took, without process start-up
    // (loading FFmpeg's shared libraries costs ~0.1 s before main); for benchmarks.
    let t0 = std::time::Instant::now();
    let res = run(cli);
    if std::env::var_os("REELFS_TIMING").is_some() {
        eprintln!("reelfs: timing: {:.3} ms in command", t0.elapsed().as_secs_f64() * 1e3);
    }
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("reelfs: error: {}", error_text(&e));
            std::process::exit(1);
        }
    }
}

/// The error and its causes, `a: b: c`, skipping a cause whose text the message
/// already carries (archive errors print their io/SQLite cause themselves).
fn error_text(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s = format!("{s}: {c}");
        }
    }
    s
}

fn run(cli: Cli) -> Result<i32> {
    let progress = std::io::stderr().is_terminal();
    match cli.cmd {
        Cmd::Init { archive, group } => {
            Archive::init_shared(&archive, group.as_deref())?;
            println!("initialised archive {} (branch main)", archive.display());
            Ok(0)
        }
        Cmd::Ingest { archive, sources, branch, to, message, proxies, json } => {
            let interrupt = interrupt_flag();
            let mut a = Archive::open_writer(&archive)?;
            let opts = IngestOptions {
                branch,
                dest: to,
                message,
                progress,
                prober: Some(reelfs::media::probe::probe_for_ingest),
                interrupt,
            };
            let rep = ingest::ingest(&mut a, &sources, &opts).map_err(|e| {
                if e.is_disk_full() {
                    anyhow::anyhow!("{e}\nthe disk holding {} is full; the archive is unchanged by this ingest. Free space and run it again.", archive.display())
                } else {
                    anyhow::Error::new(e)
                }
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                for (p, why) in &rep.damaged {
                    eprintln!("warning: {p}: stored byte-exact, but damaged as media: {why}");
                }
                for (p, why) in &rep.failed {
                    eprintln!("error: {p}: {why}");
                }
                match &rep.commit {
                    Some(c) => println!(
                        "committed {} on {}: {} files ({} unchanged), {} read, {} new stored, {} new chunks, {} deduplicated",
                        &c[..12], opts.branch, rep.files, rep.files_unchanged, human(rep.bytes_read), human(rep.bytes_new_stored), rep.chunks_new, rep.chunks_dedup
                    ),
                    None => println!("nothing changed on {}: {} files, all unchanged", opts.branch, rep.files),
                }
            }
            if proxies && !opts.interrupt.load(Ordering::Relaxed) {
                drop(a); // the proxy run takes the writer lock only to store
                let specs = ingested_specs(&opts.branch, &opts.dest, &sources);
                let rc = proxy_cmd(&archive, specs, "thumb,sheet,preview,editorial", 1, json, progress)?;
                if rc != 0 {
                    return Ok(rc);
                }
            }
            Ok(if rep.failed.is_empty() { 0 } else { 2 })
        }
        Cmd::Ls { archive, path, long, json } => {
            let a = Archive::open(&archive)?;
            let spec = path.unwrap_or_default();
            if spec.is_empty() {
                let branches = a.branches()?;
                if json {
                    let v: Vec<_> = branches.iter().map(|(n, h)| serde_json::json!({"name": n, "kind": "branch", "head": h.map(|h| h.to_hex())})).collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    for (n, _) in branches {
                        println!("{n}/");
                    }
                }
                return Ok(0);
            }
            let r = a.resolve(&spec)?;
            let entries = match r.entry.kind {
                EntryKind::Dir => {
                    if r.commit.is_none() {
                        Vec::new()
                    } else {
                        a.list_dir(&r.entry.hash)?
                    }
                }
                EntryKind::File => vec![r.entry.clone()],
            };
            let mut out = Vec::new();
            for e in &entries {
                let media = if e.kind == EntryKind::File { a.media(&e.hash)? } else { None };
                let in_branch = if r.entry.kind == EntryKind::File { r.path.clone() } else { format!("{}/{}", r.path, e.name).trim_start_matches('/').to_string() };
                let media = media.map(|(f, err)| (f.map(|f| reelfs::media::tcfact::facts_at(&a, r.commit.as_ref(), &in_branch, &e.hash, &f)), err));
                if json {
                    let mut v = serde_json::json!({
                        "name": e.name, "kind": e.kind, "size": e.size, "mode": format!("{:o}", e.mode),
                        "mtime_ns": e.mtime_ns, "hash": e.hash.to_hex(),
                    });
                    if let Some((facts, err)) = &media {
                        if let Some(f) = facts {
                            for k in ["duration_frames", "duration_seconds", "timecode", "drop_frame", "frame_rate", "frame_rate_fps", "codec", "reel", "timecode_source"] {
                                v[k] = f[k].clone();
                            }
                        }
                        v["damaged"] = serde_json::json!(err.is_some());
                    }
                    out.push(v);
                } else if long {
                    let m = match &media {
                        Some((Some(f), _)) => media_summary(f),
                        Some((None, Some(_))) => "DAMAGED".into(),
                        _ => String::new(),
                    };
                    let name = if e.kind == EntryKind::Dir { format!("{}/", e.name) } else { e.name.clone() };
                    println!("{:o}\t{:>12}\t{}\t{}\t{}", e.mode, e.size, fmt_time(e.mtime_ns), name, m);
                } else {
                    println!("{}{}", e.name, if e.kind == EntryKind::Dir { "/" } else { "" });
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Ok(0)
        }
        Cmd::Info { archive, path, json } => {
            let a = Archive::open(&archive)?;
            let r = a.resolve(&path)?;
            if r.entry.kind != EntryKind::File {
                return sequence_info(&a, &archive, &path, &r.entry, json);
            }
            let stored = a.catalog.blob_stored_bytes(&r.entry.hash)?;
            let media = a.media(&r.entry.hash)?;
            let (facts, err) = media.clone().unwrap_or((None, None));
            let facts = facts.map(|f| reelfs::media::tcfact::facts_at(&a, r.commit.as_ref(), &r.path, &r.entry.hash, &f));
            let v = serde_json::json!({
                "path": path, "size": r.entry.size, "mode": format!("{:o}", r.entry.mode), "mtime_ns": r.entry.mtime_ns,
                "content_hash": r.entry.hash.to_hex(), "stored_bytes": stored, "logical_bytes": r.entry.size,
                "media": facts, "damaged": err.is_some(), "probe_error": err,
            });
            let mut v = v;
            v["proxies"] = proxy_info(&a, &r.entry)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            println!("path          {path}");
            println!("size          {} ({})", r.entry.size, human(r.entry.size));
            println!("stored        {} ({})", stored, human(stored));
            // A file with huge holes has a layout id, not a BLAKE3 (archive/content_hash.rs).
            let plain = reelfs::archive::content_hash::is_plain_blake3(&a.catalog, &r.entry.hash)?;
            println!("content hash  {}", reelfs::archive::content_hash::label(&r.entry.hash, plain));
            println!("modified      {}", fmt_time(r.entry.mtime_ns));
            if let Some(e) = &err {
                println!("media         DAMAGED: {e}");
            }
            if let Some(f) = &facts {
                println!("container     {}", f["container"].as_str().unwrap_or("?"));
                if let Some(c) = f["codec"].as_str() {
                    println!("codec         {}{}", c, f["profile"].as_str().map(|p| format!(" ({p})")).unwrap_or_default());
                }
                if let (Some(w), Some(h)) = (f["width"].as_u64(), f["height"].as_u64()) {
                    println!("resolution    {w}x{h}");
                }
                if let Some(r) = f["frame_rate"].as_str() {
                    let vfr = f["variable_frame_rate"].as_bool().unwrap_or(false);
                    println!("frame rate    {} ({} fps){}", r, f["frame_rate_fps"], if vfr { ", VARIABLE" } else { "" });
                }
                if let Some(tc) = reelfs::media::tcfact::describe(f) {
                    println!("timecode      {tc}");
                }
                if let Some(breaks) = f["timecode_breaks"].as_array() {
                    let list: Vec<String> = breaks.iter().map(|b| format!("frame {} {}", b["frame"], b["timecode"].as_str().unwrap_or("?"))).collect();
                    println!("tc breaks     {}", list.join(", "));
                }
                if let Some(r) = f["reel"].as_str() {
                    println!("reel          {r}");
                }
                if let Some(d) = f["duration_frames"].as_u64() {
                    println!("duration      {d} frames");
                } else if let Some(d) = f["duration_seconds"].as_f64() {
                    println!("duration      {d:.3} s");
                }
                if let Some(p) = f["color_primaries"].as_str() {
                    println!("colour        primaries {p}, transfer {}, matrix {}", f["color_transfer"].as_str().unwrap_or("?"), f["color_matrix"].as_str().unwrap_or("?"));
                }
                println!("audio         {} tracks, {} channels", f["audio_tracks"], f["audio_channels"]);
                for s in f["streams"].as_array().into_iter().flatten() {
                    let mut line = format!("  #{} {} {}", s["index"], s["kind"].as_str().unwrap_or(""), s["codec"].as_str().unwrap_or(""));
                    if let Some(sr) = s["sample_rate"].as_u64() {
                        line += &format!(" {sr} Hz {}ch {}-bit", s["channels"], s["bits_per_sample"]);
                    }
                    if let Some(w) = s["width"].as_u64() {
                        line += &format!(" {w}x{} {}", s["height"], s["pix_fmt"].as_str().unwrap_or(""));
                    }
                    println!("{line}");
                }
            }
            print_proxies(&v["proxies"]);
            Ok(0)
        }
        Cmd::Proxy { archive, paths, profiles, jobs, watch, interval, json } => {
            if watch {
                return proxy_watch(&archive, paths, &profiles, jobs, interval);
            }
            proxy_cmd(&archive, paths, &profiles, jobs, json, progress)
        }
        Cmd::Cat { archive, path } => {
            let a = Archive::open(&archive)?;
            reelfs::commands::cat::cat(&a, &path, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Cmd::Restore { archive, mut paths } => {
            let dest = PathBuf::from(paths.pop().context("missing destination")?);
            let a = Archive::open(&archive)?;
            let interrupt = interrupt_flag();
            let rep = restore::restore(&a, &paths, &dest, &RestoreOptions { progress, interrupt: &interrupt })?;
            for (p, why) in &rep.failed {
                eprintln!("error: {p}: {why}");
            }
            println!("restored {} files, {} to {}", rep.files, human(rep.bytes), dest.display());
            Ok(if rep.failed.is_empty() { 0 } else { 1 })
        }
        Cmd::Check { archive, deep, rebuild_catalog, json } => {
            if rebuild_catalog {
                let rep = check::rebuild_catalog(&archive)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&rep)?);
                } else {
                    println!(
                        "rebuilt catalog from {} packs: {} chunks, {} files' contents, {} trees, {} commits, {} branches{}",
                        rep.packs, rep.chunks, rep.blobs, rep.trees, rep.commits, rep.branches,
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
                return Ok(0);
            }
            let a = Archive::open(&archive)?;
            let rep: CheckReport = check::check(&a, deep, progress)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
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
                println!(
                    "{}: {} packs, {} chunks, {} objects{}",
                    if rep.ok() { "ok" } else { "FAILED" },
                    rep.packs, rep.chunks, rep.objects,
                    if deep { format!(", {} verified", human(rep.bytes_verified)) } else { String::new() }
                );
            }
            Ok(if rep.ok() { 0 } else { 1 })
        }
        Cmd::Branch { archive, name, from, delete } => {
            match name {
                None => {
                    let a = Archive::open(&archive)?;
                    for (n, h) in a.branches()? {
                        println!("{n}\t{}", h.map(|h| h.to_hex()[..12].to_string()).unwrap_or_else(|| "(empty)".into()));
                    }
                }
                Some(n) if delete => {
                    let mut a = Archive::open_writer(&archive)?;
                    a.delete_branch(&n)?;
                    println!("deleted branch {n}");
                }
                Some(n) => {
                    let mut a = Archive::open_writer(&archive)?;
                    let from = from.unwrap_or_else(|| "main".into());
                    a.create_branch(&n, Some(&from))?;
                    println!("created branch {n} from {from}");
                }
            }
            Ok(0)
        }
        Cmd::Log { archive, branch, path, limit, json } => {
            let a = Archive::open(&archive)?;
            let spec = branch.unwrap_or_else(|| "main".into());
            let (_, head) = a.resolve_ref(&spec)?;
            let commit_json = |c: &reelfs::archive::catalog::CommitRow| {
                serde_json::json!({"commit": c.hash.to_hex(), "tree": c.tree.to_hex(), "parents": c.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(), "merge": c.parents.len() > 1, "time_ns": c.time_ns, "author": c.author, "message": c.message, "branch": c.branch})
            };
            let line = |c: &reelfs::archive::catalog::CommitRow| {
                let merge = if c.parents.len() > 1 {
                    format!("  (merge of {})", c.parents.iter().map(|p| p.to_hex()[..12].to_string()).collect::<Vec<_>>().join(" + "))
                } else {
                    String::new()
                };
                format!("{}  {}  {}  {}{merge}", &c.hash.to_hex()[..12], fmt_time(c.time_ns), c.author, c.message)
            };
            if let Some(p) = path {
                let events = reelfs::archive::diff::path_history(&a, head, &p, limit)?;
                if json {
                    let v: Vec<_> = events
                        .iter()
                        .map(|e| {
                            let mut j = commit_json(&e.commit);
                            j["path"] = serde_json::json!(e.path);
                            j["status"] = serde_json::json!(e.status);
                            j["renamed_from"] = serde_json::json!(e.renamed_from);
                            j
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    for e in &events {
                        let what = match &e.renamed_from {
                            Some(old) => format!("renamed {old} -> {}", e.path),
                            None => format!("{} {}", e.status.letter(), e.path),
                        };
                        println!("{}\n    {what}", line(&e.commit));
                    }
                }
                return Ok(0);
            }
            let commits = a.log(head, limit)?;
            if json {
                let v: Vec<_> = commits.iter().map(commit_json).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for c in &commits {
                    println!("{}", line(c));
                }
            }
            Ok(0)
        }
        Cmd::Diff { archive, a: spec_a, b: spec_b, path, json } => {
            use reelfs::archive::diff::{self, Status};
            let a = Archive::open(&archive)?;
            let changes = diff::diff(&a, &spec_a, &spec_b, path.as_deref().unwrap_or(""))?;
            let sum = diff::summarize(&changes);
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"a": spec_a, "b": spec_b, "path": path, "changes": changes, "summary": sum}))?);
            } else {
                for c in &changes {
                    match c.status {
                        Status::Added => println!("A  {}  ({})", c.path, human(c.size.unwrap_or(0))),
                        Status::Removed => println!("D  {}  ({})", c.path, human(c.old_size.unwrap_or(0))),
                        Status::Modified => println!("M  {}  ({} -> {})", c.path, human(c.old_size.unwrap_or(0)), human(c.size.unwrap_or(0))),
                        Status::Renamed => println!("R  {} -> {}  ({})", c.old_path.as_deref().unwrap_or("?"), c.path, human(c.size.unwrap_or(0))),
                    }
                }
                println!(
                    "{} added, {} removed, {} modified, {} renamed; +{} -{}",
                    sum.added, sum.removed, sum.modified, sum.renamed, human(sum.bytes_added), human(sum.bytes_removed)
                );
            }
            Ok(0)
        }
        Cmd::Merge { archive, src, into, ours, theirs, message, dry_run, json } => {
            use reelfs::archive::merge::{self, MergeOptions, Outcome};
            let mut a = Archive::open_writer(&archive)?;
            let rep = merge::merge(&mut a, &src, &into, &MergeOptions { ours, theirs, message, dry_run })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                for p in &rep.unused_resolutions {
                    eprintln!("warning: --ours/--theirs {p} matched no conflict");
                }
                let dry = if dry_run { " (dry run: nothing written)" } else { "" };
                match rep.outcome {
                    Outcome::UpToDate => println!("{into} is already up to date with {src}; nothing to merge"),
                    Outcome::FastForward => println!(
                        "fast-forward: {into} was an ancestor of {src}; {into} now points at {} ({} files changed){dry}",
                        &rep.commit.as_deref().unwrap_or("")[..12.min(rep.commit.as_deref().unwrap_or("").len())],
                        rep.changes.len()
                    ),
                    Outcome::Merged => {
                        for c in &rep.conflicts {
                            println!("resolved {} ({}): took {}", c.path, c.kind, c.resolved.as_deref().unwrap_or("?"));
                        }
                        println!(
                            "merged {src} into {into}: commit {} with parents {}; {} files changed{dry}",
                            &rep.commit.as_deref().unwrap_or("")[..12],
                            rep.parents.iter().map(|p| p[..12].to_string()).collect::<Vec<_>>().join(" + "),
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
            Ok(if rep.outcome == Outcome::Conflicts { 1 } else { 0 })
        }
        Cmd::Gc { archive, dry_run, json } => {
            use reelfs::archive::gc::{self, GcOptions};
            let mut a = Archive::open_writer(&archive)?;
            let rep = gc::gc(&mut a, &GcOptions { dry_run, ..Default::default() })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                for p in &rep.problems {
                    eprintln!("warning: {p}");
                }
                let verb = if dry_run { "would free" } else { "freed" };
                println!(
                    "{verb} {} on disk: {} chunks ({} stored), {} files' contents, {} trees, {} commits; packs: {} deleted, {} compacted into {} new ({} moved)",
                    human(rep.bytes_freed), rep.chunks_freed, human(rep.chunk_bytes_freed), rep.blobs_freed, rep.trees_freed, rep.commits_freed,
                    rep.packs_deleted, rep.packs_compacted, rep.packs_written, human(rep.bytes_moved)
                );
                println!("kept {} chunks ({}); {} of garbage left inside mostly-live packs", rep.live_chunks, human(rep.live_chunk_bytes), human(rep.garbage_bytes_left));
            }
            Ok(if rep.problems.is_empty() { 0 } else { 2 })
        }
        Cmd::Synth { archive, branch, add, start, modify, existing, seed, pool_chunks, extents_per_file } => {
            let mut a = Archive::open_writer(&archive)?;
            let opts = reelfs::archive::synth::SynthOptions { branch, add, start, modify, seed, pool_chunks, extents_per_file, existing };
            let rep = reelfs::archive::synth::synth(&mut a, &opts)?;
            println!("{}", serde_json::to_string_pretty(&rep)?);
            Ok(0)
        }
        Cmd::Mount { archive, mountpoint, foreground, allow_other, read_only, cache_size, threads, autocommit, remux_cache_limit } => {
            if !foreground {
                // Check what can be checked here, so errors print in the user's terminal.
                reelfs::fs::mount::preflight(&archive, &mountpoint)?;
                let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
                return mount_in_background(&args, &mountpoint);
            }
            let opts = reelfs::fs::mount::MountOptions {
                allow_other,
                read_only,
                cache_bytes: cache_size as usize,
                threads,
                autocommit: autocommit.filter(|s| *s > 0).map(std::time::Duration::from_secs),
                remux_cache_limit,
            };
            reelfs::fs::mount::mount_foreground(&archive, &mountpoint, &opts, || {
                if let Some(fd) = std::env::var("REELFS_READY_FD").ok().and_then(|v| v.parse::<i32>().ok()) {
                    // SAFETY: fd 3 was set up by the parent as the write end of a pipe.
                    unsafe {
                        libc::write(fd, b"1".as_ptr() as *const libc::c_void, 1);
                        libc::close(fd);
                    }
                } else {
                    eprintln!("mounted {} at {} (Ctrl-C to unmount)", archive.display(), mountpoint.display());
                }
            })?;
            Ok(0)
        }
        Cmd::Slice { archive, spec, output, json } => {
            let a = Archive::open(&archive)?;
            let res = reelfs::commands::slice::slice(&a, &spec, output.as_deref())?;
            let (plan, base_spec) = (&res.plan, &res.source);
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                println!(
                    "{spec}\n  source {base_spec}\n  in {} out {} ({}), first frame {}\n  frames {} (source frames {}..{}), handles {} before, {} after (asked {})\n  size {} bytes, {}",
                    plan.in_tc, plan.out_tc, plan.rate, plan.start_tc, plan.end_frame - plan.first_frame, plan.first_frame, plan.end_frame,
                    plan.handles_before, plan.handles_after, plan.handles_requested, plan.size, plan.method
                );
            }
            Ok(0)
        }
        Cmd::Extract { archive, path, edl, otio, in_tc, out_tc, handles, branch, out, json } => {
            use reelfs::commands::extract::{self, PullList};
            let a = Archive::open(&archive)?;
            let list = PullList::from_options(path.as_deref(), edl.as_deref(), otio.as_deref(), in_tc.as_deref(), out_tc.as_deref())?;
            let done = extract::extract(&a, &list, &branch, handles, &out)?;
            let (rep, report_path) = (&done.report, &done.report_path);
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                for w in &rep.warnings {
                    eprintln!("warning: {w}");
                }
                println!("{:<12} {:<10} {:<13} {:<13} {:<10} {}", "SOURCE", "REEL", "IN", "OUT", "STATUS", "OUTPUT / REASON");
                for p in &rep.pulls {
                    println!(
                        "{:<12} {:<10} {:<13} {:<13} {:<10} {}",
                        p.source, p.reel, p.src_in, p.src_out, p.status,
                        p.output.clone().or_else(|| p.reason.clone()).unwrap_or_default()
                    );
                    for c in &p.candidates {
                        let chosen = if p.clip.as_deref() == Some(c.path.as_str()) { "chosen" } else { "" };
                        let damaged = c.damaged.as_ref().map(|d| format!(" (damaged: {d})")).unwrap_or_default();
                        println!("{:<12} candidate {:<6} by {:<4} {}{damaged}", "", chosen, c.matched_by, c.path);
                    }
                    if let Some(why) = p.chosen_because.as_ref() {
                        println!("{:<12} chosen because {why}", "");
                    }
                }
                println!("{} extracted, {} missing, {} failed, {} invalid; report: {}", rep.extracted, rep.missing, rep.failed, rep.invalid, report_path.display());
            }
            Ok(if done.complete() { 0 } else { 3 })
        }
        Cmd::Commit { archive, branch, message } => {
            let mut a = Archive::open_writer(&archive)?;
            let msg = message.unwrap_or_else(|| "changes made through the mount".into());
            match a.commit_staging(&branch, &msg)? {
                Some(c) => println!("committed {} on {branch}", &c.to_hex()[..12]),
                None => println!("nothing staged on {branch}"),
            }
            Ok(0)
        }
        Cmd::Status { archive, branch, json } => {
            use reelfs::archive::staging::{Content, Staged};
            let a = Archive::open(&archive)?;
            a.resolve_ref(&branch)?;
            let rows = a.staging_rows(&branch)?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(p, s)| match s {
                        Staged::Deleted => serde_json::json!({"path": p, "change": "deleted"}),
                        Staged::Dir { .. } => serde_json::json!({"path": p, "change": "folder"}),
                        Staged::File { size, content, .. } => serde_json::json!({"path": p, "change": if matches!(content, Content::Blob(_)) { "moved" } else { "written" }, "size": size}),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if rows.is_empty() {
                println!("nothing staged on {branch}");
            } else {
                for (p, s) in rows {
                    match s {
                        Staged::Deleted => println!("deleted   {p}"),
                        Staged::Dir { .. } => println!("folder    {p}/"),
                        Staged::File { size, content: Content::Blob(_), .. } => println!("moved     {p} ({size} bytes)"),
                        Staged::File { size, .. } => println!("written   {p} ({size} bytes)"),
                    }
                }
            }
            Ok(0)
        }
        Cmd::Umount { mountpoint } => {
            reelfs::fs::mount::unmount(&mountpoint).map_err(anyhow::Error::msg)?;
            println!("unmounted {}", mountpoint.display());
            Ok(0)
        }
        Cmd::Tc { action } => tc_cmd(action),
        Cmd::Stats { archive, json } => {
            let a = Archive::open(&archive)?;
            let s = check::stats(&a)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
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
            Ok(0)
        }
    }
}

/// `info`'s "proxies": each stored proxy of the file's content.
fn proxy_info(a: &Archive, e: &reelfs::archive::objects::TreeEntry) -> Result<serde_json::Value> {
    proxies_json(a, &e.hash, |ext| reelfs::archive::proxies::proxy_file_name(&e.name, ext))
}

/// The stored proxies of a source (content hash or sequence key), named as the mount shows them.
fn proxies_json(a: &Archive, source: &reelfs::archive::Hash, name: impl Fn(&str) -> String) -> Result<serde_json::Value> {
    let mut out = Vec::new();
    for p in a.catalog.proxies_of(source)? {
        let ext = reelfs::media::proxy::Rung::parse(&p.profile).map(|r| r.ext()).unwrap_or("bin");
        out.push(serde_json::json!({
            "profile": p.profile, "settings_version": p.settings_version, "blob": p.blob.to_hex(),
            "size": a.catalog.blob_size(&p.blob)?, "partial_at": p.partial_at, "note": p.note,
            "name": format!(".proxy/{}/{}", p.profile, name(ext)),
            "damaged": p.damaged,
        }));
    }
    Ok(serde_json::Value::Array(out))
}

fn print_proxies(proxies: &serde_json::Value) {
    for p in proxies.as_array().into_iter().flatten() {
        println!(
            "proxy         {} v{} {} ({} bytes){}",
            p["profile"].as_str().unwrap_or(""),
            p["settings_version"],
            p["name"].as_str().unwrap_or(""),
            p["size"],
            p["partial_at"].as_i64().map(|f| format!(", PARTIAL from frame {f}")).unwrap_or_default()
        );
        if let Some(n) = p["note"].as_str().filter(|n| !n.is_empty()) {
            println!("              {n}");
        }
    }
}

/// `reelfs info` of a folder: the image sequences in it (frames, gaps, what
/// the first frame's header says, proxies). A folder without one is an error
/// that points at `ls`.
fn sequence_info(a: &Archive, archive: &std::path::Path, path: &str, dir: &reelfs::archive::objects::TreeEntry, json: bool) -> Result<i32> {
    use reelfs::media::sequence;
    let entries = a.list_dir(&dir.hash)?;
    let files = entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| (e.name.clone(), e.clone()));
    let seqs = sequence::group(files);
    if seqs.is_empty() {
        bail!("{path} is a folder with no image sequence; `reelfs ls {} {path}` lists it", archive.display());
    }
    let mut out = Vec::new();
    for s in &seqs {
        let key = s.key_by(|e| e.hash);
        let header = match s.frames.first() {
            Some((_, _, e)) => {
                let r = a.blob_reader(&e.hash)?;
                let mut buf = vec![0u8; (r.size as usize).min(256 << 10)];
                let n = r.read_at(0, &mut buf)?;
                sequence::frame_header(&s.ext, &buf[..n])
            }
            None => sequence::FrameHeader::default(),
        };
        let gaps: Vec<String> = s.gaps().iter().map(|(x, y)| if x == y { x.to_string() } else { format!("{x}-{y}") }).collect();
        let stem = s.stem();
        out.push(serde_json::json!({
            "pattern": s.pattern(), "stem": stem, "first": s.first(), "last": s.last(), "frames": s.frames.len(),
            "span": s.span(), "gaps": gaps, "sequence_key": key.to_hex(),
            "bytes": s.frames.iter().map(|f| f.2.size).sum::<u64>(),
            "timecode": header.timecode, "frame_rate": header.rate.map(|(n, d)| format!("{n}/{d}")),
            "proxies": proxies_json(a, &key, |ext| format!("{stem}.{ext}"))?,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "path": path, "sequences": out }))?);
        return Ok(0);
    }
    println!("path          {path}");
    for s in &out {
        println!("sequence      {} (frames {}-{}, {} files)", s["pattern"].as_str().unwrap_or(""), s["first"], s["last"], s["frames"]);
        if let Some(g) = s["gaps"].as_array().filter(|g| !g.is_empty()) {
            let g: Vec<&str> = g.iter().filter_map(|x| x.as_str()).collect();
            println!("missing       {}", g.join(", "));
        }
        println!("timecode      {}", s["timecode"].as_str().unwrap_or("none in the header"));
        println!("frame rate    {}", s["frame_rate"].as_str().unwrap_or("none in the header (proxies assume 24)"));
        println!("sequence key  blake3:{}", s["sequence_key"].as_str().unwrap_or(""));
        print_proxies(&s["proxies"]);
    }
    Ok(0)
}

fn proxy_cmd(archive: &std::path::Path, paths: Vec<String>, profiles: &str, jobs: usize, json: bool, progress: bool) -> Result<i32> {
    use reelfs::media::proxy::run as proxy_run;
    let rungs = proxy_run::parse_rungs(profiles).map_err(anyhow::Error::msg)?;
    let on_done: Option<proxy_run::OnDone> = if json {
        None
    } else {
        Some(Box::new(|i: &proxy_run::RenderedItem| {
            println!(
                "rendered {}: {} ({} frames, {:.1} s){}",
                i.path, i.profiles.join(", "), i.frames, i.seconds,
                i.partial_at.map(|f| format!(" PARTIAL: frames from {f} do not decode")).unwrap_or_default()
            );
            if !i.damaged.is_empty() {
                println!("  {}", i.note.split("; ").filter(|n| n.starts_with("damaged:")).collect::<Vec<_>>().join("; "));
            }
        }))
    };
    let opts = proxy_run::ProxyRunOptions { specs: paths, rungs, jobs: jobs.max(1), progress: progress && !json, interrupt: interrupt_flag(), on_done };
    let rep = proxy_run::run(archive, opts).map_err(|e| {
        if e.is_disk_full() {
            anyhow::anyhow!("{e}\nthe disk holding {} is full; every proxy already stored is kept and nothing is half-stored. Free space and run `reelfs proxy` again to resume.", archive.display())
        } else {
            anyhow::Error::new(e)
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        for (p, why) in &rep.skipped {
            println!("skipped {p}: {why}");
        }
        for (p, why) in &rep.failed {
            eprintln!("error: {p}: {why}");
        }
        println!(
            "{} rendered, {} up to date, {} skipped, {} failed; {} frames in {:.1} s{}",
            rep.rendered.len(), rep.up_to_date, rep.skipped.len(), rep.failed.len(), rep.frames, rep.seconds,
            if rep.interrupted { " (interrupted: run again to render the rest)" } else { "" }
        );
    }
    Ok(if rep.interrupted { 130 } else if rep.failed.is_empty() { 0 } else { 2 })
}

/// `BRANCH/DEST/NAME` of each ingested source, for `ingest --proxies`.
fn ingested_specs(branch: &str, dest: &str, sources: &[PathBuf]) -> Vec<String> {
    let dest = dest.trim_matches('/');
    sources
        .iter()
        .filter_map(|s| std::fs::canonicalize(s).ok()?.file_name()?.to_str().map(String::from))
        .map(|name| if dest.is_empty() { format!("{branch}/{name}") } else { format!("{branch}/{dest}/{name}") })
        .collect()
}

/// `reelfs proxy --watch`: render what is missing, then again whenever a branch
/// head moves; stop cleanly on SIGINT/SIGTERM (a render in progress is abandoned,
/// nothing half-visible).
fn proxy_watch(archive: &std::path::Path, paths: Vec<String>, profiles: &str, jobs: usize, interval: u64) -> Result<i32> {
    let interrupt = interrupt_flag();
    let heads = |a: &std::path::Path| -> Result<Vec<(String, Option<String>)>> {
        Ok(Archive::open(a)?.branches()?.into_iter().map(|(n, h)| (n, h.map(|h| h.to_hex()))).collect())
    };
    eprintln!("reelfs proxy: watching {} (every {interval} s)", archive.display());
    loop {
        let seen = heads(archive)?;
        let rc = proxy_cmd(archive, paths.clone(), profiles, jobs, false, false)?;
        if interrupt.load(Ordering::Relaxed) {
            return Ok(if rc == 130 { 0 } else { rc });
        }
        // Wait for a commit (a head that moves) or the signal.
        loop {
            for _ in 0..interval.max(1) * 10 {
                if interrupt.load(Ordering::Relaxed) {
                    return Ok(0);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if heads(archive)? != seen {
                break;
            }
        }
    }
}

/// `reelfs tc set|clear`: validate against the clip, then record the fact as a commit
/// on the clip's branch (see archive/tcfacts.rs).
fn tc_cmd(action: TcCmd) -> Result<i32> {
    use reelfs::archive::tcfacts::{self, TcFact};
    use reelfs::timecode::FrameRate;
    let (archive, path) = match &action {
        TcCmd::Set { archive, path, .. } | TcCmd::Clear { archive, path } => (archive.clone(), path.clone()),
    };
    let mut a = Archive::open_writer(&archive)?;
    let r = a.resolve(&path)?;
    if r.entry.kind != EntryKind::File || r.path.is_empty() {
        bail!("{path} is a folder; give BRANCH/PATH of a clip");
    }
    if r.branch.is_empty() || path.split('/').next().is_some_and(|b| b.contains('@')) {
        bail!("{path}: a timecode is recorded on a branch head, not on an old commit; give BRANCH/PATH");
    }
    let fact = match action {
        TcCmd::Clear { .. } => {
            if tcfacts::fact_at(&a, r.commit.as_ref(), &r.path, &r.entry.hash)?.is_none() {
                bail!("{path} has no timecode set by `reelfs tc set`; nothing to clear");
            }
            None
        }
        TcCmd::Set { tc, reel, rate, .. } => {
            let facts = a.media(&r.entry.hash)?.and_then(|(f, _)| f);
            let Some(facts) = facts else {
                bail!("{path} is not a probed media file (see `reelfs info`); a timecode can be set only on a clip");
            };
            let rate = match &rate {
                Some(s) => Some(s.parse::<FrameRate>()?),
                None => None,
            };
            let mut probe = facts.clone();
            if let Some(rt) = rate {
                let (n, d) = rt.num_den();
                probe["timecode_rate"] = serde_json::json!(format!("{n}/{d}"));
                probe["drop_frame"] = serde_json::json!(rt.is_drop_frame());
            }
            let clip_rate = match rate {
                Some(rt) => rt,
                None => reelfs::media::slice::clip_timing(&path, &probe)
                    .map(|t| t.0)
                    .map_err(|e| anyhow::anyhow!("{e}; give the rate with --rate"))?,
            };
            let label = reelfs::media::tcfact::validate(&tc, clip_rate)?;
            if let Some(rl) = &reel {
                if rl.trim().is_empty() || rl.chars().any(|c| c.is_control()) {
                    bail!("--reel {rl:?}: a reel name must be printable and not empty");
                }
            }
            Some(TcFact { timecode: label, reel, rate: rate.map(|r| r.to_string()) })
        }
    };
    let id = tcfacts::record(&mut a, &r.branch, &r.path, &r.entry.hash, fact.as_ref())?;
    match &fact {
        Some(f) => println!("{path}: start timecode {} recorded (commit {})", f.timecode, &id.to_hex()[..12]),
        None => println!("{path}: recorded timecode cleared (commit {})", &id.to_hex()[..12]),
    }
    Ok(0)
}
