//! The `reelfs` command line: parse (cli.rs), call a command of the library
//! (`reelfs::commands`), print the result (print.rs, or JSON with `--json`).

mod bar;
mod cli;
mod print;
mod print_tape;
mod process;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Cmd, TapeCmd, TcCmd};
use reelfs::archive::Archive;
use reelfs::commands;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

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
    match cli.cmd {
        Cmd::Init { archive, group, store, endpoint, region } => {
            let rep = commands::init::init_with_store(&archive, group.as_deref(), store.as_deref(), endpoint, region)?;
            match rep.store {
                Some(url) => println!("initialised archive {} (branch main), packs in {url}", archive.display()),
                None => println!("initialised archive {} (branch main)", archive.display()),
            }
            Ok(0)
        }
        Cmd::Ingest { archive, sources, branch, to, message, proxies, json } => {
            let req = commands::ingest::IngestRequest {
                sources,
                branch,
                to,
                message,
                progress: bar::handle(true),
                interrupt: process::interrupt_flag(),
            };
            let rep = commands::ingest::ingest(&archive, &req)?;
            if json {
                print::json(&rep)?;
            } else {
                print::ingest(&rep, &req.branch);
            }
            if proxies && !req.interrupt.load(Ordering::Relaxed) {
                let specs = commands::ingest::ingested_specs(&req.branch, &req.to, &req.sources);
                let rc = proxy(&archive, specs, "thumb,sheet,preview,editorial,preview-low", 1, json, false)?;
                if rc != 0 {
                    return Ok(rc);
                }
            }
            Ok(if rep.failed.is_empty() { 0 } else { 2 })
        }
        Cmd::Ls { archive, path, long, json } => {
            let listing = commands::ls::ls(&archive, path.as_deref().unwrap_or(""))?;
            if json {
                print::json(&listing)?;
            } else {
                print::ls(&listing, long);
            }
            Ok(0)
        }
        Cmd::Info { archive, path, json } => {
            let info = commands::info::info(&archive, &path)?;
            match &info {
                _ if json => print::json(&info)?,
                commands::info::Info::File(f) => print::file_info(f),
                commands::info::Info::Folder(f) => print::folder_info(f),
                commands::info::Info::Slice(s) => print::slice_info(s),
            }
            Ok(0)
        }
        Cmd::Proxy { archive, paths, profiles, jobs, watch, interval, json, worker } => {
            if watch {
                let req = commands::proxy::ProxyRequest {
                    paths,
                    profiles,
                    jobs,
                    progress: Default::default(),
                    interrupt: process::interrupt_flag(),
                };
                eprintln!("reelfs proxy: watching {} (every {interval} s)", archive.display());
                let on_done = || -> Option<reelfs::media::proxy::run::OnDone> { Some(Box::new(print::rendered)) };
                let every = std::time::Duration::from_secs(interval);
                if worker {
                    return Ok(commands::proxy::watch_as_worker(&archive, &req, every, on_done, print::proxy_run)?);
                }
                return Ok(commands::proxy::watch(&archive, &req, every, on_done, print::proxy_run)?);
            }
            proxy(&archive, paths, &profiles, jobs, json, worker)
        }
        Cmd::Cat { archive, path } => {
            let a = Archive::open(&archive)?;
            reelfs::commands::cat::cat(&a, &path, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Cmd::Restore { archive, mut paths } => {
            let dest = PathBuf::from(paths.pop().context("missing destination")?);
            let interrupt = process::interrupt_flag();
            let rep = commands::restore::restore(&archive, &paths, &dest, bar::handle(true), &interrupt)?;
            print::restore(&rep, &dest);
            Ok(if rep.failed.is_empty() { 0 } else { 1 })
        }
        Cmd::Check { archive, deep, rebuild_catalog, json, sample } => {
            if rebuild_catalog {
                let rep = commands::check::rebuild_catalog(&archive)?;
                if json {
                    print::json(&rep)?;
                } else {
                    print::rebuild(&rep);
                }
                return Ok(0);
            }
            let rep = commands::check::check_sampled(&archive, deep, sample, &bar::handle(true))?;
            if json {
                print::json(&rep)?;
            } else {
                print::check(&rep, deep);
            }
            Ok(if rep.ok() { 0 } else { 1 })
        }
        Cmd::Branch { archive, name, from, delete } => {
            match name {
                None => {
                    for b in commands::branch::list(&archive)? {
                        println!(
                            "{}\t{}",
                            b.name,
                            b.head.as_deref().map(|h| h[..12.min(h.len())].to_string()).unwrap_or_else(|| "(empty)".into())
                        );
                    }
                }
                Some(n) if delete => {
                    commands::branch::delete(&archive, &n)?;
                    println!("deleted branch {n}");
                }
                Some(n) => {
                    let from = from.unwrap_or_else(|| "main".into());
                    commands::branch::create(&archive, &n, &from)?;
                    println!("created branch {n} from {from}");
                }
            }
            Ok(0)
        }
        Cmd::Log { archive, branch, path, limit, json } => {
            let spec = branch.unwrap_or_else(|| "main".into());
            let entries = commands::log::log(&archive, &spec, path.as_deref(), limit)?;
            if json {
                print::json(&entries)?;
            } else {
                print::log(&entries);
            }
            Ok(0)
        }
        Cmd::Diff { archive, a, b, path, json } => {
            let d = commands::diff::diff(&archive, &a, &b, path.as_deref())?;
            if json {
                print::json(&d)?;
            } else {
                print::diff(&d);
            }
            Ok(0)
        }
        Cmd::Merge { archive, src, into, ours, theirs, message, dry_run, json } => {
            use reelfs::archive::merge::{MergeOptions, Outcome};
            let rep = commands::merge::merge(&archive, &src, &into, &MergeOptions { ours, theirs, message, dry_run })?;
            if json {
                print::json(&rep)?;
            } else {
                print::merge(&rep, &src, &into, dry_run);
            }
            Ok(if rep.outcome == Outcome::Conflicts { 1 } else { 0 })
        }
        Cmd::Gc { archive, dry_run, json } => {
            let rep = commands::gc::gc(&archive, dry_run, bar::handle(!json))?;
            if json {
                print::json(&rep)?;
            } else {
                print::gc(&rep, dry_run);
            }
            Ok(if rep.problems.is_empty() { 0 } else { 2 })
        }
        Cmd::Synth { archive, branch, add, start, modify, existing, seed, pool_chunks, extents_per_file, unique } => {
            let opts =
                reelfs::archive::synth::SynthOptions { branch, add, start, modify, seed, pool_chunks, extents_per_file, existing, unique };
            print::json(&commands::synth::synth(&archive, &opts)?)?;
            Ok(0)
        }
        Cmd::Mount {
            archive,
            mountpoint,
            foreground,
            allow_other,
            read_only,
            cache_size,
            threads,
            autocommit,
            remux_cache_limit,
            replica,
            poll,
            writeback,
        } => {
            if replica {
                // Before forking: a folder that cannot follow a bucket is refused in the terminal.
                replica_check(&archive)?;
            }
            if !foreground {
                // Check what can be checked here, so errors print in the user's terminal.
                commands::mount::preflight(&archive, &mountpoint)?;
                let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
                return process::mount_in_background(&args, &mountpoint);
            }
            let req = commands::mount::MountRequest {
                allow_other,
                read_only,
                cache_size,
                threads,
                autocommit_secs: autocommit,
                remux_cache_limit,
            };
            let req = commands::mount::MountRequest { read_only: read_only || replica, ..req };
            if replica {
                replica_follow(&archive, poll)?;
            }
            let opts = commands::mount::MountOptions { writeback, ..req.options() };
            commands::mount::mount_with(&archive, &mountpoint, &opts, || {
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
                println!("{:<12} {:<10} {:<13} {:<13} {:<10} OUTPUT / REASON", "SOURCE", "REEL", "IN", "OUT", "STATUS");
                for p in &rep.pulls {
                    println!(
                        "{:<12} {:<10} {:<13} {:<13} {:<10} {}",
                        p.source,
                        p.reel,
                        p.src_in,
                        p.src_out,
                        p.status,
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
                println!(
                    "{} extracted, {} missing, {} failed, {} invalid; report: {}",
                    rep.extracted,
                    rep.missing,
                    rep.failed,
                    rep.invalid,
                    report_path.display()
                );
            }
            Ok(if done.complete() { 0 } else { 3 })
        }
        Cmd::Commit { archive, branch, message } => {
            match commands::status::commit(&archive, &branch, message.as_deref())? {
                Some(c) => println!("committed {} on {branch}", &c[..12]),
                None => println!("nothing staged on {branch}"),
            }
            Ok(0)
        }
        Cmd::Status { archive, branch, json } => {
            let rows = commands::status::status(&archive, &branch)?;
            if json {
                print::json(&rows)?;
            } else {
                print::status(&rows, &branch);
            }
            Ok(0)
        }
        Cmd::Umount { mountpoint } => {
            commands::mount::unmount(&mountpoint)?;
            println!("unmounted {}", mountpoint.display());
            Ok(0)
        }
        Cmd::Tc { action } => {
            use commands::tc::TcChange;
            let (archive, path, change) = match action {
                TcCmd::Set { archive, path, tc, reel, rate } => (archive, path, TcChange::Set { tc, reel, rate }),
                TcCmd::Clear { archive, path } => (archive, path, TcChange::Clear),
            };
            let rep = commands::tc::tc(&archive, &path, change)?;
            match &rep.timecode {
                Some(tc) => println!("{path}: start timecode {tc} recorded (commit {})", &rep.commit[..12]),
                None => println!("{path}: recorded timecode cleared (commit {})", &rep.commit[..12]),
            }
            Ok(0)
        }
        Cmd::Stats { archive, json } => {
            let s = commands::stats::stats(&archive)?;
            if json {
                print::json(&s)?;
            } else {
                print::stats(&s);
            }
            Ok(0)
        }
        Cmd::Serve { archive, listen, cache_size, token_key, max_connections, idle_timeout, tls_cert, tls_key } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(reelfs::serve::tls::TlsFiles { cert, key }),
                _ => None,
            };
            let scheme = if tls.is_some() { "https" } else { "http" };
            let opts = reelfs::serve::ServeOptions {
                listen,
                cache_bytes: usize::try_from(cache_size).unwrap_or(usize::MAX),
                token_key,
                max_connections,
                idle_timeout: std::time::Duration::from_secs(idle_timeout.max(1)),
                tls,
            };
            reelfs::serve::run(&archive, &opts, |addr| {
                // The first line of stdout: scripts (and tests) read the port from it.
                println!("serving {} at {scheme}://{addr}/ (Ctrl-C stops)", archive.display());
                use std::io::Write;
                let _ = std::io::stdout().flush();
            })?;
            Ok(0)
        }
        Cmd::Share { archive, path, token_key, expires, base_url, json } => {
            let expires_in = reelfs::serve::sign::parse_duration(&expires).map_err(anyhow::Error::msg).context("--expires")?;
            let now = reelfs::serve::conditional::now_secs();
            let req = reelfs::serve::share::ShareRequest { path: &path, key_file: &token_key, expires_in, base_url: &base_url, now };
            let s = reelfs::serve::share::share(&archive, &req)?;
            if json {
                print::json(&s)?;
            } else {
                println!("{}", s.url);
            }
            Ok(0)
        }
        Cmd::Hls { archive, path, out, range, json } => {
            let res = commands::hls::export(&archive, &commands::hls::HlsRequest { spec: path, out, range })?;
            if json {
                print::json(&res)?;
            } else {
                for r in &res.rungs {
                    println!(
                        "{}  {}x{}  {} kb/s peak, {} kb/s average  {} segments  {}",
                        r.profile,
                        r.width,
                        r.height,
                        r.bandwidth.div_ceil(1000),
                        r.average_bandwidth.div_ceil(1000),
                        r.segments,
                        r.playlist.display()
                    );
                }
                println!("master playlist: {}", res.master.display());
            }
            Ok(0)
        }
        Cmd::Tape { action } => tape(action),
        #[cfg(feature = "s3")]
        Cmd::Store { action: cli::StoreCmd::Migrate { archive, url, endpoint, region, json } } => {
            let rep = commands::store::migrate(&archive, &url, endpoint, region, &process::interrupt_flag(), &bar::handle(!json))?;
            if json {
                print::json(&rep)?;
            } else {
                println!(
                    "migrated {} packs to {} ({} copied, {} verified earlier, {} already there); the archive now reads its packs from there",
                    rep.packs, rep.store, rep.copied, rep.resumed, rep.already_there
                );
                println!(
                    "the local packs in {} are no longer used: remove them once `reelfs check {} --deep` passes",
                    archive.join("packs").display(),
                    archive.display()
                );
            }
            Ok(0)
        }
        #[cfg(feature = "s3")]
        Cmd::Attach { dir, url, endpoint, region, json } => {
            let rep = commands::store::attach(&dir, &url, endpoint, region)?;
            if json {
                print::json(&rep)?;
            } else {
                println!(
                    "attached {} to {} at catalog snapshot {} (published by {}); branches: {}",
                    rep.archive.display(),
                    rep.store,
                    rep.snapshot,
                    rep.published_by,
                    rep.branches.join(", ")
                );
            }
            Ok(0)
        }
    }
}

/// `reelfs tape ...`: call the command, print its result (print_tape.rs) or JSON.
fn tape(action: TapeCmd) -> Result<i32> {
    use commands::tape::{self as t, VolumeArg};
    match action {
        TapeCmd::Format { device, tape, capacity, force, json, block_size } => {
            let req = commands::tape_format::TapeFormatRequest { device: &device, barcode: &tape, capacity, force, block_size };
            let rep = commands::tape_format::tape_format(&req)?;
            if json {
                print::json(&rep)?;
            } else {
                print::tape_format(&rep);
            }
            Ok(0)
        }
        TapeCmd::Plan { archive, paths, generation, capacity, copies, pool, name, json } => {
            let req = t::PlanRequest { selections: paths, generation, capacity, copies, pool, name };
            let rep = t::plan(&archive, &req)?;
            if json {
                print::json(&rep)?;
            } else {
                print_tape::plan(&rep);
            }
            Ok(0)
        }
        TapeCmd::Write { archive, plan, tape, ltfs_mount: None, device, verify, json, changer: Some(changer) } => {
            let out = t::write_with_changer(
                &archive,
                &plan,
                &tape,
                &changer,
                device.as_deref(),
                verify,
                bar::handle(!json),
                process::interrupt_flag(),
            )?;
            if json {
                print::json(&out)?;
            } else {
                for c in &out.cartridges {
                    print_tape::write(c);
                }
                if let Some(next) = &out.waiting_for {
                    eprintln!(
                        "reelfs: cartridge {next} is next and is not in the library: put it in a free slot and run `reelfs tape write {} {plan} --tape {next} --changer {}`",
                        archive.display(),
                        changer.display()
                    );
                }
            }
            Ok(if out.interrupted() {
                130
            } else if out.ok() {
                0
            } else {
                2
            })
        }
        TapeCmd::Write { changer: Some(_), .. } => Err(anyhow::anyhow!("--changer loads the cartridge itself: leave out --ltfs-mount")),
        TapeCmd::Write { archive, plan, tape, ltfs_mount, device, verify, json, changer: None } => {
            let vol = VolumeArg::from_flags(ltfs_mount, device)?;
            let out = t::write_stoppable(&archive, &plan, &tape, &vol, verify, bar::handle(!json), process::interrupt_flag())?;
            if json {
                print::json(&out)?;
            } else {
                print_tape::write(&out);
            }
            Ok(if out.write.interrupted {
                130
            } else if out.ok() {
                0
            } else {
                2
            })
        }
        TapeCmd::Verify { archive, tape, ltfs_mount, device, json, changer } => {
            let rep = match changer {
                Some(_) if ltfs_mount.is_some() => {
                    return Err(anyhow::anyhow!("--changer loads the cartridge itself: leave out --ltfs-mount"))
                }
                Some(ch) => t::verify_with_changer(&archive, &tape, &ch, device.as_deref(), bar::handle(!json))?,
                None => t::verify(&archive, &tape, &VolumeArg::from_flags(ltfs_mount, device)?, bar::handle(!json))?,
            };
            if json {
                print::json(&rep)?;
            } else {
                print_tape::verify(&rep);
            }
            Ok(if rep.ok() { 0 } else { 2 })
        }
        TapeCmd::Ls { archive, tape, json } => {
            let l = t::ls(&archive, tape.as_deref())?;
            if json {
                print::json(&l)?;
            } else {
                print_tape::ls(&l);
            }
            Ok(0)
        }
        TapeCmd::Where { archive, path, json } => {
            let w = t::where_is(&archive, &path)?;
            if json {
                print::json(&w)?;
            } else {
                print_tape::where_is(&w);
            }
            Ok(0)
        }
        TapeCmd::Export { archive, plan, dir, json } => {
            let rep = t::export(&archive, &plan, &dir)?;
            if json {
                print::json(&rep)?;
            } else {
                for f in &rep.files {
                    println!("{}", f.display());
                }
                println!("exported plan {} to {} ({} files)", rep.plan, rep.dir.display(), rep.files.len());
            }
            Ok(0)
        }
        TapeCmd::Release { archive, plan, copies, json } => {
            let rep = t::release(&archive, &plan, copies)?;
            if json {
                print::json(&rep)?;
            } else {
                print_tape::release(&rep);
            }
            Ok(0)
        }
        TapeCmd::Recall { archive, paths, from, ltfs_mount, device, json, changer, order } => {
            let order = if order == "given" { reelfs::tape::recall::Order::Given } else { reelfs::tape::recall::Order::Tape };
            let rep = match changer {
                Some(_) if ltfs_mount.is_some() => {
                    return Err(anyhow::anyhow!("--changer loads the cartridge itself: leave out --ltfs-mount"))
                }
                Some(_) if order == reelfs::tape::recall::Order::Given => {
                    return Err(anyhow::anyhow!("--order given reads one cartridge: leave out --changer"))
                }
                Some(ch) => t::recall_with_changer(&archive, &paths, &from, &ch, device.as_deref())?,
                None => t::recall_in_order(&archive, &paths, &from, &VolumeArg::from_flags(ltfs_mount, device)?, order)?,
            };
            if json {
                print::json(&rep)?;
            } else {
                print_tape::recall(&rep);
            }
            Ok(if rep.ok() { 0 } else { 2 })
        }
    }
}

/// `reelfs proxy` (and `ingest --proxies`): render, print each file as it is
/// stored and a summary (or the report as JSON). A `worker` shares the
/// bucket's queue with other hosts.
fn proxy(archive: &std::path::Path, paths: Vec<String>, profiles: &str, jobs: usize, json: bool, worker: bool) -> Result<i32> {
    let req = commands::proxy::ProxyRequest {
        paths,
        profiles: profiles.to_string(),
        jobs,
        progress: bar::handle(!json),
        interrupt: process::interrupt_flag(),
    };
    let on_done: Option<reelfs::media::proxy::run::OnDone> = if json { None } else { Some(Box::new(print::rendered)) };
    let rep =
        if worker { commands::proxy::render_as_worker(archive, &req, on_done)? } else { commands::proxy::render(archive, &req, on_done)? };
    if json {
        print::json(&rep)?;
    } else {
        print::proxy_run(&rep);
    }
    Ok(commands::proxy::exit_code(&rep))
}

/// `mount --replica`: the archive folder must follow a bucket.
#[cfg(feature = "s3")]
fn replica_check(archive: &std::path::Path) -> Result<()> {
    Ok(commands::store::check_replica(archive)?)
}

#[cfg(not(feature = "s3"))]
fn replica_check(_archive: &std::path::Path) -> Result<()> {
    anyhow::bail!("--replica follows an archive in a bucket, and this reelfs was built without S3 support (feature `s3`)")
}

/// `mount --replica`: keep the catalog at the writer's newest published snapshot.
#[cfg(feature = "s3")]
fn replica_follow(archive: &std::path::Path, poll: u64) -> Result<()> {
    Ok(commands::store::follow(archive, poll)?)
}

#[cfg(not(feature = "s3"))]
fn replica_follow(archive: &std::path::Path, _poll: u64) -> Result<()> {
    replica_check(archive)
}
