//! Owners in a branch: who a new file belongs to, and who may give a file to
//! whom (`chown`/`chgrp`), by the POSIX rules Linux applies.
//!
//! With `default_permissions` (fs/mount.rs) the kernel already checks mode bits
//! and the chown rules against the owners this mount reports; the core checks
//! the chown rules again so it is right on its own (tests call it without a
//! kernel) and never records a change the caller may not make.

use super::error::{FsError, FsResult};
use crate::archive::objects::Owner;

/// Who is asking: the process behind a FUSE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary `gid` need not be among them).
    pub groups: Vec<u32>,
}

impl Caller {
    /// The caller of a request from process `pid` with effective `uid`/`gid`.
    /// FUSE requests carry no supplementary groups, so they are read from
    /// /proc; a process that is gone by then counts with its primary group only
    /// (it can ask for less, never for more).
    pub fn of_request(uid: u32, gid: u32, pid: u32) -> Caller {
        let groups = std::fs::read_to_string(format!("/proc/{pid}/status")).map(|s| groups_in_status(&s)).unwrap_or_default();
        Caller { uid, gid, groups }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// The `Groups:` line of /proc/PID/status.
fn groups_in_status(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

/// The owner shown for entries archived without one: the user running the
/// mount, as every file showed before owners were recorded.
pub fn mount_owner() -> Owner {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    unsafe { Owner { uid: libc::getuid(), gid: libc::getgid() } }
}

/// The owner a `chown(uid, gid)` by `caller` gives a file owned by `cur`, or
/// EPERM where POSIX says no: only root gives a file to another user; the
/// owner may change the group to one of its own groups; nobody else may
/// change either.
pub fn chowned(caller: &Caller, cur: Owner, uid: Option<u32>, gid: Option<u32>) -> FsResult<Owner> {
    let new = Owner { uid: uid.unwrap_or(cur.uid), gid: gid.unwrap_or(cur.gid) };
    if caller.is_root() {
        return Ok(new);
    }
    if uid.is_some_and(|u| u != cur.uid) || ((uid.is_some() || gid.is_some()) && caller.uid != cur.uid) {
        return Err(FsError::NotPermitted);
    }
    if gid.is_some_and(|g| g != cur.gid && !caller.in_group(g)) {
        return Err(FsError::NotPermitted);
    }
    Ok(new)
}

/// The mode after a chown, as Linux leaves it: a file that is not a folder
/// loses set-user-ID, and set-group-ID where group execute is set (without
/// it the bit marks mandatory locking, not privilege). Folders keep both.
pub fn mode_after_chown(mode: u32, is_dir: bool) -> u32 {
    if is_dir {
        return mode;
    }
    let mut m = mode & !libc::S_ISUID;
    if m & libc::S_IXGRP != 0 {
        m &= !libc::S_ISGID;
    }
    m
}

/// Owner and mode of a new file or folder made by `caller` in a folder with
/// `parent_mode` owned by `parent`: the caller's, except that in a set-group-ID
/// folder the group is the folder's and a new folder inherits the bit (so a
/// shared project folder stays shared), as on Linux.
pub fn new_entry(caller: &Caller, parent_mode: u32, parent: Option<Owner>, mode: u32, is_dir: bool) -> (Owner, u32) {
    let setgid = libc::S_ISGID;
    match parent {
        Some(p) if parent_mode & setgid != 0 => {
            let mode = if is_dir { mode | setgid } else { mode };
            (Owner { uid: caller.uid, gid: p.gid }, mode)
        }
        _ => (Owner { uid: caller.uid, gid: caller.gid }, mode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller { uid, gid, groups: groups.to_vec() }
    }
    const F: Owner = Owner { uid: 1000, gid: 1000 };

    #[test]
    fn root_may_give_files_away() {
        let root = user(0, 0, &[]);
        assert_eq!(chowned(&root, F, Some(2000), Some(3000)).unwrap(), Owner { uid: 2000, gid: 3000 });
        assert_eq!(chowned(&root, F, None, Some(5)).unwrap(), Owner { uid: 1000, gid: 5 });
    }

    #[test]
    fn only_root_gives_a_file_to_another_user() {
        assert!(matches!(chowned(&user(1000, 1000, &[]), F, Some(2000), None), Err(FsError::NotPermitted)));
        // Someone else may not even "give" it to its current owner.
        assert!(matches!(chowned(&user(2000, 2000, &[]), F, Some(1000), None), Err(FsError::NotPermitted)));
        // The owner naming itself is a no-op it may make.
        assert_eq!(chowned(&user(1000, 1000, &[]), F, Some(1000), None).unwrap(), F);
    }

    #[test]
    fn the_owner_may_change_the_group_to_one_of_its_groups() {
        let u = user(1000, 1000, &[1000, 44]);
        assert_eq!(chowned(&u, F, None, Some(44)).unwrap(), Owner { uid: 1000, gid: 44 });
        assert!(matches!(chowned(&u, F, None, Some(45)), Err(FsError::NotPermitted)));
        // A member of the group who does not own the file may not.
        assert!(matches!(chowned(&user(2000, 44, &[1000]), F, None, Some(44)), Err(FsError::NotPermitted)));
    }

    #[test]
    fn chown_clears_setuid_and_setgid_of_files_not_folders() {
        assert_eq!(mode_after_chown(0o6755, false), 0o755);
        assert_eq!(mode_after_chown(0o6555, false), 0o555);
        // setgid without group execute is a locking marker, kept.
        assert_eq!(mode_after_chown(0o2644, false), 0o2644);
        assert_eq!(mode_after_chown(0o6755, true), 0o6755);
    }

    #[test]
    fn new_entries_take_the_callers_ids_or_a_setgid_folders_group() {
        let u = user(1000, 1000, &[]);
        assert_eq!(new_entry(&u, 0o755, Some(Owner { uid: 0, gid: 50 }), 0o644, false), (F, 0o644));
        assert_eq!(new_entry(&u, 0o2775, Some(Owner { uid: 0, gid: 50 }), 0o644, false), (Owner { uid: 1000, gid: 50 }, 0o644));
        assert_eq!(new_entry(&u, 0o2775, Some(Owner { uid: 0, gid: 50 }), 0o755, true), (Owner { uid: 1000, gid: 50 }, 0o2755));
    }

    #[test]
    fn supplementary_groups_from_proc_status() {
        let s = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 1000 \nNgid:\t0\n";
        assert_eq!(groups_in_status(s), vec![4, 24, 1000]);
        assert_eq!(groups_in_status("Name:\tx\n"), Vec::<u32>::new());
        let me = Caller::of_request(0, 0, std::process::id());
        assert_eq!(me.uid, 0);
    }
}
