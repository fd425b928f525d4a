//! Owners through the filesystem core, without FUSE: the kernel's
//! `default_permissions` also checks the chown rules, so these tests show the
//! core refuses on its own (EPERM) and records what it allows, through commit.

use reelfs::archive::objects::Owner;
use reelfs::archive::Archive;
use reelfs::fs::core::{FsCore, FsError, FsOptions};
use reelfs::fs::inodes::ROOT_INO;
use reelfs::fs::owners::Caller;
use std::path::Path;

fn root() -> Caller {
    Caller { uid: 0, gid: 0, groups: vec![] }
}
fn user(uid: u32, gid: u32, groups: &[u32]) -> Caller {
    Caller { uid, gid, groups: groups.to_vec() }
}

fn writable(dir: &Path) -> FsCore {
    let root = dir.join("archive");
    drop(Archive::init(&root).unwrap());
    FsCore::new(Archive::open(&root).unwrap(), FsOptions { cache_bytes: 16 << 20, readahead_workers: 1, read_only: false })
}

#[test]
fn created_entries_belong_to_the_caller_and_chown_follows_the_posix_rules() {
    let dir = tempfile::tempdir().unwrap();
    let fs = writable(dir.path());
    let main = fs.lookup(ROOT_INO, "main").unwrap();
    let editor = user(1000, 1000, &[1000, 44]);
    let d = fs.mkdir_as(main.ino, "edit", 0o755, Some(&root())).unwrap();
    assert_eq!(d.owner, Some(Owner { uid: 0, gid: 0 }));
    let d = fs.chown(d.ino, Some(1000), Some(1000), &root()).unwrap();
    assert_eq!(d.owner, Some(Owner { uid: 1000, gid: 1000 }));
    let (f, fh) = fs.create_open_as(d.ino, "v1.edl", 0o6755, Some(&editor)).unwrap();
    fs.release(fh).unwrap();
    assert_eq!(f.owner, Some(Owner { uid: 1000, gid: 1000 }));

    // Giving a file away, or touching someone else's: EPERM, nothing recorded.
    assert!(matches!(fs.chown(f.ino, Some(0), None, &editor), Err(FsError::NotPermitted)));
    assert!(matches!(fs.chown(f.ino, None, Some(45), &editor), Err(FsError::NotPermitted)));
    assert!(matches!(fs.chown(f.ino, None, Some(44), &user(2000, 44, &[])), Err(FsError::NotPermitted)));
    let a = fs.getattr(f.ino).unwrap();
    assert_eq!((a.owner, a.mode), (Some(Owner { uid: 1000, gid: 1000 }), 0o6755));
    // The owner's own group change is allowed, and clears setuid/setgid of a file.
    let a = fs.chown(f.ino, None, Some(44), &editor).unwrap();
    assert_eq!((a.owner, a.mode), (Some(Owner { uid: 1000, gid: 44 }), 0o755));
    // A branch root has no owner to store.
    assert!(matches!(fs.chown(main.ino, Some(1), Some(1), &root()), Err(FsError::NotPermitted)));

    // Commit: the tree records what the branch showed.
    drop(fs);
    let mut a = Archive::open_writer(&dir.path().join("archive")).unwrap();
    a.commit_staging("main", "edit").unwrap().unwrap();
    let r = a.resolve("main/edit/v1.edl").unwrap();
    assert_eq!(r.entry.owner, Some(Owner { uid: 1000, gid: 44 }));
    assert_eq!(a.resolve("main/edit").unwrap().entry.owner, Some(Owner { uid: 1000, gid: 1000 }));
}

#[test]
fn a_read_only_mount_refuses_chown() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("archive");
    drop(Archive::init(&root_dir).unwrap());
    let fs = FsCore::new(Archive::open(&root_dir).unwrap(), FsOptions { cache_bytes: 16 << 20, readahead_workers: 1, read_only: true });
    let main = fs.lookup(ROOT_INO, "main").unwrap();
    assert!(matches!(fs.chown(main.ino, Some(1), None, &root()), Err(FsError::ReadOnly)));
}
