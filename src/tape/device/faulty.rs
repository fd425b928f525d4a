//! A device wrapper that fails on purpose, for the tests of what a volume
//! does when a tape misbehaves: a write error in the middle of a file, end of
//! medium earlier than the drive promised, an index that cannot be written.
//!
//! The wrapper tells an index record from file data by its content (an LTFS
//! index is an XML document whose root is `ltfsindex`), as a real failure
//! does not care which kind of record it hits but a test must choose.

use super::{DeviceError, Position, ReadOutcome, Result, SeekCounts, TapeDevice};

/// Which failures to inject.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// The Nth write of file data (counting from 1) fails with an I/O error,
    /// and so does every data write after it (a drive that went bad).
    pub fail_data_write: Option<u64>,
    /// File data written at or after this block of the data partition hits
    /// end of medium (indexes still fit: a real drive's early warning leaves
    /// room for them).
    pub end_of_medium_at: Option<u64>,
    /// Every record holding an LTFS index fails to write.
    pub fail_index_writes: bool,
}

pub struct FaultyDevice<D> {
    inner: D,
    plan: FaultPlan,
    data_writes: u64,
}

impl<D: TapeDevice> FaultyDevice<D> {
    pub fn new(inner: D, plan: FaultPlan) -> Self {
        FaultyDevice { inner, plan, data_writes: 0 }
    }

    pub fn into_inner(self) -> D {
        self.inner
    }
}

fn is_index_record(data: &[u8]) -> bool {
    let head = &data[..data.len().min(256)];
    head.starts_with(b"<?xml") && head.windows(10).any(|w| w == b"<ltfsindex")
}

fn is_label_record(data: &[u8]) -> bool {
    data.starts_with(b"VOL1") || {
        let head = &data[..data.len().min(256)];
        head.starts_with(b"<?xml") && head.windows(10).any(|w| w == b"<ltfslabel")
    }
}

impl<D: TapeDevice> TapeDevice for FaultyDevice<D> {
    fn load(&mut self) -> Result<()> {
        self.inner.load()
    }
    fn unload(&mut self) -> Result<()> {
        self.inner.unload()
    }
    fn format(&mut self) -> Result<()> {
        self.inner.format()
    }
    fn rewind(&mut self) -> Result<()> {
        self.inner.rewind()
    }
    fn locate(&mut self, partition: u8, block: u64) -> Result<()> {
        self.inner.locate(partition, block)
    }
    fn locate_end_of_data(&mut self, partition: u8) -> Result<()> {
        self.inner.locate_end_of_data(partition)
    }
    fn position(&mut self) -> Result<Position> {
        self.inner.position()
    }
    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        if is_index_record(data) {
            if self.plan.fail_index_writes {
                return Err(DeviceError::Injected("index write failed".into()));
            }
        } else if !is_label_record(data) {
            self.data_writes += 1;
            if let Some(n) = self.plan.fail_data_write {
                if self.data_writes >= n {
                    return Err(DeviceError::Injected(format!("write {} of file data failed", self.data_writes)));
                }
            }
            if let Some(limit) = self.plan.end_of_medium_at {
                let pos = self.inner.position()?;
                if pos.partition == 1 && pos.block >= limit {
                    return Err(DeviceError::EndOfMedium { partition: 1 });
                }
            }
        }
        self.inner.write_record(data)
    }
    fn write_filemarks(&mut self, count: u32) -> Result<()> {
        self.inner.write_filemarks(count)
    }
    fn read_record(&mut self, buf: &mut [u8]) -> Result<ReadOutcome> {
        self.inner.read_record(buf)
    }
    fn space_filemarks(&mut self, count: i64) -> Result<()> {
        self.inner.space_filemarks(count)
    }
    fn remaining_capacity(&mut self, partition: u8) -> Result<u64> {
        self.inner.remaining_capacity(partition)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn settle(&mut self) -> Result<()> {
        self.inner.settle()
    }
    fn read_attribute(&mut self, partition: u8, id: u16) -> Result<Option<Vec<u8>>> {
        self.inner.read_attribute(partition, id)
    }
    fn write_attribute(&mut self, partition: u8, id: u16, data: &[u8]) -> Result<()> {
        self.inner.write_attribute(partition, id, data)
    }
    fn seeks(&self) -> Option<SeekCounts> {
        self.inner.seeks()
    }
}
