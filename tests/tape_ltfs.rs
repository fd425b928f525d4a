//! The LTFS volume writer and reader through a file-emulated cartridge (the
//! reference LTFS file-backend layout): round trips, the XML against the
//! structure the spec defines, crashes, injected device faults, and volumes
//! whose index is damaged or hostile.
//!
//! Set REELFS_LTFS_KEEP=DIR to keep the round-trip volume in DIR, for a check
//! with the reference `ltfs -o tape_backend=file -o devname=DIR` and `ltfsck`.

use reelfs::tape::device::{FaultPlan, FaultyDevice, FileCartridge, TapeDevice};
use reelfs::tape::ltfs::index::{validate, Index};
use reelfs::tape::ltfs::mam;
use reelfs::tape::ltfs::{format_volume, FormatOptions, LtfsVolumeReader, LtfsVolumeWriter};
use reelfs::tape::volume::{VolumeError, VolumeReader, VolumeWriter};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BARCODE: &str = "A00001L8";

fn cartridge(dir: &Path, capacity_mb: u64) -> FileCartridge {
    let mut cart = FileCartridge::open(dir).unwrap();
    cart.set_capacity_mb(capacity_mb).unwrap();
    format_volume(&mut cart, &FormatOptions::new(BARCODE)).unwrap();
    FileCartridge::open(dir).unwrap()
}

/// Deterministic, incompressible-looking bytes.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn mtime() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_795_000_000, 123_456_789)
}

fn write_file<W: VolumeWriter + ?Sized>(w: &mut W, path: &str, data: &[u8], xattrs: &[(String, Vec<u8>)]) {
    w.begin_file(path, mtime()).unwrap();
    // Uneven writes, as a copy loop gives them.
    for chunk in data.chunks(100_003) {
        w.write(chunk).unwrap();
    }
    w.end_file(xattrs).unwrap();
}

fn read_all<R: VolumeReader>(r: &mut R, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    r.open(path).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn reader(dir: &Path) -> LtfsVolumeReader<FileCartridge> {
    LtfsVolumeReader::open(FileCartridge::open(dir).unwrap(), Some(BARCODE)).unwrap()
}

fn paths(r: &mut LtfsVolumeReader<FileCartridge>) -> Vec<String> {
    r.files().unwrap().into_iter().map(|f| f.path).collect()
}

#[test]
fn files_round_trip_through_an_emulated_cartridge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let big = content(1, 1_300_000); // three records of 512 KiB, the last short
    let small = content(2, 1000);
    let md5 = b"5d41402abc4b2a76b9719d911017c592".to_vec();
    let mut w = Box::new(LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap());
    let before = w.remaining();
    write_file(w.as_mut(), "Day01/A001/A001C003.mov", &big, &[("ltfs.hash.md5sum".into(), md5.clone())]);
    assert!(w.remaining() < before, "remaining capacity goes down as files are written");
    write_file(w.as_mut(), "Day01/Sound/Take 1 & 2.wav", &small, &[]);
    write_file(w.as_mut(), "empty.txt", b"", &[("reelfs.raw".into(), vec![0, 159, 255])]);
    w.finish().unwrap();

    let mut r = reader(dir);
    let files = r.files().unwrap();
    let listed: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.bytes)).collect();
    assert_eq!(
        listed,
        vec![
            // Tape order: the empty file has no extent (block 0), then by block.
            ("empty.txt", 0),
            ("Day01/A001/A001C003.mov", 1_300_000),
            ("Day01/Sound/Take 1 & 2.wav", 1000),
        ]
    );
    assert_eq!(files[1].placement.partition, 'b');
    assert_eq!(files[1].placement.start_block, 7, "first data block after the format's index construct");
    assert_eq!(files[2].placement.start_block, 10);
    assert_eq!(files[1].xattrs, vec![("ltfs.hash.md5sum".to_string(), md5)]);
    assert_eq!(files[0].xattrs, vec![("reelfs.raw".to_string(), vec![0, 159, 255])]);
    assert_eq!(read_all(&mut r, "Day01/A001/A001C003.mov"), big);
    assert_eq!(read_all(&mut r, "Day01/Sound/Take 1 & 2.wav"), small);
    assert_eq!(read_all(&mut r, "empty.txt"), b"");
    // The final index is on the index partition, generation 2, pointing back
    // at the same generation on the data partition.
    let idx = r.index();
    assert_eq!((idx.location.partition, idx.location.block, idx.generation), ('a', 5, 2));
    assert_eq!(idx.previous.map(|p| (p.partition, p.block)), Some(('b', 12)));

    // Both indexes on tape have the structure the spec defines.
    for record in ["0_5_R", "1_12_R"] {
        let xml = std::fs::read(dir.join(record)).unwrap();
        validate(&xml).unwrap_or_else(|p| panic!("{record}: {p:?}"));
    }
    // The data partition's chain: gen 2 at b/12 points back at gen 1 at b/5.
    let dp = Index::parse(&std::fs::read(dir.join("1_12_R")).unwrap()).unwrap();
    assert_eq!(dp.generation, 2);
    assert_eq!(dp.previous.map(|p| (p.partition, p.block)), Some(('b', 5)));
    // Records are the reference backend's: 512 KiB, the file's last one short.
    assert_eq!(std::fs::metadata(dir.join("1_7_R")).unwrap().len(), 524_288);
    assert_eq!(std::fs::metadata(dir.join("1_9_R")).unwrap().len(), 1_300_000 - 2 * 524_288);
    assert!(dir.join("1_11_F").exists() && dir.join("1_13_F").exists() && dir.join("1_14_E").exists());

    keep(dir, "round-trip");
}

/// With REELFS_LTFS_KEEP=DIR set, copy a cartridge to DIR/NAME for a check
/// with the reference LTFS (the tests never need it).
fn keep(dir: &Path, name: &str) {
    if let Some(root) = std::env::var_os("REELFS_LTFS_KEEP") {
        let to = Path::new(&root).join(name);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn appending_after_finish_adds_a_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = Box::new(LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap());
    write_file(w.as_mut(), "one.bin", &content(3, 10), &[]);
    w.finish().unwrap();
    let mut w = Box::new(LtfsVolumeWriter::open(FileCartridge::open(dir).unwrap(), BARCODE).unwrap());
    // Tape is append-only: a name already on the volume is refused.
    let err = w.begin_file("one.bin", mtime()).unwrap_err().to_string();
    assert!(err.contains("already on this volume"), "{err}");
    write_file(w.as_mut(), "two.bin", &content(4, 20), &[]);
    w.finish().unwrap();
    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["one.bin", "two.bin"]);
    assert_eq!(r.index().generation, 3);
    assert_eq!(read_all(&mut r, "one.bin"), content(3, 10));
}

#[test]
fn a_crash_leaves_every_file_completed_before_the_last_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap();
    write_file(&mut w, "before/index.mov", &content(5, 700_000), &[]);
    w.sync_index().unwrap();
    write_file(&mut w, "after/index.mov", &content(6, 100), &[]);
    w.begin_file("half/written.mov", mtime()).unwrap();
    w.write(&content(7, 600_000)).unwrap();
    drop(w); // the process dies: no finish, no final index
    keep(dir, "crash");

    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["before/index.mov"]);
    assert_eq!(read_all(&mut r, "before/index.mov"), content(5, 700_000));
    assert_eq!(r.index().location.partition, 'b', "the newest index is the synced one");

    // Appending after the crash goes on from the end of data.
    let mut w = Box::new(LtfsVolumeWriter::open(FileCartridge::open(dir).unwrap(), BARCODE).unwrap());
    write_file(w.as_mut(), "after/crash.mov", &content(8, 50), &[]);
    w.finish().unwrap();
    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["before/index.mov", "after/crash.mov"]);
    assert_eq!(read_all(&mut r, "after/crash.mov"), content(8, 50));
}

#[test]
fn index_intervals_write_indexes_while_files_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap().with_index_interval(1_000_000);
    write_file(&mut w, "a.mov", &content(9, 600_000), &[]);
    write_file(&mut w, "b.mov", &content(10, 600_000), &[]); // crosses the interval
    write_file(&mut w, "c.mov", &content(11, 10), &[]);
    drop(w);
    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["a.mov", "b.mov"]);
}

#[test]
fn a_failed_write_abandons_the_file_and_keeps_the_index_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plan = FaultPlan { fail_data_write: Some(3), ..FaultPlan::default() };
    let dev = FaultyDevice::new(cartridge(dir, 100), plan);
    let mut w = Box::new(LtfsVolumeWriter::open(dev, BARCODE).unwrap());
    write_file(w.as_mut(), "ok.mov", &content(12, 600_000), &[]); // writes 1 and 2
    w.begin_file("broken.mov", mtime()).unwrap();
    let err = w.write(&content(13, 600_000)).unwrap_err();
    assert!(matches!(err, VolumeError::Io { .. } | VolumeError::Format { .. }), "{err}");
    assert!(err.to_string().contains(BARCODE), "the error names the tape: {err}");
    w.abandon_file().unwrap();
    w.finish().unwrap();
    keep(dir, "failed-write");

    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["ok.mov"]);
    assert_eq!(read_all(&mut r, "ok.mov"), content(12, 600_000));
    validate(&std::fs::read(dir.join("0_5_R")).unwrap()).unwrap();
}

#[test]
fn a_record_that_fails_behind_the_writer_fails_its_own_file_not_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = Box::new(LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap());
    write_file(w.as_mut(), "ok.mov", &content(14, 600_000), &[]);
    // The data partition's end of data, where the next file's records go.
    let eod: u64 = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_prefix("1_")?.strip_suffix("_E")?.parse().ok())
        .next()
        .expect("an end-of-data mark on the data partition");
    // The new file's second record cannot be created (a link into a folder
    // that does not exist): its write fails in the cartridge's writer threads.
    let blocked = format!("1_{}_R", eod + 1);
    std::os::unix::fs::symlink(dir.join("gone/x"), dir.join(&blocked)).unwrap();
    w.begin_file("broken.mov", mtime()).unwrap();
    let err = w.write(&content(15, 1_200_000)).and_then(|_| w.end_file(&[]).map(|_| ())).unwrap_err();
    assert!(err.to_string().contains(&blocked), "the error names the record that failed: {err}");
    w.abandon_file().unwrap();
    write_file(w.as_mut(), "next.mov", &content(16, 700_000), &[]);
    w.finish().unwrap();

    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["ok.mov", "next.mov"]);
    assert_eq!(read_all(&mut r, "ok.mov"), content(14, 600_000));
    assert_eq!(read_all(&mut r, "next.mov"), content(16, 700_000));
}

#[test]
fn early_end_of_medium_closes_the_cartridge_with_what_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plan = FaultPlan { end_of_medium_at: Some(9), ..FaultPlan::default() };
    let dev = FaultyDevice::new(cartridge(dir, 100), plan);
    let mut w = Box::new(LtfsVolumeWriter::open(dev, BARCODE).unwrap());
    write_file(w.as_mut(), "fits.mov", &content(14, 600_000), &[]); // blocks 7, 8
    w.begin_file("too-big.mov", mtime()).unwrap();
    let err = w.write(&content(15, 600_000)).unwrap_err();
    assert!(matches!(err, VolumeError::EndOfMedium { .. }), "{err}");
    w.abandon_file().unwrap();
    w.finish().unwrap();
    keep(dir, "early-eom");

    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["fits.mov"]);
    assert_eq!(read_all(&mut r, "fits.mov"), content(14, 600_000));
}

#[test]
fn a_full_cartridge_keeps_room_to_close_the_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 100 MB: 5 MB index partition, 95 MB (190 records) data partition.
    let mut w = Box::new(LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap());
    write_file(w.as_mut(), "first.mov", &content(16, 2_000_000), &[]);
    let left = w.remaining();
    assert!(left > 0 && left < 95 * 1024 * 1024, "{left}");
    w.begin_file("huge.mov", mtime()).unwrap();
    let mut err = None;
    let chunk = content(17, 1_000_000);
    for _ in 0..200 {
        if let Err(e) = w.write(&chunk) {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(VolumeError::EndOfMedium { .. })), "{err:?}");
    w.abandon_file().unwrap();
    w.finish().unwrap();
    keep(dir, "full");
    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["first.mov"]);
    assert_eq!(read_all(&mut r, "first.mov"), content(16, 2_000_000));
}

#[test]
fn a_failed_index_write_leaves_the_previous_index_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut w = Box::new(LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap());
    write_file(w.as_mut(), "kept.mov", &content(18, 1000), &[]);
    w.finish().unwrap();

    let plan = FaultPlan { fail_index_writes: true, ..FaultPlan::default() };
    let dev = FaultyDevice::new(FileCartridge::open(dir).unwrap(), plan);
    let mut w = Box::new(LtfsVolumeWriter::open(dev, BARCODE).unwrap());
    write_file(w.as_mut(), "lost.mov", &content(19, 1000), &[]);
    let err = w.sync_index().unwrap_err();
    assert!(err.to_string().contains("index write failed"), "{err}");
    let err = w.finish().unwrap_err();
    assert!(err.to_string().contains(BARCODE), "{err}");
    keep(dir, "failed-index");
    // The cartridge memory still vouches for the previous indexes under the
    // drive's current volume change reference, so a stock LTFS mounts that
    // generation directly instead of scanning into the data after it.
    let mut dev = FileCartridge::open(dir).unwrap();
    dev.load().unwrap();
    let vcr = mam::volume_change_reference(&mut dev).unwrap();
    for partition in [0, 1] {
        let coh = mam::read_coherency(&mut dev, partition).unwrap().unwrap();
        assert_eq!(Some(coh.volume_change_ref), vcr, "partition {partition}");
        assert_eq!(coh.generation, 2, "partition {partition}");
    }

    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["kept.mov"], "nothing the failed index would have listed");
    assert_eq!(r.index().generation, 2);
    assert_eq!(read_all(&mut r, "kept.mov"), content(18, 1000));
}

fn volume_with_one_file(dir: &Path) {
    let mut w = Box::new(LtfsVolumeWriter::open(cartridge(dir, 100), BARCODE).unwrap());
    write_file(w.as_mut(), "Day01/clip.mov", &content(20, 1000), &[]);
    w.finish().unwrap();
}

fn open_err(dir: &Path) -> String {
    match LtfsVolumeReader::open(FileCartridge::open(dir).unwrap(), Some(BARCODE)) {
        Ok(_) => panic!("a damaged volume opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_garbage_or_truncated_index_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    volume_with_one_file(dir);
    let ip = std::fs::read(dir.join("0_5_R")).unwrap();
    let dp = std::fs::read(dir.join("1_9_R")).unwrap();
    for (what, ip_bytes, dp_bytes) in [
        ("garbage", b"\x00\xffnot xml at all".to_vec(), content(21, 5000)),
        ("truncated", ip[..ip.len() / 2].to_vec(), dp[..dp.len() / 2].to_vec()),
    ] {
        std::fs::write(dir.join("0_5_R"), &ip_bytes).unwrap();
        std::fs::write(dir.join("1_9_R"), &dp_bytes).unwrap();
        let err = open_err(dir);
        assert!(err.contains(BARCODE) && err.contains("index"), "{what}: {err}");
        assert!(err.contains("ltfsck"), "{what}: the error says what to do next: {err}");
    }
    // A blank cartridge says to format it.
    let blank = tempfile::tempdir().unwrap();
    let err = open_err(blank.path());
    assert!(err.contains("reelfs tape format"), "{err}");
}

#[test]
fn a_damaged_newest_index_falls_back_to_an_older_readable_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    volume_with_one_file(dir);
    // The index partition's copy is garbage; the data partition's is fine.
    std::fs::write(dir.join("0_5_R"), b"<?xml version=\"1.0\"?><ltfsindex").unwrap();
    let mut r = reader(dir);
    assert_eq!(paths(&mut r), vec!["Day01/clip.mov"]);
}

#[test]
fn names_that_would_escape_are_refused_when_read_back() {
    for evil in ["..", "../../etc", "/etc/passwd"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        volume_with_one_file(dir);
        for record in ["0_5_R", "1_9_R"] {
            let xml = std::fs::read_to_string(dir.join(record)).unwrap();
            let escaped = evil.replace('&', "&amp;");
            std::fs::write(dir.join(record), xml.replace("<name>Day01</name>", &format!("<name>{escaped}</name>"))).unwrap();
        }
        let err = open_err(dir);
        assert!(err.contains("refusing"), "{evil}: {err}");
    }
}

#[test]
fn a_wrong_cartridge_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    volume_with_one_file(dir);
    let err = match LtfsVolumeReader::open(FileCartridge::open(dir).unwrap(), Some("B00002L8")) {
        Ok(_) => panic!("opened the wrong cartridge"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("A00001") && err.contains("load B00002L8"), "{err}");
    let err = match LtfsVolumeWriter::open(FileCartridge::open(dir).unwrap(), "B00002L8") {
        Ok(_) => panic!("opened the wrong cartridge"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("A00001"), "{err}");
}

#[test]
fn bad_paths_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = LtfsVolumeWriter::open(cartridge(tmp.path(), 100), BARCODE).unwrap();
    for bad in ["../x", "/abs", "a//b", "a/./b", ""] {
        assert!(w.begin_file(bad, mtime()).is_err(), "{bad:?}");
    }
}

#[test]
fn the_emulated_device_spaces_and_reads_like_a_drive() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dev = FileCartridge::open(tmp.path()).unwrap();
    dev.load().unwrap();
    dev.format().unwrap();
    dev.locate(1, 0).unwrap();
    dev.write_record(b"one").unwrap();
    dev.write_filemarks(1).unwrap();
    dev.write_record(b"two").unwrap();
    dev.write_filemarks(1).unwrap();
    dev.locate_end_of_data(1).unwrap();
    assert_eq!(dev.position().unwrap().block, 4);
    dev.space_filemarks(-2).unwrap();
    assert_eq!(dev.position().unwrap().block, 1);
    dev.space_filemarks(1).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(dev.read_record(&mut buf).unwrap(), reelfs::tape::device::ReadOutcome::Record(3));
    assert_eq!(&buf[..3], b"two");
    // Writing in the middle ends the data there, as on tape.
    dev.locate(1, 1).unwrap();
    dev.write_record(b"new").unwrap();
    dev.locate_end_of_data(1).unwrap();
    assert_eq!(dev.position().unwrap().block, 2);
    assert!(!tmp.path().join("1_3_R").exists() && tmp.path().join("1_2_E").exists());
}

/// The first `len` bytes the fixture's clip was made of (a 31-bit LCG).
fn fixture_clip(len: usize) -> Vec<u8> {
    let mut x: u64 = 1;
    (0..len)
        .map(|_| {
            x = (x * 1_103_515_245 + 12_345) & 0x7fff_ffff;
            ((x >> 16) & 255) as u8
        })
        .collect()
}

/// A copy of tests/fixtures/ltfs-reference-volume: a cartridge the reference
/// LTFS (2.4.8.4, file backend) formatted with `mkltfs -s REF001` and wrote
/// three files onto through its FUSE mount.
fn reference_volume() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ltfs-reference-volume");
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    tmp
}

#[test]
fn reads_a_volume_the_reference_ltfs_wrote() {
    let tmp = reference_volume();
    let mut r = LtfsVolumeReader::open(FileCartridge::open(tmp.path()).unwrap(), Some("REF001L8")).unwrap();
    let files = r.files().unwrap();
    let listed: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.bytes, f.placement.start_block)).collect();
    assert_eq!(listed, vec![("empty.txt", 0, 0), ("Day01/A001/A001C003.mov", 100_000, 7), ("Day01/notes & more.txt", 30, 8),]);
    assert_eq!(files[1].xattrs, vec![("ltfs.hash.md5sum".to_string(), b"ef4e027efda3bae7b7789dbc1a22938a".to_vec())]);
    assert_eq!(read_all(&mut r, "Day01/A001/A001C003.mov"), fixture_clip(100_000));
    assert_eq!(read_all(&mut r, "Day01/notes & more.txt"), b"written by the reference LTFS\n");
    assert_eq!(r.label().block_size, 524_288);
    // What the reference wrote has the structure reelfs's validator checks.
    for record in ["0_5_R", "1_10_R"] {
        validate(&std::fs::read(tmp.path().join(record)).unwrap()).unwrap_or_else(|p| panic!("{record}: {p:?}"));
    }
}

#[test]
fn appends_to_a_volume_the_reference_ltfs_wrote() {
    let tmp = reference_volume();
    let dev = FileCartridge::open(tmp.path()).unwrap();
    let mut w = Box::new(LtfsVolumeWriter::open(dev, "REF001L8").unwrap());
    write_file(w.as_mut(), "Day02/B001/B001C001.mov", &content(30, 700_000), &[]);
    w.finish().unwrap();
    let mut r = LtfsVolumeReader::open(FileCartridge::open(tmp.path()).unwrap(), Some("REF001L8")).unwrap();
    assert_eq!(paths(&mut r), vec!["empty.txt", "Day01/A001/A001C003.mov", "Day01/notes & more.txt", "Day02/B001/B001C001.mov"]);
    assert_eq!(read_all(&mut r, "Day02/B001/B001C001.mov"), content(30, 700_000));
    assert_eq!(read_all(&mut r, "Day01/A001/A001C003.mov"), fixture_clip(100_000));
    assert_eq!(r.index().generation, 3);
}
