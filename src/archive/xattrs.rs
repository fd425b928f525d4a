//! User extended attributes of sources and restored files (`user.*`, see
//! `objects::keeps_xattr`). Read without following links, applied on the
//! descriptor of the file or folder being restored. Only regular files and
//! folders carry them: Linux refuses user attributes on links and devices.

use super::objects::{keeps_xattr, XattrValue};
use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::path::Path;

pub type Xattrs = BTreeMap<String, XattrValue>;

/// The kept attributes of `path` (None when it has none, or its filesystem
/// has no extended attributes: nothing to keep either way).
pub fn read(path: &Path) -> Option<Xattrs> {
    let names = list(path)?;
    let mut out = Xattrs::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else { continue };
        if !keeps_xattr(name) {
            continue;
        }
        if let Some(v) = value(path, name) {
            out.insert(name.to_string(), XattrValue(v));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Linux caps a name list and a value at 64 KiB (XATTR_LIST_MAX,
/// XATTR_SIZE_MAX), so one buffer of that size always holds either: no
/// size-asking round trip that could race a change.
const XATTR_MAX: usize = 64 << 10;

/// The NUL-separated attribute names.
fn list(path: &Path) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; XATTR_MAX];
    let n = rustix::fs::llistxattr(path, &mut buf[..]).ok()?;
    buf.truncate(n);
    (n > 0).then_some(buf)
}

fn value(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; XATTR_MAX];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Set every attribute on the open file or folder `fd`. Returns why not, when
/// the destination's filesystem refuses them (the bytes are restored anyway).
pub fn apply(fd: BorrowedFd<'_>, xattrs: &Xattrs) -> Result<(), String> {
    for (name, v) in xattrs {
        rustix::fs::fsetxattr(fd, name.as_str(), &v.0, rustix::fs::XattrFlags::empty())
            .map_err(|e| format!("extended attribute {name} not restored: {e}"))?;
    }
    Ok(())
}
