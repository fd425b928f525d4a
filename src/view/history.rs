//! Old versions by name: `<branch>@<commit-prefix>` at the root, and
//! `.history/<branch>/<YYYY-MM-DDTHH.MM.SS>_<commit8>` (first-parent history,
//! UTC, `.` for `:` so Windows clients can name it).

use super::{Access, Result, Target, ViewError};
use crate::archive::Hash;

pub const HISTORY_DIR: &str = ".history";

/// `2024-05-01T14.03.59_1a2b3c4d` (UTC).
pub fn history_name(time_ns: i64, commit: &Hash) -> String {
    let secs = time_ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}.{:02}.{:02}_{}", rem / 3600, (rem / 60) % 60, rem % 60, &commit.to_hex()[..8])
}

/// Howard Hinnant's days-to-civil algorithm (also used by the CLI's dates).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn commit_target(ctx: &impl Access, commit: Hash) -> Result<Target> {
    let c = ctx.read(|a| a.commit(&commit))?;
    Ok(Target::Commit { commit, tree: c.tree, time_ns: c.time_ns })
}

/// `branch@prefix` at the root. None: `name` has no `@`.
pub fn at_commit(ctx: &impl Access, name: &str) -> Result<Option<Target>> {
    let Some((branch, prefix)) = name.split_once('@') else { return Ok(None) };
    if !ctx.heads()?.contains_key(branch) {
        return Err(ViewError::NoBranch(branch.to_string()));
    }
    // Any reason the id does not resolve (too short, unknown, ambiguous) is
    // said in the error; the mount turns it into ENOENT.
    match ctx.read(|a| a.resolve_ref(&format!("{branch}@{prefix}"))) {
        Ok((_, Some(c))) => commit_target(ctx, c).map(Some),
        Ok(_) => Err(ViewError::NotFound(name.to_string())),
        Err(ViewError::Archive(e)) => Err(ViewError::NotFound(format!("{name} ({e})"))),
        Err(e) => Err(e),
    }
}

/// A name inside `.history` (a branch) or `.history/<branch>` (a commit).
pub fn lookup(ctx: &impl Access, parent: &Target, name: &str) -> Result<Option<Target>> {
    match parent {
        Target::History => {
            if !ctx.heads()?.contains_key(name) {
                return Err(ViewError::NotFound(format!("{HISTORY_DIR}/{name}")));
            }
            Ok(Some(Target::HistoryBranch { branch: name.to_string() }))
        }
        Target::HistoryBranch { branch } => {
            let missing = || ViewError::NotFound(format!("{HISTORY_DIR}/{branch}/{name}"));
            let Some((_, short)) = name.rsplit_once('_') else { return Err(missing()) };
            let found = ctx.read(|a| a.resolve_ref(&format!("{branch}@{short}"))).ok().and_then(|(_, c)| c);
            let Some(c) = found else { return Err(missing()) };
            let t = commit_target(ctx, c)?;
            let Target::Commit { time_ns, .. } = &t else { return Err(missing()) };
            if history_name(*time_ns, &c) != name {
                return Err(missing());
            }
            Ok(Some(t))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_names_sort_by_time_and_avoid_colons() {
        let h = Hash([0xab; 32]);
        assert_eq!(history_name(0, &h), "1970-01-01T00.00.00_abababab");
        assert_eq!(history_name(1_714_572_239_000_000_000, &h), "2024-05-01T14.03.59_abababab");
        assert!(!history_name(1_714_572_239_000_000_000, &h).contains(':'));
    }
}
