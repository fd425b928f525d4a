//! The mount through the library: `reelfs::fs::core::FsCore` over archives built
//! with `reelfs::archive` (lookup, readdir, read, xattrs, ENOENT, EROFS, damage),
//! without FUSE; then one real FUSE mount through
//! `reelfs::fs::mount::mount_foreground` in a thread, unmounted in Drop.
//!
//! The real mount needs /dev/fuse and fusermount3: where they are missing the
//! test fails (it does not skip), as the issue asks.

use reelfs::archive::ingest::{self, IngestOptions};
use reelfs::archive::pack::RECORD_HEADER_LEN;
use reelfs::archive::{Archive, Hash};
use reelfs::fs::core::{FsCore, FsError, FsOptions, NodeType};
use reelfs::fs::inodes::ROOT_INO;
use reelfs::fs::mount::{self, MountOptions};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

mod common;
use common::{noise, write};

fn ingest(root: &Path, src: &Path, dest: &str, probe: bool) {
    let mut a = Archive::open_writer(root).unwrap();
    let opts = IngestOptions {
        branch: "main".into(),
        dest: dest.into(),
        message: Some(format!("ingest {dest}")),
        progress: Default::default(),
        prober: if probe { Some(reelfs::media::probe::probe_for_ingest) } else { None },
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let rep = ingest::ingest(&mut a, &[src.to_path_buf()], &opts).unwrap();
    assert!(rep.failed.is_empty(), "{:?}", rep.failed);
}

/// A source folder `card/` with files of several sizes and modes.
fn card(dir: &Path) -> (PathBuf, BTreeMap<String, Vec<u8>>) {
    let src = dir.join("card");
    let mut files = BTreeMap::new();
    for (i, (rel, len, mode)) in
        [("clip0.bin", 5 << 20, 0o644), ("clip1.bin", 100_000, 0o600), ("empty.bin", 0, 0o644), ("sub/deep/x.bin", 4097, 0o755)]
            .into_iter()
            .enumerate()
    {
        let data = noise(i as u64 + 1, len);
        write(&src.join(rel), &data, mode, 1_600_000_000 + i as i64);
        files.insert(rel.to_string(), data);
    }
    (src, files)
}

fn new_archive(dir: &Path) -> PathBuf {
    let root = dir.join("archive");
    drop(Archive::init(&root).unwrap());
    // A fixed chunker seed instead of init's random one, so how files are cut is
    // the same every run (a random seed once left a 12 MiB file in one chunk
    // and the damaged-chunk test had no neighbour chunk to read).
    let toml = root.join("reelfs.toml");
    let mut cfg = reelfs::archive::config::Config::load(&toml).unwrap();
    cfg.chunker.seed = 0x5eed0f7e57;
    std::fs::write(&toml, cfg.to_toml().unwrap()).unwrap();
    root
}

fn core(root: &Path) -> FsCore {
    // read_only (the default): the core refuses every change with EROFS.
    FsCore::new(Archive::open(root).unwrap(), FsOptions { cache_bytes: 64 << 20, readahead_workers: 2, ..Default::default() })
}

/// Walk `a/b/c` from the mount root.
fn walk(fs: &FsCore, path: &str) -> Result<reelfs::fs::Attr, FsError> {
    let mut ino = ROOT_INO;
    let mut attr = fs.getattr(ROOT_INO)?;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        attr = fs.lookup(ino, part)?;
        ino = attr.ino;
    }
    Ok(attr)
}

fn read_all(fs: &FsCore, ino: u64, step: u32) -> Vec<u8> {
    let fh = fs.open(ino, false).unwrap();
    let mut out = Vec::new();
    loop {
        let b = fs.read(fh, out.len() as u64, step).unwrap();
        if b.is_empty() {
            break;
        }
        out.extend_from_slice(&b);
    }
    let _ = fs.release(fh);
    out
}

#[test]
fn core_lookup_readdir_getattr() {
    let dir = tempfile::tempdir().unwrap();
    let (src, files) = card(dir.path());
    let root = new_archive(dir.path());
    ingest(&root, &src, "Day01", false);
    let fs = core(&root);

    // The root lists one directory per branch.
    let top = fs.readdir(ROOT_INO).unwrap();
    assert_eq!(top.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["main"]);
    assert_eq!(top[0].1.kind, NodeType::Dir);

    let card = walk(&fs, "main/Day01/card").unwrap();
    assert_eq!(card.kind, NodeType::Dir);
    let mut names: Vec<String> = fs.readdir(card.ino).unwrap().into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["clip0.bin", "clip1.bin", "empty.bin", "sub"]);

    // Sizes, modes and mtimes as archived; readdir and lookup agree on inodes.
    for (rel, data) in &files {
        let a = walk(&fs, &format!("main/Day01/card/{rel}")).unwrap();
        let meta = std::fs::metadata(src.join(rel)).unwrap();
        assert_eq!(a.kind, NodeType::File, "{rel}");
        assert_eq!(a.size, data.len() as u64, "{rel}");
        assert_eq!(a.mode & 0o7777, meta.mode() & 0o7777, "{rel}");
        assert_eq!(a.mtime_ns, meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), "{rel}");
        assert_eq!(fs.getattr(a.ino).unwrap().ino, a.ino);
    }
    let listed: BTreeMap<String, u64> = fs.readdir(card.ino).unwrap().into_iter().map(|(n, a)| (n, a.ino)).collect();
    assert_eq!(listed["clip0.bin"], walk(&fs, "main/Day01/card/clip0.bin").unwrap().ino);

    // `.` and `..`; inode numbers stable across lookups.
    assert_eq!(fs.lookup(card.ino, ".").unwrap().ino, card.ino);
    assert_eq!(fs.lookup(card.ino, "..").unwrap().ino, walk(&fs, "main/Day01").unwrap().ino);
    assert_eq!(walk(&fs, "main/Day01/card").unwrap().ino, card.ino);
}

#[test]
fn core_missing_names_and_wrong_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = card(dir.path());
    let root = new_archive(dir.path());
    ingest(&root, &src, "Day01", false);
    let fs = core(&root);
    for p in ["nobranch", "main/nope", "main/Day01/card/nope.bin", "main/Day01/card/sub/nope/deeper"] {
        assert!(matches!(walk(&fs, p), Err(FsError::NotFound)), "{p}");
    }
    // Misses are cheap: one indexed probe each.
    let card = walk(&fs, "main/Day01/card").unwrap();
    let t = Instant::now();
    for i in 0..2000 {
        assert!(matches!(fs.lookup(card.ino, &format!("missing-{i}.mov")), Err(FsError::NotFound)));
    }
    assert!(t.elapsed() < Duration::from_secs(20), "2000 misses took {:?}", t.elapsed());
    // Unknown inode; a file is not a directory; a directory does not open as a file.
    assert!(matches!(fs.getattr(1 << 40), Err(FsError::NotFound)));
    let f = walk(&fs, "main/Day01/card/clip1.bin").unwrap();
    assert!(fs.lookup(f.ino, "x").is_err());
    assert!(fs.readdir(f.ino).is_err());
    assert!(matches!(fs.open(card.ino, false), Err(FsError::IsDir)));
    assert!(matches!(fs.read(999_999, 0, 10), Err(FsError::BadHandle)));
    // An empty branch lists nothing.
    {
        let mut a = Archive::open_writer(&root).unwrap();
        a.create_branch("empty", None).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100)); // branch heads are re-read once a second
    let e = walk(&fs, "empty").unwrap();
    assert!(fs.readdir(e.ino).unwrap().is_empty());
}

#[test]
fn core_writes_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let (src, files) = card(dir.path());
    let root = new_archive(dir.path());
    ingest(&root, &src, "Day01", false);
    let fs = core(&root);
    let f = walk(&fs, "main/Day01/card/clip1.bin").unwrap();
    assert!(matches!(fs.open(f.ino, true), Err(FsError::ReadOnly)));
    // Refusing a write leaves the file readable and unchanged.
    assert_eq!(read_all(&fs, f.ino, 4096), files["clip1.bin"]);
}

#[test]
fn core_reads_sequential_random_and_past_eof() {
    let dir = tempfile::tempdir().unwrap();
    let (src, files) = card(dir.path());
    let root = new_archive(dir.path());
    ingest(&root, &src, "Day01", false);
    let fs = core(&root);
    for (rel, data) in &files {
        let a = walk(&fs, &format!("main/Day01/card/{rel}")).unwrap();
        for step in [4096u32, 128 << 10, 1 << 20] {
            assert_eq!(&read_all(&fs, a.ino, step), data, "{rel} step {step}");
        }
    }
    let data = &files["clip0.bin"];
    let a = walk(&fs, "main/Day01/card/clip0.bin").unwrap();
    let fh = fs.open(a.ino, false).unwrap();
    let mut x = 7u64;
    for _ in 0..200 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let off = (x >> 20) % data.len() as u64;
        let len = ((x >> 8) % (300 << 10)) as u32 + 1;
        let got = fs.read(fh, off, len).unwrap();
        let end = (off as usize + len as usize).min(data.len());
        assert_eq!(got, &data[off as usize..end], "read {len} at {off}");
    }
    assert!(fs.read(fh, data.len() as u64, 100).unwrap().is_empty());
    assert!(fs.read(fh, data.len() as u64 + 5000, 100).unwrap().is_empty());
    assert_eq!(fs.read(fh, data.len() as u64 - 3, 100).unwrap(), &data[data.len() - 3..]);
    let _ = fs.release(fh);
    assert!(matches!(fs.read(fh, 0, 10), Err(FsError::BadHandle)));

    // Many threads, one core: every reader gets the right bytes.
    let fs = Arc::new(fs);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let fs = fs.clone();
            let data = data.clone();
            std::thread::spawn(move || {
                let fh = fs.open(a.ino, false).unwrap();
                let step = (64 << 10) * (t + 1);
                let mut off = 0u64;
                while off < data.len() as u64 {
                    let b = fs.read(fh, off, step).unwrap();
                    assert_eq!(b, &data[off as usize..off as usize + b.len()]);
                    off += b.len() as u64;
                }
                let _ = fs.release(fh);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn core_new_commit_appears() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = card(dir.path());
    let root = new_archive(dir.path());
    ingest(&root, &src, "Day01", false);
    let fs = core(&root);
    let main = walk(&fs, "main").unwrap();
    assert!(matches!(fs.lookup(main.ino, "Day02"), Err(FsError::NotFound)));
    ingest(&root, &src, "Day02", false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.lookup(main.ino, "Day02").is_err() {
        assert!(Instant::now() < deadline, "Day02 did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
    let names: Vec<String> = fs.readdir(main.ino).unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Day01", "Day02"]);
}

#[test]
fn core_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    let (src, files) = card(dir.path());
    let root = new_archive(dir.path());
    ingest(&root, &src, "Day01", false);
    // A real QuickTime original with a timecode and reel (scripts/gen-test-media).
    let media = test_media();
    let clip = dir.path().join("media/A001C003_prores_2398.mov");
    std::fs::create_dir_all(clip.parent().unwrap()).unwrap();
    std::fs::copy(media.join("A001C003_prores_2398.mov"), &clip).unwrap();
    ingest(&root, clip.parent().unwrap(), "Day02", true);
    let fs = core(&root);

    let f = walk(&fs, "main/Day01/card/clip1.bin").unwrap();
    let names = fs.listxattr(f.ino).unwrap();
    assert!(names.iter().all(|n| n.starts_with("user.reelfs.")), "{names:?}");
    let hash = String::from_utf8(fs.getxattr(f.ino, "user.reelfs.hash").unwrap()).unwrap();
    assert_eq!(hash, format!("blake3:{}", blake3::hash(&files["clip1.bin"]).to_hex()));
    assert!(matches!(fs.getxattr(f.ino, "user.reelfs.nope"), Err(FsError::NoAttr)));
    assert!(matches!(fs.getxattr(f.ino, "user.reelfs.timecode"), Err(FsError::NoAttr)));

    let m = walk(&fs, "main/Day02/media/A001C003_prores_2398.mov").unwrap();
    let x = |k: &str| String::from_utf8(fs.getxattr(m.ino, &format!("user.reelfs.{k}")).unwrap()).unwrap();
    assert_eq!(x("timecode"), "01:00:00:00");
    assert_eq!(x("rate"), "24000/1001");
    assert_eq!(x("reel"), "A001");
    assert_eq!(x("duration_frames"), "48");
    assert_eq!(x("codec"), "prores");
    let bytes = std::fs::read(&clip).unwrap();
    assert_eq!(x("hash"), format!("blake3:{}", blake3::hash(&bytes).to_hex()));
    // Branch and folder attributes.
    let main = walk(&fs, "main").unwrap();
    assert_eq!(fs.getxattr(main.ino, "user.reelfs.branch").unwrap(), b"main");
    assert!(fs.listxattr(ROOT_INO).is_ok());
}

#[test]
fn core_damaged_chunk_is_eio_for_its_range_only() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let victim = noise(42, 12 << 20);
    let other = noise(43, 2 << 20);
    write(&src.join("victim.bin"), &victim, 0o644, 1_600_000_000);
    write(&src.join("other.bin"), &other, 0o644, 1_600_000_000);
    let root = new_archive(dir.path());
    ingest(&root, &src, "", false);

    // Flip a byte in the middle of the payload of one of the victim's chunks.
    let (bad_lo, bad_hi) = {
        // The catalog's own connection is private; a test reads the file directly.
        let db = rusqlite::Connection::open(root.join("catalog.db")).unwrap();
        let blob = Hash::of(&victim);
        let mut q = db
            .prepare(
                "SELECT e.file_offset, e.length, c.offset, c.stored_len, p.name FROM extents e \
                 JOIN chunks c ON c.hash = e.chunk JOIN packs p ON p.id = c.pack WHERE e.blob = ?1 ORDER BY e.file_offset",
            )
            .unwrap();
        let rows: Vec<(u64, u64, u64, u64, String)> = q
            .query_map([blob.0.to_vec()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(rows.len() >= 2, "want several chunks: {rows:?}");
        let (fo, len, off, stored, pack) = rows[rows.len() / 2].clone();
        let path = root.join("packs").join(pack);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(off + RECORD_HEADER_LEN + stored / 2) as usize] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        // A read verifies only the blocks it touches (format 2): "its range" is the
        // damaged block of the chunk, of the size the chunk's outboard records.
        let block_log: u32 = db
            .query_row(
                "SELECT o.block_log FROM chunk_outboards o JOIN extents e ON e.chunk = o.chunk WHERE e.blob = ?1 LIMIT 1",
                [blob.0.to_vec()],
                |r| r.get(0),
            )
            .unwrap();
        let block = 1u64 << block_log;
        let lo = fo + (stored / 2) / block * block;
        assert!((lo + block).min(fo + len) - lo > 4096, "the damaged block is bigger than a read");
        (lo, (lo + block).min(fo + len))
    };

    let fs = core(&root);
    let v = walk(&fs, "main/src/victim.bin").unwrap();
    let fh = fs.open(v.ino, false).unwrap();
    assert!(matches!(fs.read(fh, bad_lo, 4096), Err(FsError::Io(_))));
    assert!(matches!(fs.read(fh, (bad_lo + bad_hi) / 2, 1), Err(FsError::Io(_))));
    // A read spanning into the damaged block fails as a whole: no partial, wrong data.
    if bad_lo >= 10 {
        assert!(matches!(fs.read(fh, bad_lo - 10, 20), Err(FsError::Io(_))));
    }
    // Everything outside it reads right, again and again.
    for _ in 0..2 {
        if bad_lo > 0 {
            assert_eq!(fs.read(fh, 0, bad_lo as u32).unwrap(), &victim[..bad_lo as usize]);
        }
        if bad_hi < victim.len() as u64 {
            let n = (victim.len() as u64 - bad_hi) as u32;
            assert_eq!(fs.read(fh, bad_hi, n).unwrap(), &victim[bad_hi as usize..]);
        }
    }
    // Still EIO after the good reads (never cached as good).
    assert!(matches!(fs.read(fh, bad_lo, 4096), Err(FsError::Io(_))));
    let _ = fs.release(fh);
    let o = walk(&fs, "main/src/other.bin").unwrap();
    assert_eq!(read_all(&fs, o.ino, 1 << 20), other);
}

/// The test footage, generated (or found cached) by scripts/gen-test-media.
fn test_media() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = repo.join(".cache/test-media");
    let st = std::process::Command::new(repo.join("scripts/gen-test-media")).arg(&dir).status().expect("run scripts/gen-test-media");
    assert!(st.success(), "scripts/gen-test-media failed");
    dir
}

// ---- a real FUSE mount ---------------------------------------------------------------

fn is_mounted(mp: &Path) -> bool {
    let mp = std::fs::canonicalize(mp).unwrap_or_else(|_| mp.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts.lines().any(|l| l.split_whitespace().nth(1).map(|m| m.replace("\\040", " ")) == Some(mp.display().to_string()))
}

/// A mount served by `mount_foreground` on a thread; unmounted (lazily if it has
/// to be) and joined in Drop, so a failing test leaves nothing behind.
struct ThreadMount {
    mp: PathBuf,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl ThreadMount {
    fn start(archive: &Path, mp: &Path) -> ThreadMount {
        let (tx, rx) = mpsc::channel();
        let (a, m) = (archive.to_path_buf(), mp.to_path_buf());
        let thread = std::thread::spawn(move || {
            let opts = MountOptions {
                allow_other: false,
                read_only: true,
                cache_bytes: 64 << 20,
                threads: 2,
                autocommit: None,
                remux_cache_limit: None,
                writeback: false,
            };
            mount::mount_foreground(&a, &m, &opts, || {
                let _ = tx.send(());
            })
            .map_err(|e| e.to_string())
        });
        let mut tm = ThreadMount { mp: mp.to_path_buf(), thread: Some(thread) };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => tm,
            Err(_) => {
                // The thread ended (mount failed) or hung: report why.
                let why = match tm.thread.take() {
                    Some(t) if t.is_finished() => format!("{:?}", t.join()),
                    _ => "no answer in 30 s".into(),
                };
                panic!("mount_foreground did not mount {}: {why}", mp.display());
            }
        }
    }
}

impl Drop for ThreadMount {
    fn drop(&mut self) {
        if is_mounted(&self.mp) {
            if let Err(e) = mount::unmount(&self.mp) {
                eprintln!("unmount {}: {e}; detaching lazily", self.mp.display());
                let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mp).status();
            }
        }
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let res = t.join();
                if !std::thread::panicking() {
                    assert!(matches!(res, Ok(Ok(()))), "mount thread ended with {res:?}");
                }
            } else if !std::thread::panicking() {
                panic!("mount thread still running 15 s after unmount");
            }
        }
    }
}

#[test]
fn real_fuse_mount_reads_a_file() {
    assert!(Path::new("/dev/fuse").exists(), "/dev/fuse is missing: this test mounts for real and must not skip");
    let dir = tempfile::tempdir().unwrap();
    let (src, files) = card(dir.path());
    let root = new_archive(dir.path());
    ingest(&root, &src, "Day01", false);
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    {
        let _m = ThreadMount::start(&root, &mp);
        assert!(is_mounted(&mp));
        let base = mp.join("main/Day01/card");
        for (rel, data) in &files {
            assert_eq!(&std::fs::read(base.join(rel)).unwrap(), data, "{rel}");
            let meta = std::fs::metadata(base.join(rel)).unwrap();
            let want = std::fs::metadata(src.join(rel)).unwrap();
            assert_eq!(meta.len(), want.len());
            assert_eq!(meta.mode() & 0o7777, want.mode() & 0o7777, "{rel}");
            assert_eq!((meta.mtime(), meta.mtime_nsec()), (want.mtime(), want.mtime_nsec()), "{rel}");
        }
        let mut names: Vec<String> = std::fs::read_dir(&base).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["clip0.bin", "clip1.bin", "empty.bin", "sub"]);
        assert_eq!(std::fs::metadata(base.join("nope")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        let err = std::fs::OpenOptions::new().write(true).open(base.join("clip1.bin")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        let err = std::fs::create_dir(base.join("newdir")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    }
    assert!(!is_mounted(&mp), "still mounted after Drop");
}

// ---- bounded memory: forget and the slice-plan cache (issue 11) --------------------

#[test]
fn core_forget_drops_nodes_the_kernel_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_archive(dir.path());
    let (src, files) = card(dir.path());
    ingest(&root, &src, "", false);
    let fs = core(&root);
    // What the kernel does: one counted lookup per path component.
    let main = fs.lookup_ref(ROOT_INO, "main").unwrap();
    let card = fs.lookup_ref(main.ino, "card").unwrap();
    let clip = fs.lookup_ref(card.ino, "clip1.bin").unwrap();
    assert_eq!(fs.lookup_ref(card.ino, "clip1.bin").unwrap().ino, clip.ino);
    let held = fs.inode_count();
    fs.forget(clip.ino, 1);
    assert!(fs.getattr(clip.ino).is_ok(), "one reference is left");
    fs.forget(clip.ino, 1);
    assert!(matches!(fs.getattr(clip.ino), Err(FsError::NotFound)));
    assert_eq!(fs.inode_count(), held - 1);
    let back = fs.lookup_ref(card.ino, "clip1.bin").unwrap();
    assert_eq!(read_all(&fs, back.ino, 1 << 16), files["clip1.bin"]);
    fs.forget(ROOT_INO, u64::MAX);
    assert!(fs.getattr(ROOT_INO).is_ok());
}

#[test]
fn core_slice_plans_are_bounded_and_made_again_when_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_archive(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(test_media().join("C003C001_h264_25p.mov"), src.join("clip.mov")).unwrap();
    ingest(&root, &src, "", true);
    let fs = core(&root);
    let tc = |n: u32| format!("10:00:{:02}:{:02}", n / 25, n % 25);
    let first = walk(&fs, &format!("main/src/clip.mov@{}-{}", tc(10), tc(20))).unwrap();
    let want = read_all(&fs, first.ino, 1 << 20);
    assert!(!want.is_empty());
    let mut names = 0;
    for a in 0..60 {
        for len in 1..=4 {
            walk(&fs, &format!("main/src/clip.mov@{}-{}", tc(a), tc(a + len))).unwrap();
            names += 1;
        }
    }
    assert!(names > 3 * reelfs::fs::core::SLICE_PLAN_CACHE);
    assert!(fs.slice_plans_cached() <= reelfs::fs::core::SLICE_PLAN_CACHE, "{} plans held", fs.slice_plans_cached());
    // The first slice's plan was evicted: it is made again, same bytes and xattrs.
    assert_eq!(read_all(&fs, first.ino, 1 << 20), want);
    assert_eq!(fs.getxattr(first.ino, "user.reelfs.in").unwrap(), tc(10).into_bytes());
}

#[test]
fn core_sizes_past_the_largest_file_are_efbig_and_huge_truncates_are_cheap() {
    let dir = tempfile::tempdir().unwrap();
    let root = new_archive(dir.path());
    let fs = FsCore::new(Archive::open(&root).unwrap(), FsOptions { cache_bytes: 64 << 20, readahead_workers: 2, read_only: false });
    let main = fs.lookup(ROOT_INO, "main").unwrap();
    let (attr, fh) = fs.create_open(main.ino, "sparse.bin", 0o644).unwrap();
    let largest = i64::MAX as u64;
    assert!(matches!(fs.setattr(attr.ino, None, Some(largest + 1), None), Err(FsError::TooBig)));
    assert!(matches!(fs.write_fh(fh, u64::MAX - 1, b"xy"), Err(FsError::TooBig)));
    assert!(matches!(fs.write_fh(fh, largest, b"x"), Err(FsError::TooBig)));
    assert_eq!(fs.setattr(attr.ino, None, Some(largest), None).unwrap().size, largest);
    assert_eq!(fs.write_fh(fh, 1 << 60, b"far").unwrap(), 3);
    fs.fsync_fh(fh).unwrap();
    assert_eq!(fs.read(fh, (1 << 60) - 2, 7).unwrap(), b"\0\0far\0\0");
    assert_eq!(fs.read(fh, largest - 4, 100).unwrap(), vec![0u8; 4]);
    fs.release(fh).unwrap();
    assert_eq!(fs.getattr(attr.ino).unwrap().size, largest);
}
