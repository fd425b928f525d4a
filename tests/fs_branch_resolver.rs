//! Branch folders of the mount resolve through the view layer, the one
//! resolver the CLI and old versions use: a name in a branch folder is found
//! (or refused) for the same reasons as the same name in `branch@commit`.

use reelfs::archive::ingest::{self, IngestOptions};
use reelfs::archive::Archive;
use reelfs::fs::core::{FsCore, FsError, FsOptions};
use reelfs::fs::inodes::ROOT_INO;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod common;
use common::{noise, write};

fn archive_with_card(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("archive");
    drop(Archive::init(&root).unwrap());
    let src = dir.join("card");
    write(&src.join("sub/deep/x.bin"), &noise(7, 4097), 0o644, 1_600_000_000);
    write(&src.join("top.bin"), &noise(8, 1000), 0o644, 1_600_000_000);
    let mut a = Archive::open_writer(&root).unwrap();
    let opts = IngestOptions {
        branch: "main".into(),
        dest: "Day01".into(),
        message: Some("Day01".into()),
        progress: Default::default(),
        prober: None,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let rep = ingest::ingest(&mut a, &[src], &opts).unwrap();
    assert!(rep.failed.is_empty(), "{:?}", rep.failed);
    root
}

fn walk(fs: &FsCore, path: &str) -> Result<u64, FsError> {
    let mut ino = ROOT_INO;
    for part in path.split('/') {
        ino = fs.lookup(ino, part)?.ino;
    }
    Ok(ino)
}

#[test]
fn a_lost_folder_listing_in_a_branch_folder_is_an_io_error_as_in_an_old_version() {
    let tmp = tempfile::tempdir().unwrap();
    let root = archive_with_card(tmp.path());
    let head = Archive::open(&root).unwrap().branches().unwrap().into_iter().find(|(n, _)| n == "main").unwrap().1.unwrap();
    // The listing of `deep` is gone from the catalog (as when it was lost with
    // a pack): its parent still names it, its own rows are not there.
    let db = rusqlite::Connection::open(root.join("catalog.db")).unwrap();
    let tree: Vec<u8> = db.query_row("SELECT tree FROM tree_entries WHERE name = 'x.bin'", [], |r| r.get(0)).unwrap();
    db.execute("DELETE FROM tree_entries WHERE tree = ?1", [&tree]).unwrap();
    db.execute("DELETE FROM trees WHERE hash = ?1", [&tree]).unwrap();
    drop(db);

    let fs = FsCore::new(Archive::open(&root).unwrap(), FsOptions { cache_bytes: 16 << 20, readahead_workers: 2, ..Default::default() });
    let old = format!("main@{}", &head.to_hex()[..12]);
    for top in ["main", old.as_str()] {
        let deep = walk(&fs, &format!("{top}/Day01/card/sub/deep")).unwrap();
        match fs.lookup(deep, "x.bin") {
            Err(FsError::Io(msg)) => assert!(msg.contains("folder listing"), "{top}: {msg}"),
            other => panic!("{top}/Day01/card/sub/deep/x.bin: expected an I/O error naming the lost listing, got {other:?}"),
        }
        // What is intact still reads.
        walk(&fs, &format!("{top}/Day01/card/top.bin")).unwrap();
    }
}
