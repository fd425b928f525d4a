//! The write workflow against injected faults, through the `VolumeWriter`
//! trait: a volume that fails the Nth write, one that reaches end of medium
//! early, one whose index writes fail. The catalog must then say exactly what
//! is complete where, and the rest must be queued on the next cartridge.

use super::planning::{plan, PlanRequest};
use super::volume::{FilePlacement, VolumeError, VolumeWriter};
use super::write::{write_tape, WriteOptions};
use crate::archive::ingest::{ingest, IngestOptions};
use crate::archive::Archive;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Default, Clone)]
struct Faults {
    /// The Nth call of `write` (1-based) fails with EIO.
    fail_write: Option<usize>,
    /// End of medium once this many bytes are on the volume.
    capacity: Option<u64>,
    /// Every index write fails.
    fail_index: bool,
    /// Making completed files durable fails (a flush reporting EIO).
    fail_durable: bool,
    /// Ctrl-C arrives during the Nth call of `write` (the flag is set, the write succeeds).
    interrupt_on_write: Option<(usize, Arc<AtomicBool>)>,
    /// The first `end_file` (a slow close: an fsync, a driver flushing) waits
    /// until MD5 has started on the next file (`WriteOptions::md5_started`
    /// says which files it starts), and records whether it did.
    md5_ahead: Option<(crossbeam_channel::Receiver<usize>, Arc<AtomicBool>)>,
}

/// Files an index listed, by path (what a later mount would show).
type Indexed = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

struct MemVolume {
    faults: Faults,
    writes: usize,
    used: u64,
    open: Option<(String, Vec<u8>)>,
    complete: BTreeMap<String, Vec<u8>>,
    indexed: Indexed,
}

impl MemVolume {
    fn new(faults: Faults) -> (Box<MemVolume>, Indexed) {
        let indexed = Indexed::default();
        let v = MemVolume { faults, writes: 0, used: 0, open: None, complete: BTreeMap::new(), indexed: indexed.clone() };
        (Box::new(v), indexed)
    }
}

impl VolumeWriter for MemVolume {
    fn barcode(&self) -> &str {
        "MEM"
    }
    fn remaining(&self) -> u64 {
        self.faults.capacity.map(|c| c.saturating_sub(self.used)).unwrap_or(u64::MAX)
    }
    fn begin_file(&mut self, path: &str, _: SystemTime) -> Result<(), VolumeError> {
        self.open = Some((path.to_string(), Vec::new()));
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> Result<(), VolumeError> {
        self.writes += 1;
        if let Some((n, flag)) = &self.faults.interrupt_on_write {
            if *n == self.writes {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        if self.faults.fail_write == Some(self.writes) {
            return Err(VolumeError::Io {
                barcode: "MEM".into(),
                context: "write".into(),
                source: io::Error::from_raw_os_error(libc::EIO),
            });
        }
        if let Some(cap) = self.faults.capacity {
            if self.used + data.len() as u64 > cap {
                return Err(VolumeError::EndOfMedium { barcode: "MEM".into() });
            }
        }
        self.used += data.len() as u64;
        self.open.as_mut().expect("a file is open").1.extend_from_slice(data);
        Ok(())
    }
    fn end_file(&mut self, _: &[(String, Vec<u8>)]) -> Result<FilePlacement, VolumeError> {
        if let Some((started, seen)) = self.faults.md5_ahead.take() {
            // Long enough for any scheduler; only a pipeline that never hashes
            // ahead waits it out.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while let Ok(n) = started.recv_deadline(deadline) {
                if n >= 1 {
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
            }
        }
        let (p, d) = self.open.take().expect("a file is open");
        let bytes = d.len() as u64;
        self.complete.insert(p, d);
        Ok(FilePlacement { partition: 'b', start_block: self.complete.len() as u64, bytes })
    }
    fn abandon_file(&mut self) -> Result<(), VolumeError> {
        self.open = None;
        Ok(())
    }
    fn make_durable(&mut self) -> Result<(), VolumeError> {
        if self.faults.fail_durable {
            return Err(VolumeError::Io {
                barcode: "MEM".into(),
                context: "flush".into(),
                source: io::Error::from_raw_os_error(libc::EIO),
            });
        }
        Ok(())
    }
    fn sync_index(&mut self) -> Result<(), VolumeError> {
        if self.faults.fail_index {
            return Err(VolumeError::Io {
                barcode: "MEM".into(),
                context: "index".into(),
                source: io::Error::from_raw_os_error(libc::EIO),
            });
        }
        *self.indexed.lock().unwrap() = self.complete.clone();
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<(), VolumeError> {
        self.sync_index()
    }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    crate::archive::test_support::noise_low(n, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// An archive holding Day01/A001/c1.mov .. c3.mov (1 MiB each), and a plan
/// putting them all on A00001L8.
fn setup() -> (tempfile::TempDir, Archive, Vec<Vec<u8>>) {
    setup_sized(&[1 << 20, 1 << 20, 1 << 20])
}

/// As `setup`, with c1.mov .. cN.mov of the given sizes.
fn setup_sized(sizes: &[usize]) -> (tempfile::TempDir, Archive, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Archive::init(&dir.path().join("arch")).unwrap();
    let src = dir.path().join("src/Day01/A001");
    std::fs::create_dir_all(&src).unwrap();
    let data: Vec<Vec<u8>> = sizes.iter().zip(1..).map(|(&n, i)| noise(n, i)).collect();
    for (i, d) in data.iter().enumerate() {
        std::fs::write(src.join(format!("c{}.mov", i + 1)), d).unwrap();
    }
    let opts = IngestOptions {
        branch: "main".into(),
        dest: String::new(),
        message: None,
        progress: Default::default(),
        prober: None,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    ingest(&mut a, &[dir.path().join("src/Day01")], &opts).unwrap();
    let req = PlanRequest { selections: vec!["main/Day01".into()], capacity: Some(100_000_000), copies: 1, ..Default::default() };
    let p = plan(&a, &req).unwrap();
    assert_eq!(p.tapes.len(), 1);
    (dir, a, data)
}

fn states(a: &Archive, barcode: &str) -> Vec<(String, String)> {
    a.catalog.tape_items_on(barcode).unwrap().into_iter().map(|i| (i.tape_path, i.state)).collect()
}

fn s(p: &str, st: &str) -> (String, String) {
    (p.to_string(), st.to_string())
}

#[test]
fn a_volume_failing_the_nth_write_abandons_that_file_and_moves_the_rest_on() {
    let (_d, a, data) = setup();
    let (vol, indexed) = MemVolume::new(Faults { fail_write: Some(2), ..Default::default() });
    let rep = write_tape(&a, "plan-1", "A00001L8", vol, &WriteOptions::default()).unwrap();
    assert_eq!(rep.abandoned.as_ref().map(|p| p.tape_path.as_str()), Some("Day01/A001/c2.mov"));
    assert_eq!((rep.moved_to.as_deref(), rep.moved), (Some("A00002L8"), 2));
    assert_eq!(
        states(&a, "A00001L8"),
        vec![s("Day01/A001/c1.mov", "written"), s("Day01/A001/c2.mov", "abandoned"), s("Day01/A001/c3.mov", "queued")]
    );
    assert_eq!(states(&a, "A00002L8"), vec![s("Day01/A001/c2.mov", "queued"), s("Day01/A001/c3.mov", "queued")]);
    assert_eq!(a.catalog.cartridge("A00001L8").unwrap().unwrap().state, "full");
    let on_tape = indexed.lock().unwrap();
    assert_eq!(on_tape.get("Day01/A001/c1.mov"), Some(&data[0]));
    assert!(!on_tape.contains_key("Day01/A001/c2.mov"));
}

#[test]
fn end_of_medium_early_closes_the_cartridge_with_only_whole_files_indexed() {
    let (_d, a, data) = setup();
    let (vol, indexed) = MemVolume::new(Faults { capacity: Some((1 << 20) + (1 << 19)), ..Default::default() });
    let rep = write_tape(&a, "plan-1", "A00001L8", vol, &WriteOptions::default()).unwrap();
    assert!(rep.abandoned.as_ref().unwrap().error.contains("end of medium"));
    assert_eq!(states(&a, "A00001L8")[..2], [s("Day01/A001/c1.mov", "written"), s("Day01/A001/c2.mov", "abandoned")]);
    assert_eq!(states(&a, "A00002L8"), vec![s("Day01/A001/c2.mov", "queued"), s("Day01/A001/c3.mov", "queued")]);
    let on_tape = indexed.lock().unwrap();
    let files: Vec<&String> = on_tape.keys().filter(|k| k.starts_with("Day01/")).collect();
    assert_eq!(files, vec!["Day01/A001/c1.mov"]);
    assert_eq!(on_tape["Day01/A001/c1.mov"], data[0]);
    // The next cartridge takes the rest, whole.
    let (vol2, indexed2) = MemVolume::new(Faults::default());
    let rep2 = write_tape(&a, "plan-1", "A00002L8", vol2, &WriteOptions::default()).unwrap();
    assert!(rep2.complete(), "{rep2:?}");
    assert_eq!(indexed2.lock().unwrap()["Day01/A001/c3.mov"], data[2]);
}

#[test]
fn failing_index_writes_leave_nothing_recorded_as_complete() {
    let (_d, a, _) = setup();
    let (vol, indexed) = MemVolume::new(Faults { fail_index: true, ..Default::default() });
    let opts = WriteOptions { index_every: 1, ..Default::default() };
    let rep = write_tape(&a, "plan-1", "A00001L8", vol, &opts).unwrap();
    assert!(rep.closed_early.as_deref().unwrap().contains("index"));
    assert!(rep.written.is_empty(), "{rep:?}");
    assert_eq!(rep.not_indexed, vec!["Day01/A001/c1.mov".to_string()]);
    assert!(indexed.lock().unwrap().is_empty());
    assert!(states(&a, "A00001L8").iter().all(|(_, st)| st != "written"));
    assert_eq!(
        states(&a, "A00002L8"),
        vec![s("Day01/A001/c1.mov", "queued"), s("Day01/A001/c2.mov", "queued"), s("Day01/A001/c3.mov", "queued")]
    );
}

#[test]
fn files_the_volume_could_not_make_durable_are_never_recorded_as_written() {
    // The catalog records a batch only after the volume flushed it: a flush
    // that fails leaves every file since the last index off this cartridge.
    let (_d, a, _) = setup();
    let (vol, _) = MemVolume::new(Faults { fail_durable: true, ..Default::default() });
    let rep = write_tape(&a, "plan-1", "A00001L8", vol, &WriteOptions::default()).unwrap();
    assert!(rep.closed_early.as_deref().unwrap().contains("flushing"), "{rep:?}");
    assert!(rep.written.is_empty(), "{rep:?}");
    assert!(states(&a, "A00001L8").iter().all(|(_, st)| st != "written"));
    assert_eq!(
        states(&a, "A00002L8"),
        vec![s("Day01/A001/c1.mov", "queued"), s("Day01/A001/c2.mov", "queued"), s("Day01/A001/c3.mov", "queued")]
    );
}

#[test]
fn ctrl_c_mid_file_leaves_it_queued_off_the_index_and_a_rerun_continues() {
    // c2 spans three 8 MiB writes; Ctrl-C arrives during its first.
    let (_d, a, data) = setup_sized(&[1 << 20, 20 << 20, 1 << 20]);
    let flag = Arc::new(AtomicBool::new(false));
    let (vol, indexed) = MemVolume::new(Faults { interrupt_on_write: Some((2, flag.clone())), ..Default::default() });
    let opts = WriteOptions { interrupt: flag, ..Default::default() };
    let rep = write_tape(&a, "plan-1", "A00001L8", vol, &opts).unwrap();
    assert!(rep.interrupted && !rep.complete(), "{rep:?}");
    assert_eq!(rep.written.iter().map(|w| w.tape_path.as_str()).collect::<Vec<_>>(), ["Day01/A001/c1.mov"]);
    assert_eq!(
        states(&a, "A00001L8"),
        vec![s("Day01/A001/c1.mov", "written"), s("Day01/A001/c2.mov", "queued"), s("Day01/A001/c3.mov", "queued")]
    );
    // The index was written at the safe point and lists the complete file only;
    // the set catalog waits for the run that completes the cartridge.
    let on_tape = indexed.lock().unwrap().clone();
    assert_eq!(on_tape.keys().collect::<Vec<_>>(), ["Day01/A001/c1.mov"]);
    assert_eq!(on_tape["Day01/A001/c1.mov"], data[0]);
    assert!(rep.catalog_files.is_empty());
    // Nothing was moved to another cartridge; this one stays open.
    assert_eq!((rep.moved_to.as_deref(), rep.moved), (None, 0));
    assert_eq!(a.catalog.cartridge("A00001L8").unwrap().unwrap().state, "planned");
    // The rerun writes what is still queued, whole, then the set catalog.
    let (vol2, indexed2) = MemVolume::new(Faults::default());
    let rep2 = write_tape(&a, "plan-1", "A00001L8", vol2, &WriteOptions::default()).unwrap();
    assert!(rep2.complete(), "{rep2:?}");
    assert_eq!(rep2.written.iter().map(|w| w.tape_path.as_str()).collect::<Vec<_>>(), ["Day01/A001/c2.mov", "Day01/A001/c3.mov"]);
    let on_tape2 = indexed2.lock().unwrap();
    assert_eq!(on_tape2["Day01/A001/c2.mov"], data[1]);
    assert_eq!(on_tape2["Day01/A001/c3.mov"], data[2]);
    assert!(states(&a, "A00001L8").iter().all(|(_, st)| st == "written"));
    assert_eq!(a.catalog.cartridge("A00001L8").unwrap().unwrap().state, "written");
}

#[test]
fn md5_of_the_next_file_runs_while_the_volume_closes_this_one() {
    // MD5 is the serial stage of a write: it must not wait while the volume
    // closes a file (an fsync on a mount, a flush in an LTFS driver). The
    // first file's close waits until MD5 has started on the second.
    let (_d, a, data) = setup_sized(&[1 << 20, 4 << 20, 1 << 20]);
    let (tx, rx) = crossbeam_channel::unbounded();
    let seen = Arc::new(AtomicBool::new(false));
    let (vol, indexed) = MemVolume::new(Faults { md5_ahead: Some((rx, seen.clone())), ..Default::default() });
    let opts = WriteOptions { md5_started: Some(tx), ..Default::default() };
    let rep = write_tape(&a, "plan-1", "A00001L8", vol, &opts).unwrap();
    assert!(rep.complete(), "{rep:?}");
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst), "MD5 did not start on c2.mov while c1.mov was being closed");
    // And the hashes recorded are those of each file's own bytes.
    for (i, d) in data.iter().enumerate() {
        assert_eq!(indexed.lock().unwrap()[&format!("Day01/A001/c{}.mov", i + 1)], *d);
    }
    let items = a.catalog.tape_items_on("A00001L8").unwrap();
    for (item, d) in items.iter().zip(&data) {
        let want = super::hashes::FileHashes::of(d);
        assert_eq!(
            (item.md5.as_deref(), item.xxh64.as_deref(), item.sha1.as_deref()),
            (Some(want.md5.as_str()), Some(want.xxh64.as_str()), None)
        );
    }
}
