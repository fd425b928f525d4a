//! Random access to bytes, whatever holds them: a local file, a pack in an
//! object store, a file of the archive, a buffer in memory.
//!
//! One trait for every positional reader, so the pack codec (archive/pack.rs)
//! and the QuickTime reader (media/qt) read through the same seam. It depends
//! on nothing but std: any layer may use it.

use std::io;

/// Random access to a byte source of known length.
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; 0 means end of file. May
    /// return fewer bytes than asked (a network or FUSE-backed source does).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill all of `buf` from `offset`, reading on after short reads; a
    /// source that ends first is an `UnexpectedEof` error saying how far it got.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_exact_at(self, offset, buf)
    }
    /// The open file behind this source, when it is one (a local pack): lets a
    /// copier move its bytes inside the kernel (`copy_file_range`).
    fn as_file(&self) -> Option<&std::fs::File> {
        None
    }
    /// Whether `len` bytes at `offset` are better read around the page cache
    /// (`read_direct_at`): a local file on a filesystem that allows it, whose
    /// bytes there are not cached already.
    fn prefers_direct(&self, _offset: u64, _len: usize) -> bool {
        false
    }
    /// Read around the page cache: `offset`, `buf`'s address and its length
    /// are multiples of `DIRECT_ALIGN`. Short only at the end of the source.
    fn read_direct_at(&self, _offset: u64, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Alignment of `ReadAt::read_direct_at`'s offsets, buffers and lengths: the
/// page size, which covers every logical block size up to 4 KiB.
pub const DIRECT_ALIGN: usize = 4096;

/// `file` opened once more, through `/proc/self/fd`, with `opts`: a descriptor
/// of its own (its own flags and advice) for the same file, whatever its
/// name now (unlinked by gc, or a temporary in a private folder).
pub(crate) fn reopen(file: &std::fs::File, opts: &std::fs::OpenOptions) -> io::Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    opts.open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// `ReadAt::read_exact_at` for any reader, sized or not (`&dyn ReadAt` included).
pub fn read_exact_at<R: ReadAt + ?Sized>(src: &R, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let want = buf.len();
    let mut done = 0usize;
    while done < want {
        let pos = offset + done as u64;
        match src.read_at(pos, &mut buf[done..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("source ended early: {want} bytes wanted at offset {offset}, only {done} there"),
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl ReadAt for std::fs::File {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn as_file(&self) -> Option<&std::fs::File> {
        Some(self)
    }
}

/// In-memory sources (tests, small files already cached).
impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(<[u8]>::len(self));
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most 2 bytes per call, as a network source may.
    struct Trickle(Vec<u8>);
    impl ReadAt for Trickle {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(2);
            self.0.read_at(offset, &mut buf[..n])
        }
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
    }

    #[test]
    fn read_exact_at_reads_on_after_short_reads_and_names_a_short_source() {
        let src = Trickle((0u8..10).collect());
        let mut buf = [0u8; 5];
        src.read_exact_at(3, &mut buf).unwrap();
        assert_eq!(buf, [3, 4, 5, 6, 7]);
        let err = src.read_exact_at(8, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("5 bytes wanted at offset 8, only 2 there"), "{err}");
    }

    #[test]
    fn slices_read_past_their_end_as_end_of_file() {
        let v = vec![1u8, 2, 3];
        let mut buf = [0u8; 4];
        assert_eq!(v.read_at(1, &mut buf).unwrap(), 2);
        assert_eq!(v.read_at(3, &mut buf).unwrap(), 0);
        assert_eq!(v.read_at(u64::MAX, &mut buf).unwrap(), 0);
    }
}
