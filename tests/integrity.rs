//! Issue 11 (integrity) through the library API: catalog rows verified against
//! their pack records, a damaged catalog file, data lost with a pack before a
//! rebuild, and the skip cache after a lost pack.

use reelfs::archive::catalog::Catalog;
use reelfs::archive::check::{self, rebuild_catalog};
use reelfs::archive::config::Config;
use reelfs::archive::ingest::{self, IngestOptions, IngestReport};
use reelfs::archive::{Archive, ArchiveError};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

mod common;
use common::{noise, write};

/// A new archive with small chunks and 1 MiB packs, so a few MB make several packs.
fn small_archive(dir: &Path) -> PathBuf {
    let root = dir.join("archive");
    drop(Archive::init(&root).unwrap());
    let toml = root.join("reelfs.toml");
    let mut cfg = Config::load(&toml).unwrap();
    cfg.chunker.min_size = 64 << 10;
    cfg.chunker.avg_size = 256 << 10;
    cfg.chunker.max_size = 1 << 20;
    cfg.packs.target_size = 1 << 20;
    std::fs::write(&toml, cfg.to_toml().unwrap()).unwrap();
    root
}

fn ingest(root: &Path, source: &Path, branch: &str, dest: &str) -> IngestReport {
    let mut a = Archive::open_writer(root).unwrap();
    let opts = IngestOptions {
        branch: branch.into(),
        dest: dest.into(),
        message: None,
        progress: Default::default(),
        prober: None,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    let rep = ingest::ingest(&mut a, &[source.to_path_buf()], &opts).unwrap();
    assert!(rep.failed.is_empty(), "{:?}", rep.failed);
    rep
}

fn card(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let card = dir.join(name);
    write(&card.join("A001C001.mov"), &noise(seed, 600_000), 0o644, 1_600_000_000);
    write(&card.join("A001C002.mov"), &noise(seed + 1, 1_500_000), 0o644, 1_600_000_001);
    card
}

/// The pack file whose bytes contain `needle` (take it from the first 64 KiB of a
/// file: chunks are at least that long, so it never straddles two records).
fn pack_holding(root: &Path, needle: &[u8]) -> PathBuf {
    walkdir::WalkDir::new(root.join("packs"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .find(|e| std::fs::read(e.path()).unwrap().windows(needle.len()).any(|w| w == needle))
        .map(|e| e.path().to_path_buf())
        .expect("bytes in some pack")
}

#[test]
fn a_changed_tree_row_is_named_by_deep_check_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let root = small_archive(tmp.path());
    ingest(&root, &card(tmp.path(), "card", 1), "main", "Day01");
    {
        let a = Archive::open(&root).unwrap();
        assert!(check::check(&a, true, &Default::default()).unwrap().ok());
        // A mode is not read back from the pack by anything but the check.
        rusqlite::Connection::open(a.catalog.path.clone())
            .unwrap()
            .execute("UPDATE tree_entries SET mode = 511 WHERE name = 'A001C001.mov'", [])
            .unwrap();
        let rep = check::check(&a, true, &Default::default()).unwrap();
        assert!(!rep.ok());
        assert_eq!(rep.catalog_damage, vec!["main/Day01/card".to_string()]);
        assert!(rep.problems.iter().any(|p| p.contains("--rebuild-catalog")), "{:?}", rep.problems);
    }
    rebuild_catalog(&root).unwrap();
    let a = Archive::open(&root).unwrap();
    let rep = check::check(&a, true, &Default::default()).unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!(a.resolve("main/Day01/card/A001C001.mov").unwrap().entry.mode, 0o644);
}

#[test]
fn a_damaged_catalog_file_is_its_own_error_naming_the_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let root = small_archive(tmp.path());
    let db = root.join("catalog.db");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..16].copy_from_slice(b"not a catalog!!!");
    std::fs::write(&db, bytes).unwrap();
    let err = Catalog::open(&db, true).err().expect("a damaged catalog does not open");
    assert!(matches!(&err, ArchiveError::CatalogDamaged { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("reelfs check {} --rebuild-catalog", root.display())), "{err}");
    assert!(matches!(Archive::open(&root), Err(ArchiveError::CatalogDamaged { .. })));
    rebuild_catalog(&root).unwrap();
    assert!(check::check(&Archive::open(&root).unwrap(), true, &Default::default()).unwrap().ok());
}

#[test]
fn after_a_rebuild_without_a_pack_reads_say_what_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let root = small_archive(tmp.path());
    let first = card(tmp.path(), "card1", 10);
    ingest(&root, &first, "main", "Day01");
    Archive::open_writer(&root).unwrap().create_branch("grade", Some("main")).unwrap();
    ingest(&root, &card(tmp.path(), "card2", 20), "main", "Day01");
    // Lose the pack holding the start of card1's first file (and whatever
    // metadata records share it).
    let data = std::fs::read(first.join("A001C001.mov")).unwrap();
    std::fs::remove_file(pack_holding(&root, &data[1000..1064])).unwrap();
    let rebuilt = rebuild_catalog(&root).unwrap();
    assert!(!rebuilt.lost.is_empty());
    let a = Archive::open(&root).unwrap();
    let rep = check::check(&a, true, &Default::default()).unwrap();
    assert!(!rep.ok());
    assert!(rep.lost.iter().any(|l| l.starts_with("main/Day01/card1")), "{:?}", rep.lost);
    assert!(rep.catalog_damage.is_empty(), "{:?}", rep.catalog_damage);
    // A second rebuild changes nothing: the same is lost.
    drop(a);
    let again = rebuild_catalog(&root).unwrap();
    assert_eq!(again.lost, rebuilt.lost);
}

#[test]
fn the_skip_cache_does_not_vouch_for_chunks_in_a_lost_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let root = small_archive(tmp.path());
    let src = card(tmp.path(), "card", 30);
    ingest(&root, &src, "main", "Day01");
    let data = std::fs::read(src.join("A001C002.mov")).unwrap();
    std::fs::remove_file(pack_holding(&root, &data[1000..1064])).unwrap();
    let rep = ingest(&root, &src, "main", "Day01");
    assert!(rep.files_unchanged < 2, "{rep:?}");
    assert!(rep.bytes_new_stored > 0, "{rep:?}");
    let a = Archive::open(&root).unwrap();
    let rep = check::check(&a, true, &Default::default()).unwrap();
    assert!(rep.ok(), "{rep:?}");
    let r = a.resolve("main/Day01/card/A001C002.mov").unwrap();
    let mut out = Vec::new();
    reelfs::archive::restore::cat(&a, &r.entry.hash, &mut out).unwrap();
    assert_eq!(out, data);
}
