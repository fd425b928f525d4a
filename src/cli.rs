//! The `reelfs` command line's flags (clap derive). Parsing only: what each
//! command does is in `reelfs::commands`, how its result is shown in print.rs.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "reelfs", version, about = "A film-production archive that mounts as a filesystem")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create a new, empty archive (private to you; --group shares it read-only).
    Init {
        archive: PathBuf,
        /// Share the archive with this group: folders 2750 owned by it, files 0640.
        #[arg(long)]
        group: Option<String>,
        /// Keep the packs in an S3-compatible bucket: s3://BUCKET/PREFIX (credentials
        /// from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, never stored).
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// The S3-compatible server's URL (MinIO, Ceph RGW, ...); default: AWS.
        #[arg(long, requires = "store")]
        endpoint: Option<String>,
        /// The bucket's region (default: AWS_REGION/AWS_DEFAULT_REGION, or us-east-1).
        #[arg(long, requires = "store")]
        region: Option<String>,
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
        /// Re-read and re-hash about PERCENT of the packs, drawn afresh each run
        /// (a routine check of a remote store; --deep reads them all).
        #[arg(long, value_name = "PERCENT", conflicts_with = "deep", value_parser = parse_percent)]
        sample: Option<f64>,
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
        /// Every extent its own chunk, in sparse stand-in packs (scripts/bench scale).
        #[arg(long)]
        unique: bool,
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
        /// Follow the writer of a shared bucket: read-only, the catalog kept at the
        /// newest snapshot the writer published (see `reelfs attach`).
        #[arg(long)]
        replica: bool,
        /// With --replica: seconds between looks at the bucket for new commits (1-300).
        #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
        poll: u64,
        /// Let the kernel cache writes into branch files and send them in large
        /// batches (on), or send every write(2) straight to reelfs (off, the default).
        #[arg(long, value_name = "on|off", default_value = "off", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
        writeback: bool,
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
        #[arg(long, default_value = "thumb,sheet,preview,editorial,preview-low")]
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
        /// Share the work with `proxy --worker` runs on other hosts attached to the
        /// same bucket: each source is claimed in the bucket before it is rendered,
        /// so none is rendered twice (archives whose packs are in a bucket).
        #[arg(long)]
        worker: bool,
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
    /// Serve the archive read-only over HTTP: originals, slices, proxies and old
    /// versions at their mount paths, with byte ranges, ETags and folder listings.
    /// Runs until Ctrl-C / SIGTERM.
    Serve {
        archive: PathBuf,
        /// Address to listen on. The default is loopback only; 0.0.0.0:8080 serves
        /// the whole network (use --token-key then). Port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Memory for read-ahead and decoded chunks, shared by all clients, e.g. 512M, 4G.
        #[arg(long, default_value = "1G", value_parser = parse_size)]
        cache_size: u64,
        /// Serve only links signed with the key in FILE (`reelfs share` makes them).
        #[arg(long, value_name = "FILE")]
        token_key: Option<PathBuf>,
        /// Connections served at once; more are answered 503 with Retry-After.
        #[arg(long, default_value_t = 256)]
        max_connections: usize,
        /// Close a connection on which nothing moved for SECS seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        idle_timeout: u64,
        /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
        /// HTTP/2 is offered by ALPN, HTTP/1.1 still served.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Print a signed link to BRANCH/PATH for a `reelfs serve --token-key FILE`.
    Share {
        archive: PathBuf,
        path: String,
        /// The key the server was started with.
        #[arg(long, value_name = "FILE")]
        token_key: PathBuf,
        /// How long the link works: 24h, 90m, 7d, 3600s.
        #[arg(long, default_value = "24h")]
        expires: String,
        /// Where the recipient reaches the server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
        #[arg(long)]
        json: bool,
    },
    /// Write an HLS folder for a clip: a master playlist over its preview rungs
    /// (preview-low, preview, preview-high, preview-low-vp9), a media playlist per rung cutting
    /// the rung's fragmented MP4 by byte range, and the MP4 files. Any static
    /// web server, or `ffmpeg -i STEM.m3u8`, plays it.
    Hls {
        archive: PathBuf,
        /// BRANCH[@COMMIT]/PATH of the clip.
        path: String,
        /// Folder to write into (created; not inside the archive).
        out: PathBuf,
        /// Only the segments covering IN-OUT (timecodes, out exclusive), playback
        /// starting at the in frame: --range 01:00:10:00-01:00:20:00.
        #[arg(long)]
        range: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write the archive to LTO tape as LTFS volumes: format, plan, write, verify, ls,
    /// where, export (see `reelfs tape --help`).
    Tape {
        #[command(subcommand)]
        action: TapeCmd,
    },
    /// Where the packs live: `reelfs store migrate ARCHIVE s3://BUCKET/PREFIX` moves them to a bucket.
    #[cfg(feature = "s3")]
    Store {
        #[command(subcommand)]
        action: StoreCmd,
    },
    /// Make DIR an archive folder for the archive in a bucket, from the catalog
    /// its writer published there (another host joining: edit bay, render node).
    #[cfg(feature = "s3")]
    Attach {
        dir: PathBuf,
        /// s3://BUCKET/PREFIX of the archive.
        url: String,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[cfg(feature = "s3")]
#[derive(Subcommand)]
pub enum StoreCmd {
    /// Copy every pack to an S3-compatible bucket, verify each read back, then switch the
    /// archive to it (interrupt with Ctrl-C; running it again resumes).
    Migrate {
        archive: PathBuf,
        /// s3://BUCKET/PREFIX (an empty prefix, or the one an interrupted migration used).
        url: String,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TcCmd {
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

pub fn parse_size(s: &str) -> Result<u64, String> {
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

#[derive(Subcommand)]
pub enum TapeCmd {
    /// Label a new cartridge as an empty LTFS volume (as `mkltfs` does).
    /// --device DIR emulates a cartridge in a directory (the reference LTFS
    /// file-backend layout: `ltfs -o tape_backend=file -o devname=DIR` mounts it);
    /// a character device (/dev/nst0) is a real drive.
    Format {
        /// A directory (emulated cartridge) or a non-rewinding tape device.
        #[arg(long)]
        device: PathBuf,
        /// The cartridge's barcode (A00001L8); its first six characters are the volume serial.
        #[arg(long)]
        tape: String,
        /// Size of an emulated cartridge (e.g. 12T, 500G); default 3G, the reference backend's.
        #[arg(long, value_parser = parse_size)]
        capacity: Option<u64>,
        /// Erase a cartridge that already holds an LTFS volume.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
        /// LTFS block size: the size of every record on the cartridge (4K to 4M, a
        /// multiple of 4K); default 512K, what every LTFS driver and drive takes.
        #[arg(long, value_parser = parse_size)]
        block_size: Option<u64>,
    },
    /// Lay files out over cartridges in write order and store it as a named plan.
    Plan {
        archive: PathBuf,
        /// What to put on tape: BRANCH or BRANCH/PATH, one or more.
        #[arg(required = true)]
        paths: Vec<String>,
        /// LTO generation: LTO-5 .. LTO-9 (capacity and barcode suffix; default LTO-8).
        #[arg(long)]
        generation: Option<String>,
        /// Native capacity per cartridge, decimal as tape makers count (12T, 800G).
        #[arg(long, value_parser = reelfs::tape::plan::parse_capacity)]
        capacity: Option<u64>,
        /// Copies of the set (copy 1 on A-barcodes, copy 2 on B-barcodes, ...).
        #[arg(long, default_value_t = 1)]
        copies: u32,
        /// Tape pool the plan belongs to.
        #[arg(long)]
        pool: Option<String>,
        /// Name of the plan (default plan-N).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write one cartridge's part of a plan onto a mounted LTFS volume.
    Write {
        archive: PathBuf,
        plan: String,
        #[arg(long)]
        tape: String,
        /// Folder where your LTFS driver mounted the cartridge.
        #[arg(long, value_name = "DIR")]
        ltfs_mount: Option<PathBuf>,
        /// A tape device or file-emulated cartridge (reelfs's own LTFS writer).
        #[arg(long, value_name = "PATH")]
        device: Option<PathBuf>,
        /// Read every file back right after writing it and compare with the archive.
        #[arg(long)]
        verify: bool,
        #[arg(long)]
        json: bool,
        /// A tape library: a folder emulating one (slots/NNN/BARCODE/) or a SCSI changer
        /// (/dev/sgN, driven by `mtx`, with --device its drive). Loads --tape, and the next
        /// cartridge when one is full.
        #[arg(long, value_name = "DEV")]
        changer: Option<PathBuf>,
    },
    /// Read a cartridge back in tape order and compare every file's BLAKE3 with the archive.
    Verify {
        archive: PathBuf,
        #[arg(long)]
        tape: String,
        #[arg(long, value_name = "DIR")]
        ltfs_mount: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        device: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// A tape library that loads --tape (see `tape write --changer`).
        #[arg(long, value_name = "DEV")]
        changer: Option<PathBuf>,
    },
    /// List cartridges, or with --tape the files on one (offline, from the catalog).
    Ls {
        archive: PathBuf,
        #[arg(long)]
        tape: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Which cartridges hold BRANCH/PATH: copy, state, partition, start block, parts.
    Where {
        archive: PathBuf,
        path: String,
        #[arg(long)]
        json: bool,
    },
    /// Write a plan's catalog (JSON, CSV, join list, HTML, per-cartridge ASC MHL) into DIR.
    Export {
        archive: PathBuf,
        plan: String,
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Free the disk copy of a plan's files verified on at least --copies cartridges
    /// (catalog, media facts and proxies stay; reading them fails until `tape recall`).
    Release {
        archive: PathBuf,
        plan: String,
        /// Verified copies a file needs before its disk copy goes (default: the plan's copies).
        #[arg(long)]
        copies: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Bring released files back onto disk from one cartridge, read in tape order and
    /// checked against their BLAKE3.
    Recall {
        archive: PathBuf,
        /// BRANCH/PATH of each file, as `tape where` takes it.
        #[arg(required = true)]
        paths: Vec<String>,
        /// The cartridge to read (its barcode).
        #[arg(long)]
        from: String,
        #[arg(long, value_name = "DIR")]
        ltfs_mount: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        device: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// A tape library that loads --from (see `tape write --changer`).
        #[arg(long, value_name = "DEV")]
        changer: Option<PathBuf>,
        /// `tape`: in tape order (the head only moves forward); `given`: in the
        /// order of PATHS, for comparison (on a real drive each step back is a
        /// locate of tens of seconds)
        #[arg(long, default_value = "tape", value_parser = ["tape", "given"])]
        order: String,
    },
}

/// `--sample PERCENT`: more than 0, at most 100.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('%').parse().map_err(|_| format!("'{s}' is not a percentage like 5 or 12.5"))?;
    if v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(format!("--sample {s}: give a percentage above 0 and at most 100"))
    }
}
