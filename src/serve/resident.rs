//! The server's own code made resident before it says it is ready.
//!
//! A request that runs code this process has not run yet (the first long
//! file, the first outboard-checked block, the first thread start) takes a
//! major fault on the binary whenever its page is not in the page cache, and
//! the kernel reads the file's whole read-ahead around it: on this disk
//! (`read_ahead_kb` 8192) about 6 MB, read before that request could go on.
//! The binary's loaded segments (code and read-only data, about 25 MB; its
//! debug info is not loaded) are read and mapped once at start with
//! `MADV_POPULATE_READ`, so no request waits for its own code. Where the
//! kernel lacks it (before Linux 5.14) `MADV_WILLNEED` reads them into the
//! page cache instead.

/// Read and map every segment of this executable. Failures are logged:
/// the server then pages its code in on demand, as before.
pub fn make_code_resident() {
    let exe = match std::fs::read_link("/proc/self/exe") {
        Ok(p) => p,
        Err(e) => {
            log::debug!("serve: cannot find this executable ({e}); its code is paged in on demand");
            return;
        }
    };
    let maps = match std::fs::read_to_string("/proc/self/maps") {
        Ok(m) => m,
        Err(e) => {
            log::debug!("serve: cannot read /proc/self/maps ({e}); its code is paged in on demand");
            return;
        }
    };
    let exe = exe.to_string_lossy();
    for (start, end) in maps.lines().filter_map(|l| segment_of(l, &exe)) {
        populate(start, end - start);
    }
}

/// The address range of a `/proc/self/maps` line that maps `exe` readable.
fn segment_of(line: &str, exe: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    // After offset, device and inode (none holds a '/'), the path, which
    // may hold spaces.
    let path = line.find('/').map(|i| line[i..].trim_end())?;
    if path != exe || !perms.starts_with('r') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    let (a, b) = (usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?);
    (b > a).then_some((a, b))
}

fn populate(addr: usize, len: usize) {
    // SAFETY: advice on a range this process maps (its own executable's
    // segments, never unmapped while it runs); neither call changes what
    // the memory holds.
    let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_POPULATE_READ) };
    if r == 0 {
        return;
    }
    let err = std::io::Error::last_os_error();
    // SAFETY: as above.
    if unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_WILLNEED) } != 0 {
        log::debug!("serve: could not read its code ahead ({err}); it is paged in on demand");
    }
}

#[cfg(test)]
mod tests {
    use super::segment_of;

    #[test]
    fn only_readable_mappings_of_the_executable_are_segments() {
        let exe = "/usr/local/bin/reelfs";
        let text = "55d0a1c00000-55d0a2b80000 r-xp 00a00000 fe:00 1234    /usr/local/bin/reelfs";
        assert_eq!(segment_of(text, exe), Some((0x55d0a1c00000, 0x55d0a2b80000)));
        assert_eq!(segment_of("55d0a2b80000-55d0a2c00000 ---p 00000000 fe:00 1234 /usr/local/bin/reelfs", exe), None);
        assert_eq!(segment_of("7f00-7f10 r-xp 00000000 fe:00 99 /usr/lib/x86_64-linux-gnu/libc.so.6", exe), None);
        assert_eq!(segment_of("7f00-7f10 rw-p 00000000 00:00 0", exe), None);
        let spaced = "1000-2000 r--p 00000000 fe:00 7 /opt/my tools/reelfs";
        assert_eq!(segment_of(spaced, "/opt/my tools/reelfs"), Some((0x1000, 0x2000)));
    }
}
