//! A cartridge emulated as a directory, in the layout of the reference LTFS
//! implementation's file backend (`tape_backend=file`), so that a stock
//! `ltfs -o tape_backend=file -o devname=DIR` mounts what reelfs wrote and
//! reelfs reads what the reference `mkltfs`/`ltfs` wrote:
//!
//! - one file per record `<partition>_<block>_R`, an empty `_F` per filemark
//!   and an empty `_E` marking the end of data of each partition;
//! - `attr_<partition>_<id in hex>` per cartridge-memory attribute, holding
//!   the whole attribute (id, format, length, value);
//! - `filedebug_tc_conf.xml`, the cartridge settings; `capacity_mb` is the
//!   whole cartridge, 5% of it the index partition, as the reference counts
//!   it (one 512 KiB record per half megabyte). A larger record (a volume
//!   formatted with a larger block size) counts here as the 512 KiB units it
//!   covers, so `--capacity` keeps meaning bytes; the reference counts it as
//!   one record and so finds more room than this emulation, never less.
//!
//! Like the reference backend, the drive (not the application) bumps the
//! volume change reference (attribute 0x0009) at the first write after a
//! load: LTFS compares it with the copy in its coherency attributes to tell a
//! cleanly closed volume from one written by someone else since.

use super::write_behind::{Failed, WriteBehind};
use super::{DeviceError, Position, ReadOutcome, Result, SeekCounts, TapeDevice};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "filedebug_tc_conf.xml";
/// The reference backend's default cartridge size when no settings exist.
pub const DEFAULT_CAPACITY_MB: u64 = 3072;
/// The reference backend counts capacity in records of this size.
const ACCOUNTING_RECORD: u64 = 512 * 1024;
/// The reference backend refuses records larger than this.
const MAX_RECORD: usize = 4 * 1024 * 1024;
/// Volume change reference, a drive-maintained attribute.
const ATTR_VCR: u16 = 0x0009;

pub struct FileCartridge {
    dir: PathBuf,
    capacity_mb: u64,
    loaded: bool,
    pos: Position,
    /// Block of each partition's end-of-data mark.
    eod: [u64; 2],
    /// Each partition's end-of-data mark is a file (after a crash there may
    /// be nothing at the end of data).
    eod_mark: [bool; 2],
    /// Highest block of each partition that may hold a file (a record, a
    /// filemark or a mark): past it nothing is there to remove, so an append
    /// costs no unlink or stat of names that do not exist.
    high: [Option<u64>; 2],
    /// 512 KiB units the records and filemarks before each end of data take.
    units: [u64; 2],
    /// The volume change reference was bumped since the last load.
    wrote_since_load: bool,
    seeks: SeekCounts,
    /// Appended records on their way to disk (`write_behind`), started at
    /// the first append.
    behind: Option<WriteBehind>,
    /// While appended records are in flight, the end-of-data mark's file
    /// stays behind them (partition, block): where the first of them went,
    /// then behind those written (`follow_written_records`); `settle` moves
    /// it to the end of data. A crash meanwhile leaves records past the mark:
    /// `scan` counts them (a record wins over a mark at its block).
    mark_file_at: Option<(u8, u64)>,
    /// Marks `scan` found beside a record (a crash while records were
    /// written behind): removed at the next write, so only one mark is left.
    stale_marks: Vec<(u8, u64)>,
}

/// Records written behind between moves of the end-of-data mark's file
/// (`follow_written_records`): 4 MiB at the default 512 KiB block size, for
/// one rename.
const MARK_FOLLOWS: u64 = 8;

impl FileCartridge {
    /// Open an existing cartridge directory. A directory without settings
    /// gets the reference backend's defaults, as the reference does.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(DeviceError::Invalid(format!(
                "{} is not a directory: create it (mkdir) to emulate a new cartridge",
                dir.display()
            )));
        }
        let config = dir.join(CONFIG_FILE);
        let capacity_mb = if config.exists() {
            let text = fs::read_to_string(&config).map_err(|e| DeviceError::io(format!("reading {}", config.display()), e))?;
            parse_capacity_mb(&text)
                .ok_or_else(|| DeviceError::Invalid(format!("{} has no valid <capacity_mb>: fix or remove it", config.display())))?
        } else {
            write_config(dir, DEFAULT_CAPACITY_MB)?;
            DEFAULT_CAPACITY_MB
        };
        Ok(FileCartridge {
            dir: dir.to_path_buf(),
            capacity_mb,
            loaded: false,
            pos: Position { partition: 0, block: 0 },
            eod: [0, 0],
            eod_mark: [false, false],
            high: [None, None],
            units: [0, 0],
            wrote_since_load: false,
            seeks: SeekCounts::default(),
            behind: None,
            mark_file_at: None,
            stale_marks: Vec::new(),
        })
    }

    /// Set the emulated cartridge's size, as the reference backend's settings
    /// file does (`capacity_mb`).
    pub fn set_capacity_mb(&mut self, capacity_mb: u64) -> Result<()> {
        // Below this the index partition (5%) cannot hold the labels and
        // two indexes.
        if capacity_mb < 100 {
            return Err(DeviceError::Invalid(format!("a cartridge of {capacity_mb} MB is too small: give at least 100M")));
        }
        write_config(&self.dir, capacity_mb)?;
        self.capacity_mb = capacity_mb;
        Ok(())
    }

    pub fn capacity_mb(&self) -> u64 {
        self.capacity_mb
    }

    /// Units of 512 KiB each partition holds, as the reference counts.
    fn capacity_blocks(&self, partition: u8) -> u64 {
        let p0_mb = self.capacity_mb * 5 / 100;
        let mb = if partition == 0 { p0_mb } else { self.capacity_mb - p0_mb };
        mb * 2
    }

    fn record_path(&self, partition: u8, block: u64, kind: char) -> PathBuf {
        self.dir.join(format!("{partition}_{block}_{kind}"))
    }

    fn attr_path(&self, partition: u8, id: u16) -> PathBuf {
        self.dir.join(format!("attr_{partition}_{id:x}"))
    }

    fn kind_at(&self, partition: u8, block: u64) -> Option<char> {
        ['R', 'F', 'E'].into_iter().find(|k| self.record_path(partition, block, *k).exists())
    }

    fn remove_at(&self, partition: u8, block: u64) -> Result<()> {
        if self.high[partition as usize].is_none_or(|h| block > h) {
            return Ok(());
        }
        for k in ['R', 'F', 'E'] {
            let p = self.record_path(partition, block, k);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(DeviceError::io(format!("removing {}", p.display()), e)),
            }
        }
        Ok(())
    }

    fn check_loaded(&self) -> Result<()> {
        if self.loaded {
            Ok(())
        } else {
            Err(DeviceError::Invalid("no cartridge loaded: load it first".into()))
        }
    }

    fn check_partition(partition: u8) -> Result<()> {
        if partition > 1 {
            return Err(DeviceError::Invalid(format!("partition {partition} does not exist (an LTFS cartridge has 0 and 1)")));
        }
        Ok(())
    }

    /// Read the cartridge's listing once: each partition's end of data (the
    /// first block holding neither a record nor a filemark: an `_E` there,
    /// or nothing at all after a crash), whether a mark is there, the highest
    /// block holding anything, and the units the data before the end takes.
    fn scan(&mut self) -> Result<()> {
        let mut found: [std::collections::HashMap<u64, (char, u64)>; 2] = Default::default();
        self.stale_marks.clear();
        let entries = fs::read_dir(&self.dir).map_err(|e| DeviceError::io(format!("listing {}", self.dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DeviceError::io("listing the cartridge", e))?;
            let name = entry.file_name();
            let Some((partition, block, kind)) = name.to_str().and_then(parse_record_name) else { continue };
            let len = if kind == 'R' { entry.metadata().map_err(|e| DeviceError::io("listing the cartridge", e))?.len() } else { 0 };
            // A crash while records were written behind leaves the mark
            // before records that are there: the records count.
            let slot = found[partition as usize].entry(block).or_insert((kind, len));
            if slot.0 == 'E' && kind != 'E' {
                *slot = (kind, len);
                self.stale_marks.push((partition, block));
            } else if kind == 'E' && slot.0 != 'E' {
                self.stale_marks.push((partition, block));
            }
        }
        for (p, records) in found.iter().enumerate() {
            let mut block = 0;
            let mut units = 0;
            while let Some((kind @ ('R' | 'F'), len)) = records.get(&block).copied() {
                units += if kind == 'R' { units_of(len) } else { 1 };
                block += 1;
            }
            self.eod[p] = block;
            self.eod_mark[p] = matches!(records.get(&block), Some(('E', _)));
            self.high[p] = records.keys().max().copied();
            self.units[p] = units;
        }
        Ok(())
    }

    /// Units the records and filemarks before `block` take (after a write in
    /// the middle of the data, which drops what followed).
    fn units_before(&self, partition: u8, block: u64) -> Result<u64> {
        let mut units = 0;
        for b in 0..block {
            let path = self.record_path(partition, b, 'R');
            units += match fs::metadata(&path) {
                Ok(m) => units_of(m.len()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
                Err(e) => return Err(DeviceError::io(format!("reading {}", path.display()), e)),
            };
        }
        Ok(units)
    }

    /// A write ends the partition's data at the head: mark the end there and
    /// drop whatever followed (tape has no overwrite in the middle).
    fn write_eod_at_head(&mut self) -> Result<()> {
        let Position { partition, block } = self.pos;
        self.remove_at(partition, block)?;
        let path = self.record_path(partition, block, 'E');
        fs::File::create(&path).map_err(|e| DeviceError::io(format!("writing {}", path.display()), e))?;
        // Whatever followed goes, up to the highest block anything is at
        // (records a crash left past an older mark included).
        let last = self.eod[partition as usize].max(self.high[partition as usize].unwrap_or(0));
        for b in block + 1..=last {
            self.remove_at(partition, b)?;
        }
        self.eod[partition as usize] = block;
        self.eod_mark[partition as usize] = true;
        self.high[partition as usize] = Some(block);
        Ok(())
    }

    /// Ready the head's block for a write. Returns true when the head is at
    /// the end-of-data mark (appending, the usual case): the mark is then
    /// left in place for `write_record` to move forward (a rename) instead of
    /// being deleted and created again, which cost an inode freed and one
    /// allocated per record; ext4's search past recently freed inodes was the
    /// largest kernel cost of `tape write --device`.
    fn before_write(&mut self, units: u64) -> Result<bool> {
        self.check_loaded()?;
        let Position { partition, block } = self.pos;
        let p = partition as usize;
        // A write in the middle drops what follows, and so frees its room.
        let used = if block == self.eod[p] { self.units[p] } else { self.units_before(partition, block)? };
        if used + units > self.capacity_blocks(partition) {
            return Err(DeviceError::EndOfMedium { partition });
        }
        self.units[p] = used;
        for (partition, block) in std::mem::take(&mut self.stale_marks) {
            let path = self.record_path(partition, block, 'E');
            fs::remove_file(&path).map_err(|e| DeviceError::io(format!("removing {}", path.display()), e))?;
        }
        if !self.wrote_since_load {
            let vcr = self.read_vcr()?.unwrap_or(0) + 1;
            let mut attr = Vec::with_capacity(9);
            attr.extend_from_slice(&ATTR_VCR.to_be_bytes());
            attr.push(0);
            attr.extend_from_slice(&4u16.to_be_bytes());
            attr.extend_from_slice(&(vcr as u32).to_be_bytes());
            self.write_attribute(0, ATTR_VCR, &attr)?;
            self.wrote_since_load = true;
        }
        let appending = self.eod[p] == block && self.eod_mark[p];
        if appending {
            Ok(true)
        } else {
            self.remove_at(partition, block)?;
            Ok(false)
        }
    }

    /// After a record was written at the old end of data (the head is now one
    /// block past it): the mark moves to the head, as `write_eod_at_head`
    /// would leave it, by a rename.
    fn move_eod_to_head(&mut self) -> Result<()> {
        let Position { partition, block } = self.pos;
        self.remove_at(partition, block)?;
        self.rename_mark(partition, block - 1, block)?;
        self.eod[partition as usize] = block;
        let high = &mut self.high[partition as usize];
        *high = Some(high.map_or(block, |h| h.max(block)));
        Ok(())
    }

    /// An append at the end of data, past anything a crash left: such a
    /// record can be written behind (`write_behind`).
    fn can_append_behind(&self) -> bool {
        let Position { partition, block } = self.pos;
        let p = partition as usize;
        self.loaded
            && self.wrote_since_load
            && self.eod[p] == block
            && self.eod_mark[p]
            && self.high[p].is_none_or(|h| h <= block)
            && self.mark_file_at.is_none_or(|(mp, _)| mp == partition)
    }

    fn append_behind(&mut self, data: &[u8], units: u64) -> Result<()> {
        if self.behind.as_mut().is_some_and(WriteBehind::has_failed) {
            return self.settle();
        }
        if self.behind.is_none() {
            self.behind = WriteBehind::start(MAX_RECORD, write_record_file);
        }
        let appending = self.before_write(units)?;
        debug_assert!(appending, "can_append_behind checked the head is at the end-of-data mark");
        let Position { partition, block } = self.pos;
        let path = self.record_path(partition, block, 'R');
        let queued = match self.behind.as_mut() {
            Some(b) => b.push(block, path.clone(), data).is_ok(),
            None => false,
        };
        if !queued {
            write_record_file(&path, data).map_err(|e| DeviceError::io(format!("writing {}", path.display()), e))?;
        }
        self.mark_file_at.get_or_insert((partition, block));
        let p = partition as usize;
        self.units[p] += units;
        self.pos.block += 1;
        self.eod[p] = self.pos.block;
        self.high[p] = Some(self.pos.block);
        self.follow_written_records()
    }

    /// Move the end-of-data mark's file up behind the records already
    /// written, every `MARK_FOLLOWS` of them. A crash then leaves the mark
    /// at most a few records (those still queued) before the end of what is
    /// on the disk, as a drive's buffer loses only what it had not yet
    /// written. Left where the first queued record went, it stayed there for
    /// the whole of a large file: the reference LTFS reads the first mark as
    /// the end of data, so its `ltfsck` dropped everything after it, and
    /// `ltfsck -f` recovered 61 of 2,817 blocks a killed write had put down.
    fn follow_written_records(&mut self) -> Result<()> {
        let Some((partition, mark)) = self.mark_file_at else { return Ok(()) };
        let Some(written) = self.behind.as_mut().and_then(WriteBehind::written_to) else { return Ok(()) };
        if written < mark + MARK_FOLLOWS {
            return Ok(());
        }
        self.rename_mark(partition, mark, written)?;
        self.mark_file_at = Some((partition, written));
        Ok(())
    }

    /// Every queued record is written: the end-of-data mark's file moves to
    /// the end of data.
    fn move_lagging_mark(&mut self) -> Result<()> {
        let Some((partition, block)) = self.mark_file_at.take() else { return Ok(()) };
        let eod = self.eod[partition as usize];
        if block == eod {
            return Ok(());
        }
        self.rename_mark(partition, block, eod)
    }

    /// Move a partition's end-of-data mark file from one block to another.
    fn rename_mark(&self, partition: u8, from: u64, to: u64) -> Result<()> {
        let from = self.record_path(partition, from, 'E');
        let to = self.record_path(partition, to, 'E');
        fs::rename(&from, &to).map_err(|e| DeviceError::io(format!("moving {} to {}", from.display(), to.display()), e))
    }

    /// A record written behind failed: as when a drive reports a deferred
    /// write error, the data ends at the first record that did not make it
    /// (what was queued after it is removed), and the head is there.
    fn recover_from(&mut self, failed: Failed) -> Result<()> {
        let err = DeviceError::io(format!("writing {}", failed.path.display()), failed.error);
        let Some((partition, mark)) = self.mark_file_at.take() else { return Err(err) };
        let p = partition as usize;
        let end = failed.block.clamp(mark, self.eod[p]);
        for b in end..=self.eod[p] {
            self.remove_at(partition, b)?;
        }
        if mark != end {
            self.rename_mark(partition, mark, end)?;
        } else {
            let to = self.record_path(partition, end, 'E');
            fs::File::create(&to).map_err(|e| DeviceError::io(format!("writing {}", to.display()), e))?;
        }
        self.units[p] = self.units_before(partition, end)?;
        self.eod[p] = end;
        self.eod_mark[p] = true;
        self.pos = Position { partition, block: end };
        Err(err)
    }

    /// A locate: counted as a drive would travel.
    fn move_head(&mut self, to: Position) {
        if to != self.pos {
            self.seeks.locates += 1;
            if to.partition == self.pos.partition && to.block < self.pos.block {
                self.seeks.backward += 1;
                self.seeks.blocks_back += self.pos.block - to.block;
            }
        }
        self.pos = to;
    }

    fn read_vcr(&mut self) -> Result<Option<u64>> {
        Ok(self.read_attribute(0, ATTR_VCR)?.and_then(|a| (a.len() >= 9).then(|| u32::from_be_bytes([a[5], a[6], a[7], a[8]]) as u64)))
    }
}

impl TapeDevice for FileCartridge {
    fn load(&mut self) -> Result<()> {
        self.settle()?;
        self.scan()?;
        self.pos = Position { partition: 0, block: 0 };
        self.loaded = true;
        self.wrote_since_load = false;
        Ok(())
    }

    fn unload(&mut self) -> Result<()> {
        self.settle()?;
        self.flush()?;
        self.loaded = false;
        Ok(())
    }

    fn format(&mut self) -> Result<()> {
        self.settle()?;
        self.check_loaded()?;
        let entries = fs::read_dir(&self.dir).map_err(|e| DeviceError::io(format!("listing {}", self.dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DeviceError::io("listing the cartridge", e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if is_record_name(&name) || name.starts_with("attr_") {
                fs::remove_file(entry.path()).map_err(|e| DeviceError::io(format!("erasing {name}"), e))?;
            }
        }
        self.high = [None, None];
        self.units = [0, 0];
        for partition in 0..2 {
            self.eod[partition as usize] = 0;
            self.pos = Position { partition, block: 0 };
            self.write_eod_at_head()?;
        }
        self.wrote_since_load = false;
        self.rewind()
    }

    fn rewind(&mut self) -> Result<()> {
        self.settle()?;
        self.pos = Position { partition: 0, block: 0 };
        Ok(())
    }

    fn locate(&mut self, partition: u8, block: u64) -> Result<()> {
        self.settle()?;
        self.check_loaded()?;
        Self::check_partition(partition)?;
        if block > self.eod[partition as usize] {
            return Err(DeviceError::Invalid(format!(
                "cannot locate to block {block} of partition {partition}: its data ends at block {}",
                self.eod[partition as usize]
            )));
        }
        self.move_head(Position { partition, block });
        Ok(())
    }

    fn seeks(&self) -> Option<SeekCounts> {
        Some(self.seeks)
    }

    fn locate_end_of_data(&mut self, partition: u8) -> Result<()> {
        self.settle()?;
        self.check_loaded()?;
        Self::check_partition(partition)?;
        self.move_head(Position { partition, block: self.eod[partition as usize] });
        Ok(())
    }

    fn position(&mut self) -> Result<Position> {
        self.settle()?;
        Ok(self.pos)
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        if data.len() > MAX_RECORD {
            return Err(DeviceError::Invalid(format!("record of {} bytes is larger than the drive's {MAX_RECORD}", data.len())));
        }
        let units = units_of(data.len() as u64);
        if self.can_append_behind() {
            return self.append_behind(data, units);
        }
        self.settle()?;
        let appending = self.before_write(units)?;
        let path = self.record_path(self.pos.partition, self.pos.block, 'R');
        write_record_file(&path, data).map_err(|e| DeviceError::io(format!("writing {}", path.display()), e))?;
        self.units[self.pos.partition as usize] += units;
        self.pos.block += 1;
        if appending {
            self.move_eod_to_head()
        } else {
            self.write_eod_at_head()
        }
    }

    fn write_filemarks(&mut self, count: u32) -> Result<()> {
        self.settle()?;
        for _ in 0..count {
            let appending = self.before_write(1)?;
            let path = self.record_path(self.pos.partition, self.pos.block, 'F');
            fs::File::create(&path).map_err(|e| DeviceError::io(format!("writing {}", path.display()), e))?;
            self.units[self.pos.partition as usize] += 1;
            self.pos.block += 1;
            if appending {
                self.move_eod_to_head()?;
            } else {
                self.write_eod_at_head()?;
            }
        }
        Ok(())
    }

    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome> {
        self.settle()?;
        self.check_loaded()?;
        let Position { partition, block } = self.pos;
        match self.kind_at(partition, block) {
            Some('R') => {
                let path = self.record_path(partition, block, 'R');
                let mut f = fs::File::open(&path).map_err(|e| DeviceError::io(format!("reading {}", path.display()), e))?;
                let len = f.metadata().map_err(|e| DeviceError::io(format!("reading {}", path.display()), e))?.len() as usize;
                if len > buf.len() {
                    return Err(DeviceError::Invalid(format!(
                        "record {partition}/{block} is {len} bytes, larger than the {} expected",
                        buf.len()
                    )));
                }
                f.read_exact(&mut buf[..len]).map_err(|e| DeviceError::io(format!("reading {}", path.display()), e))?;
                self.pos.block += 1;
                Ok(ReadOutcome::Record(len))
            }
            Some('F') => {
                self.pos.block += 1;
                Ok(ReadOutcome::Filemark)
            }
            _ => Ok(ReadOutcome::EndOfData),
        }
    }

    fn space_filemarks(&mut self, count: i64) -> Result<()> {
        self.settle()?;
        self.check_loaded()?;
        let partition = self.pos.partition;
        let mut seen = 0;
        if count >= 0 {
            let mut block = self.pos.block;
            while seen < count {
                match self.kind_at(partition, block) {
                    Some('R') => {}
                    Some('F') => seen += 1,
                    _ => {
                        return Err(DeviceError::Invalid(format!(
                            "end of data at block {block} of partition {partition} while spacing over filemarks"
                        )))
                    }
                }
                block += 1;
            }
            self.pos.block = block;
        } else {
            let mut block = self.pos.block;
            while seen < -count {
                if block == 0 {
                    return Err(DeviceError::Invalid(format!("beginning of partition {partition} while spacing back over filemarks")));
                }
                block -= 1;
                if self.kind_at(partition, block) == Some('F') {
                    seen += 1;
                }
            }
            self.pos.block = block;
        }
        Ok(())
    }

    fn settle(&mut self) -> Result<()> {
        let Some(failed) = self.behind.as_mut().and_then(WriteBehind::settle) else {
            return self.move_lagging_mark();
        };
        self.recover_from(failed)
    }

    // Counted as records are queued (the writer asks after every one): the
    // room a record that then fails took is given back by `settle`.
    fn remaining_capacity(&mut self, partition: u8) -> Result<u64> {
        Self::check_partition(partition)?;
        let cap = self.capacity_blocks(partition);
        Ok(cap.saturating_sub(self.units[partition as usize]) * ACCOUNTING_RECORD)
    }

    fn flush(&mut self) -> Result<()> {
        self.settle()?;
        // One syncfs makes every record written so far durable; the writer
        // calls it before it points the cartridge memory at a new index.
        let dir = fs::File::open(&self.dir).map_err(|e| DeviceError::io(format!("opening {}", self.dir.display()), e))?;
        rustix::fs::syncfs(&dir).map_err(|e| DeviceError::io("flushing the cartridge", std::io::Error::from(e)))
    }

    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<Vec<u8>>> {
        self.settle()?;
        let path = self.attr_path(partition, id);
        match fs::read(&path) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DeviceError::io(format!("reading {}", path.display()), e)),
        }
    }

    fn write_attribute(&mut self, partition: u8, id: u16, data: &[u8]) -> Result<()> {
        self.settle()?;
        let path = self.attr_path(partition, id);
        fs::write(&path, data).map_err(|e| DeviceError::io(format!("writing {}", path.display()), e))
    }
}

fn is_record_name(name: &str) -> bool {
    parse_record_name(name).is_some()
}

/// `<partition>_<block>_<kind>` as (partition, block, kind).
fn parse_record_name(name: &str) -> Option<(u8, u64, char)> {
    let mut parts = name.split('_');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(p @ ("0" | "1")), Some(b), Some(k @ ("R" | "F" | "E")), None) => {
            Some((u8::from(p == "1"), b.parse().ok()?, k.chars().next()?))
        }
        _ => None,
    }
}

/// The 512 KiB units a record of `len` bytes takes of the cartridge (an
/// empty one still takes a block, as on tape).
fn units_of(len: u64) -> u64 {
    len.div_ceil(ACCOUNTING_RECORD).max(1)
}

fn parse_capacity_mb(text: &str) -> Option<u64> {
    let start = text.find("<capacity_mb>")? + "<capacity_mb>".len();
    let end = start + text[start..].find("</capacity_mb>")?;
    text[start..end].trim().parse().ok().filter(|mb| *mb > 0)
}

/// The settings file in the reference backend's schema (its parser expects
/// every element, in this order).
/// A record's file. Whole aligned pages (every full record `tape write`
/// sends) go to the disk with `O_DIRECT`: the copy into the page cache was a
/// third of the CPU of `tape write --device` in a profile, and a cartridge's
/// worth of records evicted what the server's other users had cached. A short
/// record, or a filesystem that refuses `O_DIRECT`, goes through the page
/// cache (the file is then written again from the start).
fn write_record_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !data.is_empty() && crate::tape::blocks::is_aligned(data) {
        let direct = fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(path);
        match direct.and_then(|mut f| f.write_all(data)) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    fs::File::create(path)?.write_all(data)
}

fn write_config(dir: &Path, capacity_mb: u64) -> Result<()> {
    let text = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<filedebug_cartridge_config>
    <dummy_io>false</dummy_io>
    <emulate_readonly>false</emulate_readonly>
    <capacity_mb>{capacity_mb}</capacity_mb>
    <cart_type>L5</cart_type>
    <density_code>58</density_code>
    <delay_mode>None</delay_mode>
    <wraps>40</wraps>
    <eot_to_bot_sec>12</eot_to_bot_sec>
    <change_direction_us>2000000</change_direction_us>
    <change_track_us>10000</change_track_us>
    <threading_sec>0</threading_sec>
</filedebug_cartridge_config>
"#
    );
    let path = dir.join(CONFIG_FILE);
    fs::write(&path, text).map_err(|e| DeviceError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_the_reference_backend_ones() {
        assert!(is_record_name("0_12_R"));
        assert!(is_record_name("1_0_E"));
        assert!(!is_record_name("attr_0_80c"));
        assert!(!is_record_name(CONFIG_FILE));
    }

    #[test]
    fn capacity_is_read_from_the_settings() {
        let xml = "<filedebug_cartridge_config><capacity_mb>1234</capacity_mb></filedebug_cartridge_config>";
        assert_eq!(parse_capacity_mb(xml), Some(1234));
        assert_eq!(parse_capacity_mb("<capacity_mb>x</capacity_mb>"), None);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| is_record_name(n))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn appending_moves_the_end_of_data_mark_instead_of_making_a_new_one() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mut c = FileCartridge::open(dir.path()).unwrap();
        c.load().unwrap();
        c.format().unwrap();
        c.locate(1, 0).unwrap();
        let mark = fs::metadata(dir.path().join("1_0_E")).unwrap().ino();
        c.write_record(b"one").unwrap();
        c.write_filemarks(1).unwrap();
        c.write_record(b"two").unwrap();
        // Appended records are written behind: on disk once settled.
        c.settle().unwrap();
        // The same file, renamed along: no inode freed and allocated per record.
        assert_eq!(fs::metadata(dir.path().join("1_3_E")).unwrap().ino(), mark);
        assert_eq!(names(dir.path()), ["0_0_E", "1_0_R", "1_1_F", "1_2_R", "1_3_E"]);
        // Written again from block 1: what followed is dropped, as on tape.
        c.locate(1, 1).unwrap();
        c.write_record(b"three").unwrap();
        assert_eq!(names(dir.path()), ["0_0_E", "1_0_R", "1_1_R", "1_2_E"]);
        c.locate(1, 1).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(c.read_record(&mut buf).unwrap(), ReadOutcome::Record(5));
        assert_eq!(&buf[..5], b"three");
        assert_eq!(c.read_record(&mut buf).unwrap(), ReadOutcome::EndOfData);
    }

    #[test]
    fn a_larger_record_takes_the_room_of_the_bytes_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FileCartridge::open(dir.path()).unwrap();
        c.set_capacity_mb(100).unwrap();
        c.load().unwrap();
        c.format().unwrap();
        c.locate(1, 0).unwrap();
        // 95 MB of data partition: 190 units of 512 KiB, 23 records of 4 MiB.
        assert_eq!(c.remaining_capacity(1).unwrap(), 190 * ACCOUNTING_RECORD);
        let record = vec![7u8; MAX_RECORD];
        let mut written = 0;
        loop {
            match c.write_record(&record) {
                Ok(()) => written += 1,
                Err(DeviceError::EndOfMedium { partition: 1 }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(written, 23);
        assert_eq!(c.remaining_capacity(1).unwrap(), 6 * ACCOUNTING_RECORD);
        // A small record still fits, and a reload counts the same room.
        c.write_record(b"tail").unwrap();
        c.load().unwrap();
        assert_eq!(c.remaining_capacity(1).unwrap(), 5 * ACCOUNTING_RECORD);
        // Written again from block 20: the records after it give their room back.
        c.locate(1, 20).unwrap();
        c.write_record(b"again").unwrap();
        assert_eq!(c.remaining_capacity(1).unwrap(), (190 - 20 * 8 - 1) * ACCOUNTING_RECORD);
        assert_eq!(names(dir.path()).iter().filter(|n| n.starts_with("1_")).count(), 22);
    }

    fn written_behind(dir: &Path) -> FileCartridge {
        let mut c = FileCartridge::open(dir).unwrap();
        c.load().unwrap();
        c.format().unwrap();
        c.locate(1, 0).unwrap();
        // The first write after a load bumps the volume change reference
        // and is written in place; the appends after it go behind.
        c.write_record(b"first").unwrap();
        c
    }

    /// A cartridge whose process stopped (dropped without a settle) after
    /// `records` appends: the threads write what was queued, and the mark
    /// stays where it was last moved.
    fn crashed_after(records: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut c = written_behind(dir.path());
        for i in 1..=records {
            c.write_record(&record(i)).unwrap();
        }
        drop(c);
        dir
    }

    fn record(i: usize) -> Vec<u8> {
        // Whole pages (the direct path) and odd lengths (the buffered one).
        let len = if i.is_multiple_of(2) { 8192 * (1 + i % 5) } else { 1000 + i };
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    #[test]
    fn records_written_behind_read_back_and_the_end_of_data_mark_follows_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = written_behind(dir.path());
        let before = c.remaining_capacity(1).unwrap();
        for i in 1..=40 {
            c.write_record(&record(i)).unwrap();
        }
        // Counted as queued, as the writer asks after each record.
        assert_eq!(c.remaining_capacity(1).unwrap(), before - 40 * ACCOUNTING_RECORD);
        assert_eq!(c.position().unwrap(), Position { partition: 1, block: 41 });
        let mut want: Vec<String> = (0..=40).map(|b| format!("1_{b}_R")).collect();
        want.push("1_41_E".into());
        want.push("0_0_E".into());
        want.sort();
        assert_eq!(names(dir.path()), want);
        c.locate(1, 1).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        for i in 1..=40 {
            let ReadOutcome::Record(n) = c.read_record(&mut buf).unwrap() else { panic!("record {i} is missing") };
            assert_eq!(&buf[..n], &record(i)[..], "record {i} reads back different");
        }
        assert_eq!(c.read_record(&mut buf).unwrap(), ReadOutcome::EndOfData);
    }

    #[test]
    fn a_record_that_fails_behind_is_reported_and_the_data_ends_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = written_behind(dir.path());
        // Block 3's file cannot be created (a link into a folder that does
        // not exist): its write fails in a writer thread.
        std::os::unix::fs::symlink(dir.path().join("gone/x"), dir.path().join("1_3_R")).unwrap();
        let mut failed = None;
        for i in 1..=6 {
            // Reported by a later append already, or at the latest by settle.
            if let Err(e) = c.write_record(&record(i)) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => c.settle().expect_err("the failed record is reported"),
        };
        assert!(e.to_string().contains("1_3_R"), "the error names the record's file: {e}");
        assert_eq!(c.position().unwrap(), Position { partition: 1, block: 3 });
        assert_eq!(names(dir.path()), ["0_0_E", "1_0_R", "1_1_R", "1_2_R", "1_3_E"]);
        // The drive goes on from there, as after any write error.
        c.write_record(b"again").unwrap();
        c.settle().unwrap();
        assert_eq!(names(dir.path()), ["0_0_E", "1_0_R", "1_1_R", "1_2_R", "1_3_R", "1_4_E"]);
        let mut c = FileCartridge::open(dir.path()).unwrap();
        c.load().unwrap();
        assert_eq!(c.remaining_capacity(1).unwrap(), c.capacity_blocks(1) * ACCOUNTING_RECORD - 4 * ACCOUNTING_RECORD);
    }

    #[test]
    fn records_written_behind_when_the_process_stops_are_on_the_cartridge() {
        // Fewer records than the mark follows by: it is still where the
        // first queued record went.
        let dir = crashed_after(5);
        assert!(dir.path().join("1_1_E").exists() && dir.path().join("1_5_R").exists());
        let mut c = FileCartridge::open(dir.path()).unwrap();
        c.load().unwrap();
        c.locate_end_of_data(1).unwrap();
        assert_eq!(c.position().unwrap(), Position { partition: 1, block: 6 });
        c.write_record(b"six").unwrap();
        c.flush().unwrap();
        let mut want: Vec<String> = (0..=6).map(|b| format!("1_{b}_R")).collect();
        want.extend(["0_0_E".to_string(), "1_7_E".to_string()]);
        want.sort();
        assert_eq!(names(dir.path()), want, "one end-of-data mark, after the last record");
    }

    /// The reference LTFS reads the first end-of-data mark as the end of
    /// the data: a crash in a long run of records must not leave it far
    /// behind them.
    #[test]
    fn a_crash_in_a_long_run_of_records_leaves_the_mark_close_behind_them() {
        let dir = crashed_after(200);
        let names = names(dir.path());
        let marks: Vec<u64> = names.iter().filter_map(|n| n.strip_prefix("1_")?.strip_suffix("_E")?.parse().ok()).collect();
        assert_eq!(marks.len(), 1, "one mark on the data partition: {names:?}");
        // At most the queue (8 records), the records being written (3) and
        // one move's worth (MARK_FOLLOWS) behind the end, with room to spare.
        assert!(marks[0] + 32 >= 201, "the mark lags at block {} behind 200 records", marks[0]);
        assert!((0..=200).all(|b| names.contains(&format!("1_{b}_R"))), "every record is on the disk");
    }

    #[test]
    fn a_crash_left_record_past_the_end_of_data_is_dropped_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FileCartridge::open(dir.path()).unwrap();
        c.load().unwrap();
        c.format().unwrap();
        c.locate(1, 0).unwrap();
        c.write_record(b"one").unwrap();
        // What a crash between writing a record and moving the mark leaves:
        // no mark at the end of data, and a stray record after the gap.
        fs::remove_file(dir.path().join("1_1_E")).unwrap();
        fs::write(dir.path().join("1_3_R"), b"stray").unwrap();
        c.load().unwrap();
        c.locate_end_of_data(1).unwrap();
        assert_eq!(c.position().unwrap(), Position { partition: 1, block: 1 });
        c.write_record(b"two").unwrap();
        assert_eq!(names(dir.path()), ["0_0_E", "1_0_R", "1_1_R", "1_2_E"]);
    }
}
