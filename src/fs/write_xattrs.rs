//! User extended attributes of branch files and folders, set through the
//! mount: staged with the entry (its `extra`), so a commit keeps them, `diff`
//! reports them and a restore gives them back. The rules are xattr(7)'s for a
//! Linux filesystem that supports the `user` namespace only.

use super::{Branches, Entry, WriteHost};
use crate::archive::objects::{EntryExtra, XattrValue};
use crate::archive::staging::Staged;
use crate::fs::error::{FsError, FsResult};
use crate::fs::inodes::Node;
use std::collections::BTreeMap;

/// setxattr(2) flags.
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;

/// Linux's limits (xattr(7)): the kernel refuses longer names (ERANGE) and
/// values (E2BIG) before they reach the mount; checked again here for callers
/// that are not the kernel.
pub const XATTR_NAME_MAX: usize = 255;
pub const XATTR_SIZE_MAX: usize = 64 << 10;

/// One entry's names, NUL-terminated, must fit one listxattr buffer
/// (XATTR_LIST_MAX, 64 KiB) or no tool could list them; its values are capped
/// at 1 MiB so one file cannot bloat the catalog row it lives in. Past either,
/// ENOSPC, as ext4 answers when an inode's attribute space is full.
const LIST_MAX: usize = 64 << 10;
const VALUES_MAX: usize = 1 << 20;

/// Whether `name` may be set or removed by a user: the `user` namespace only,
/// never the mount's derived `user.reelfs.*` (EPERM: they exist and are not
/// the caller's to change). Other namespaces are not supported (EOPNOTSUPP,
/// which `cp -a` and `rsync -X` take as "this filesystem keeps no such
/// attributes" and go on).
fn check_writable_name(name: &str) -> FsResult<()> {
    if name.starts_with("user.reelfs.") || name == "user.reelfs" {
        return Err(FsError::NotPermitted);
    }
    let Some(rest) = name.strip_prefix("user.") else { return Err(FsError::NotSupported) };
    if rest.is_empty() {
        return Err(FsError::Invalid);
    }
    if name.len() > XATTR_NAME_MAX {
        return Err(FsError::XattrRange);
    }
    Ok(())
}

/// Lay one set over `xattrs` by setxattr(2)'s rules.
fn set_in(xattrs: &mut BTreeMap<String, XattrValue>, name: &str, value: &[u8], flags: i32) -> FsResult<()> {
    if value.len() > XATTR_SIZE_MAX {
        return Err(FsError::XattrTooBig);
    }
    let exists = xattrs.contains_key(name);
    if flags & XATTR_CREATE != 0 && exists {
        return Err(FsError::Exists);
    }
    if flags & XATTR_REPLACE != 0 && !exists {
        return Err(FsError::NoAttr);
    }
    let mut next = xattrs.clone();
    next.insert(name.to_string(), XattrValue(value.to_vec()));
    let list: usize = next.keys().map(|k| k.len() + 1).sum();
    let values: usize = next.values().map(|v| v.0.len()).sum();
    if list > LIST_MAX || values > VALUES_MAX {
        return Err(FsError::NoSpace(format!("{name}: no room for more extended attributes on this file")));
    }
    *xattrs = next;
    Ok(())
}

impl<H: WriteHost> Branches<'_, H> {
    /// The user xattrs kept with a branch file or folder (None: the node is
    /// no branch entry, or one that cannot carry them).
    pub fn user_xattrs(&self, n: &Node) -> FsResult<Option<BTreeMap<String, XattrValue>>> {
        let Some((branch, path)) = Self::branch_ctx(n) else { return Ok(None) };
        Ok(match self.branch_entry(&branch, &path)? {
            Some(Entry::File { extra, .. } | Entry::Dir { extra, .. }) => Some(extra.xattrs.unwrap_or_default()),
            _ => None,
        })
    }

    /// setxattr on a branch file or folder.
    pub fn set_xattr(&self, ino: u64, name: &str, value: &[u8], flags: i32) -> FsResult<()> {
        check_writable_name(name)?;
        self.change_xattrs(ino, |x| set_in(x, name, value, flags))
    }

    /// removexattr on a branch file or folder (ENODATA when it has no such attribute).
    pub fn remove_xattr(&self, ino: u64, name: &str) -> FsResult<()> {
        check_writable_name(name)?;
        self.change_xattrs(ino, |x| x.remove(name).map(|_| ()).ok_or(FsError::NoAttr))
    }

    /// Change a branch entry's xattrs and stage the entry with them, keeping
    /// everything else it is (content, mode, owner, link group).
    fn change_xattrs(&self, ino: u64, f: impl FnOnce(&mut BTreeMap<String, XattrValue>) -> FsResult<()>) -> FsResult<()> {
        let n = self.node(ino)?;
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        let Some((branch, path)) = Self::branch_ctx(&n) else { return Err(FsError::ReadOnly) };
        // Buffered bytes first, so the entry staged below is the file's whole
        // content; the writer keeps our xattrs (stage_write prefers the staged row's).
        let ws = self.write_state(ino);
        let mut guard = match &ws {
            Some(ws) => Some(ws.lock().map_err(|_| FsError::Io("poisoned".into()))?),
            None => None,
        };
        if let Some(w) = guard.as_deref_mut() {
            self.persist(w, false)?;
        }
        let with = |extra: &mut EntryExtra| -> FsResult<()> {
            let mut x = extra.xattrs.take().unwrap_or_default();
            let r = f(&mut x);
            extra.xattrs = (!x.is_empty()).then_some(x);
            // setxattr/removexattr change ctime (not mtime), as on ext4.
            extra.ctime_ns = Some(crate::archive::objects::now_ns());
            r
        };
        let staged = match self.branch_entry(&branch, &path)? {
            Some(Entry::File { content, size, mode, mtime_ns, owner, mut extra }) => {
                with(&mut extra)?;
                if let Some(w) = guard.as_deref_mut() {
                    w.extra = extra.clone();
                }
                Staged::File { size, mode, mtime_ns, content, owner, extra }
            }
            // A branch root is no tree entry: there is nowhere to keep them.
            Some(Entry::Dir { .. }) if path.is_empty() => return Err(FsError::NotPermitted),
            Some(Entry::Dir { tree, mode, mtime_ns, owner, mut extra }) => {
                with(&mut extra)?;
                Staged::Dir { mode, mtime_ns, tree, owner, extra }
            }
            // Linux keeps user attributes on files and folders only (xattr(7)).
            Some(Entry::Special { .. }) => return Err(FsError::NotPermitted),
            None => return Err(FsError::NotFound),
        };
        self.with_writer(|a| a.staging().stage(&branch, &path, &staged))?;
        // Every name of a hard-linked file shows the same attributes.
        self.sync_link_group(&branch, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_user_namespace_and_derived_ones_are_refused() {
        assert!(matches!(check_writable_name("user.reelfs.timecode"), Err(FsError::NotPermitted)));
        assert!(matches!(check_writable_name("trusted.x"), Err(FsError::NotSupported)));
        assert!(matches!(check_writable_name("security.selinux"), Err(FsError::NotSupported)));
        assert!(matches!(check_writable_name("system.posix_acl_access"), Err(FsError::NotSupported)));
        assert!(matches!(check_writable_name("user."), Err(FsError::Invalid)));
        assert!(matches!(check_writable_name(&format!("user.{}", "n".repeat(251))), Err(FsError::XattrRange)));
        assert!(check_writable_name("user.com.apple.FinderInfo").is_ok());
    }

    #[test]
    fn create_replace_and_size_limits_follow_setxattr() {
        let mut x = BTreeMap::new();
        assert!(matches!(set_in(&mut x, "user.a", b"1", XATTR_REPLACE), Err(FsError::NoAttr)));
        set_in(&mut x, "user.a", b"1", XATTR_CREATE).unwrap();
        assert!(matches!(set_in(&mut x, "user.a", b"2", XATTR_CREATE), Err(FsError::Exists)));
        set_in(&mut x, "user.a", b"2", XATTR_REPLACE).unwrap();
        assert_eq!(x["user.a"].0, b"2");
        assert!(matches!(set_in(&mut x, "user.big", &vec![0; XATTR_SIZE_MAX + 1], 0), Err(FsError::XattrTooBig)));
        for i in 0..(VALUES_MAX / XATTR_SIZE_MAX) {
            set_in(&mut x, &format!("user.v{i}"), &vec![7; XATTR_SIZE_MAX - 16], 0).unwrap();
        }
        assert!(matches!(set_in(&mut x, "user.more", &vec![7; XATTR_SIZE_MAX], 0), Err(FsError::NoSpace(_))));
        assert!(!x.contains_key("user.more"), "a refused set changes nothing");
    }
}
