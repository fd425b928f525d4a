//! The path resolver (`reelfs::view`) over a real archive: every kind of name
//! the mount shows resolves to the same content the archive holds, bad paths
//! are refused by kind before anything is read, and misses say what is missing.

use reelfs::archive::ingest::{self, IngestOptions};
use reelfs::archive::staging::{Content, Staged};
use reelfs::archive::{Archive, Hash};
use reelfs::view::{self, PathError, Target, ViewError};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod common;
use common::{noise, write};

fn ingest(root: &Path, src: &Path, probe: bool) {
    // Another test of this process may be forking (scripts/gen-test-media):
    // between fork and exec the child holds a copy of our lock's descriptor,
    // so a non-blocking flock can fail for that instant. Ask again.
    let mut a = (0..100)
        .find_map(|_| match Archive::open_writer(root) {
            Err(reelfs::archive::ArchiveError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            }
            r => Some(r.unwrap()),
        })
        .expect("the archive stayed locked");
    let opts = IngestOptions {
        branch: "main".into(),
        dest: String::new(),
        message: Some("ingest".into()),
        progress: Default::default(),
        prober: if probe { Some(reelfs::media::probe::probe_for_ingest) } else { None },
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let rep = ingest::ingest(&mut a, &[src.to_path_buf()], &opts).unwrap();
    assert!(rep.failed.is_empty(), "{:?}", rep.failed);
}

fn test_media() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = repo.join(".cache/test-media");
    let st = std::process::Command::new(repo.join("scripts/gen-test-media")).arg(&dir).status().expect("run scripts/gen-test-media");
    assert!(st.success(), "scripts/gen-test-media failed");
    dir
}

/// An archive with `card/` (two commits: clip1.bin changes) and `seq/` (a DPX-named sequence).
fn archive(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let root = dir.join("archive");
    drop(Archive::init(&root).unwrap());
    let src = dir.join("card");
    let old = noise(1, 100_000);
    write(&src.join("clip1.bin"), &old, 0o644, 1_600_000_000);
    write(&src.join("sub/x.bin"), &noise(2, 4097), 0o644, 1_600_000_001);
    for f in 1..=3 {
        write(&dir.join(format!("seq/A001.{f:07}.dpx")), &noise(10 + f, 1000), 0o644, 1_600_000_002);
    }
    ingest(&root, &src, false);
    ingest(&root, &dir.join("seq"), false);
    let new = noise(3, 50_000);
    write(&src.join("clip1.bin"), &new, 0o644, 1_600_000_100);
    ingest(&root, &src, false);
    (root, old, new)
}

fn file_hash(t: &Target) -> Hash {
    match t {
        Target::File { entry, .. } => entry.hash,
        _ => panic!("not a file: {}", t.kind_word()),
    }
}

fn bytes(a: &Archive, h: &Hash) -> Vec<u8> {
    let r = a.blob_reader(h).unwrap();
    let mut buf = vec![0u8; r.size as usize];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), buf.len());
    buf
}

#[test]
fn every_kind_of_name_resolves_to_what_the_archive_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (root, old, new) = archive(dir.path());
    let a = Archive::open(&root).unwrap();

    assert!(matches!(view::resolve(&a, "").unwrap().target, Target::Root));
    assert!(matches!(view::resolve(&a, "main").unwrap().target, Target::Branch { ref name, head: Some(_) } if name == "main"));
    assert!(matches!(view::resolve(&a, "main/card/sub").unwrap().target, Target::Dir { tree: Some(_), live: Some(_), .. }));
    let f = view::resolve(&a, "main/card/clip1.bin").unwrap();
    assert_eq!(f.path, "main/card/clip1.bin");
    assert_eq!(bytes(&a, &file_hash(&f.target)), new);

    // Old versions: `branch@commit` and `.history/<branch>/<time>_<id>`.
    let log = a.log(a.resolve_ref("main").unwrap().1, 10).unwrap();
    assert_eq!(log.len(), 3);
    let first = &log[2];
    let at = format!("main@{}", &first.hash.to_hex()[..8]);
    assert!(matches!(view::resolve(&a, &at).unwrap().target, Target::Commit { commit, .. } if commit == first.hash));
    assert_eq!(bytes(&a, &file_hash(&view::resolve(&a, &format!("{at}/card/clip1.bin")).unwrap().target)), old);
    assert!(matches!(view::resolve(&a, ".history").unwrap().target, Target::History));
    assert!(matches!(view::resolve(&a, ".history/main").unwrap().target, Target::HistoryBranch { .. }));
    let hist = format!(".history/main/{}/card/clip1.bin", view::history::history_name(first.time_ns, &first.hash));
    assert_eq!(bytes(&a, &file_hash(&view::resolve(&a, &hist).unwrap().target)), old);
    // Inside an old version nothing is live (the staging overlay does not apply).
    assert!(matches!(view::resolve(&a, &format!("{at}/card")).unwrap().target, Target::Dir { live: None, .. }));

    // An image sequence by its FFmpeg pattern.
    match view::resolve(&a, "main/seq/A001.%07d.dpx").unwrap().target {
        Target::Sequence(s) => {
            assert_eq!(s.pattern, "A001.%07d.dpx");
            assert_eq!(s.frames.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 2, 3]);
        }
        t => panic!("not a sequence: {}", t.kind_word()),
    }
}

#[test]
fn staged_changes_are_seen_through_the_branch_only() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _, new) = archive(dir.path());
    let a = Archive::open_writer(&root).unwrap();
    let h = file_hash(&view::resolve(&a, "main/card/clip1.bin").unwrap().target);
    a.staging()
        .stage(
            "main",
            "card/moved.bin",
            &Staged::File {
                size: new.len() as u64,
                mode: 0o600,
                mtime_ns: 7,
                content: Content::Blob(h),
                owner: None,
                extra: Default::default(),
            },
        )
        .unwrap();
    a.staging().stage("main", "card/clip1.bin", &Staged::Deleted).unwrap();
    match view::resolve(&a, "main/card/moved.bin").unwrap().target {
        Target::Staged { live, content, size, mode, .. } => {
            assert_eq!((live.branch.as_str(), live.path.as_str()), ("main", "card/moved.bin"));
            assert_eq!(content, Content::Blob(h));
            assert_eq!((size, mode), (new.len() as u64, 0o600));
        }
        t => panic!("not staged: {}", t.kind_word()),
    }
    assert!(matches!(view::resolve(&a, "main/card/clip1.bin"), Err(ViewError::NotFound(p)) if p == "main/card/clip1.bin"));
    // The head commit still has it.
    let head = a.resolve_ref("main").unwrap().1.unwrap();
    assert!(view::resolve(&a, &format!("main@{}/card/clip1.bin", &head.to_hex()[..8])).is_ok());
}

#[test]
fn bad_paths_are_refused_by_kind_before_any_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _, _) = archive(dir.path());
    let a = Archive::open(&root).unwrap();
    for (p, want) in [
        ("main/../main/card/clip1.bin", PathError::DotDot("main/../main/card/clip1.bin".into())),
        ("..", PathError::DotDot("..".into())),
        ("/main/card/clip1.bin", PathError::Absolute("/main/card/clip1.bin".into())),
        ("main/card\0/clip1.bin", PathError::Nul),
        ("main//card/clip1.bin", PathError::EmptyComponent("main//card/clip1.bin".into())),
        ("main/./card", PathError::Dot("main/./card".into())),
    ] {
        match view::resolve(&a, p) {
            Err(ViewError::Path(e)) => assert_eq!(e, want, "{p:?}"),
            Err(e) => panic!("{p:?}: wrong error {e}"),
            Ok(r) => panic!("{p:?} resolved to a {}", r.target.kind_word()),
        }
    }
}

#[test]
fn misses_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _, _) = archive(dir.path());
    let a = Archive::open(&root).unwrap();
    assert!(matches!(view::resolve(&a, "nope/card"), Err(ViewError::NoBranch(b)) if b == "nope"));
    assert!(matches!(view::resolve(&a, "main/card/none.bin"), Err(ViewError::NotFound(p)) if p == "main/card/none.bin"));
    assert!(matches!(view::resolve(&a, "main/card/clip1.bin/x"), Err(ViewError::NotDir(p)) if p == "main/card/clip1.bin"));
    assert!(matches!(view::resolve(&a, "main@ffffffff/card"), Err(ViewError::NotFound(_))));
    assert!(matches!(view::resolve(&a, ".history/main/2020-01-01T00.00.00_ffffffff"), Err(ViewError::NotFound(_))));
    // No proxies were rendered: `.proxy` does not exist, and the message says how to make them.
    let e = view::resolve(&a, "main/card/.proxy").err().unwrap();
    assert!(e.is_not_found() && e.to_string().contains("reelfs proxy"), "{e}");
    // A slice of a file that is not media says why.
    let e = view::resolve(&a, "main/card/clip1.bin@01:00:00:00-01:00:01:00").err().unwrap();
    assert!(matches!(e, ViewError::Slice(_)) && e.to_string().contains("no media facts"), "{e}");
}

#[test]
fn a_slice_name_resolves_to_its_plan_and_reads_the_bytes_the_mount_serves() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    drop(Archive::init(&root).unwrap());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(test_media().join("C003C001_h264_25p.mov"), src.join("clip.mov")).unwrap();
    ingest(&root, &src, true);
    let a = Archive::open(&root).unwrap();
    let name = "main/src/clip.mov@10:00:00:10-10:00:00:20";
    let Target::Slice(s) = view::resolve(&a, name).unwrap().target else { panic!("not a slice") };
    assert_eq!(s.source_path, "main/src/clip.mov");
    assert_eq!((s.plan.in_tc.as_str(), s.plan.out_tc.as_str()), ("10:00:00:10", "10:00:00:20"));
    assert_eq!(s.plan.end_frame - s.plan.first_frame, 10);
    // The same bytes as the mount's core serves for the same name.
    let mut via_view = vec![0u8; s.plan.size as usize];
    let mut off = 0;
    while off < via_view.len() {
        let n = s.plan.read_at(&s.reader, off as u64, &mut via_view[off..]).unwrap();
        assert!(n > 0);
        off += n;
    }
    let fs = reelfs::fs::FsCore::new(Archive::open(&root).unwrap(), Default::default());
    let mut ino = reelfs::fs::inodes::ROOT_INO;
    for part in name.split('/') {
        ino = fs.lookup(ino, part).unwrap().ino;
    }
    let fh = fs.open(ino, false).unwrap();
    let via_mount = fs.read(fh, 0, via_view.len() as u32 + 1).unwrap();
    assert_eq!(via_mount, via_view);
    // Bad timecode: a reason, not a plan.
    let e = view::resolve(&a, "main/src/clip.mov@10:00:00:20-10:00:00:10").err().unwrap();
    assert!(e.to_string().contains("not after in point"), "{e}");
}

#[test]
fn a_slice_is_planned_from_the_typed_media_facts_a_caller_holds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    drop(Archive::init(&root).unwrap());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(test_media().join("C003C001_h264_25p.mov"), src.join("clip.mov")).unwrap();
    ingest(&root, &src, true);
    let a = Archive::open(&root).unwrap();
    let Target::File { entry, .. } = view::resolve(&a, "main/src/clip.mov").unwrap().target else { panic!("not a file") };
    let Some((Some(mut facts), None)) = reelfs::media::facts::stored(&a, &entry.hash).unwrap() else { panic!("not probed") };
    assert_eq!(facts.timecode.as_deref(), Some("10:00:00:00"));
    // What an extract does: it matched the clip by its facts and hands them over
    // as they are (here, with another start), typed, not as JSON to look up.
    facts.timecode = Some("11:00:00:00".into());
    let spec = reelfs::timecode::SliceSpec::parse_name("clip.mov@11:00:00:10-11:00:00:20").unwrap().unwrap();
    let (plan, _) = view::slice::plan_with_facts(&a, "main/src/clip.mov", &spec, &entry.hash, &facts).unwrap();
    assert_eq!((plan.in_tc.as_str(), plan.first_frame, plan.end_frame), ("11:00:00:10", 10, 20));
}
