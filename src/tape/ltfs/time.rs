//! LTFS time stamps: UTC, nanoseconds, `2026-11-29T23:29:22.950520164Z`
//! (LTFS Format 2.4, 7.5: the time format of labels and indexes).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Format a time as the spec writes it. Times before 1970 are written as the
/// epoch (a file's mtime is never that old on a camera card).
pub fn format(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_nanos())
}

/// Parse a spec time stamp (fractional digits optional, `Z` required).
pub fn parse(text: &str) -> Option<SystemTime> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, clock) = text.split_once('T')?;
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (clock, ""),
    };
    let mut cp = hms.split(':');
    let h: u64 = cp.next()?.parse().ok()?;
    let mi: u64 = cp.next()?.parse().ok()?;
    let s: u64 = cp.next()?.parse().ok()?;
    if cp.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    let days = days_from_civil(y, m, d);
    if days < 0 {
        return Some(UNIX_EPOCH);
    }
    let secs = days as u64 * 86_400 + h * 3600 + mi * 60 + s;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

// Howard Hinnant's civil calendar algorithms (days since 1970-01-01).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_795_994_962, 950_520_164);
        let s = format(t);
        assert_eq!(s, "2026-11-29T23:29:22.950520164Z");
        assert_eq!(parse(&s), Some(t));
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        assert_eq!(parse("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse("2026-01-01T00:00:00"), None);
        assert!(parse("2026-01-01T00:00:00Z").is_some());
    }
}
