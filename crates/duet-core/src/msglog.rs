//! The message log's calendar: Tencent names an hour of messages `YYYYMMDDHH` in Beijing time
//! (`open_msg_svc/get_history`); Duet reads it in a configurable fixed offset from UTC. No time-zone
//! database: a fixed offset has no daylight saving, and Beijing time has had none since 1991.
//!
//! [`UtcOffset`] is the offset, [`Hour`] one hour of it (aligned to the offset's own hours, so an offset
//! of `+05:30` starts its hours at :30 UTC), [`format_local`] the `YYYY-MM-DD HH:MM:SS` of Tencent's
//! `ExpireTime`, and [`parse_instant`] the times `duet export` accepts. Every name is checked by these
//! functions, on every door (REST, CLI).

/// Seconds in an hour.
pub const HOUR_SECS: i64 = 3600;
/// Seconds in a day.
const DAY_SECS: i64 = 86_400;

/// A fixed offset from UTC, in seconds east, within ±23:59.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtcOffset(i32);

impl UtcOffset {
    /// Beijing time, UTC+08:00: Tencent's.
    pub const BEIJING: UtcOffset = UtcOffset(8 * 3600);
    /// UTC itself.
    pub const UTC: UtcOffset = UtcOffset(0);

    /// Reads `+08:00`, `-05:30`, `+0800`, `+08` or `Z`; `None` for anything else or an offset of a day or more.
    pub fn parse(s: &str) -> Option<UtcOffset> {
        if s == "Z" || s == "z" {
            return Some(UtcOffset::UTC);
        }
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return None,
        };
        let (h, m) = match (rest.len(), rest.split_once(':')) {
            (5, Some((h, m))) => (h, m),
            (4, None) => rest.split_at(2),
            (2, None) => (rest, "00"),
            _ => return None,
        };
        let (h, m) = (digits(h)?, digits(m)?);
        (h.len() == 2 && m.len() == 2).then_some(())?;
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then(|| UtcOffset(sign * (h * 3600 + m * 60)))
    }

    /// Seconds east of UTC.
    pub fn seconds(self) -> i64 {
        i64::from(self.0)
    }
}

impl std::fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
    }
}

/// `s` if it is ASCII digits only (and not empty).
fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// One hour of the log: [`Hour::start`], inclusive, to [`Hour::end`], exclusive, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour {
    start: i64,
}

impl Hour {
    /// The hour (of `offset`'s clock) that `time` (unix seconds) is in.
    pub fn containing(time: i64, offset: UtcOffset) -> Hour {
        let local = time.saturating_add(offset.seconds());
        Hour { start: local.div_euclid(HOUR_SECS) * HOUR_SECS - offset.seconds() }
    }

    /// Reads Tencent's `YYYYMMDDHH` (e.g. `2015120121`: 21:00 to 21:59:59 on 1 December 2015) in
    /// `offset`'s clock; `None` unless it is ten digits naming a real date and an hour 00–23 (years
    /// 1970 to 9999).
    pub fn parse(name: &str, offset: UtcOffset) -> Option<Hour> {
        let name = digits(name).filter(|n| n.len() == 10)?;
        let num = |r: std::ops::Range<usize>| name[r].parse::<i64>().ok();
        let (year, month, day, hour) = (num(0..4)?, num(4..6)?, num(6..8)?, num(8..10)?);
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || hour > 23 {
            return None;
        }
        if day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let local = days_from_civil(year, month, day) * DAY_SECS + hour * HOUR_SECS;
        Some(Hour { start: local - offset.seconds() })
    }

    /// The hour's `YYYYMMDDHH` in `offset`'s clock.
    pub fn name(self, offset: UtcOffset) -> String {
        let (date, hms) = local_parts(self.start, offset);
        format!("{:04}{:02}{:02}{:02}", date.0, date.1, date.2, hms.0)
    }

    /// Its first second, unix seconds.
    pub fn start(self) -> i64 {
        self.start
    }

    /// The first second after it, unix seconds.
    pub fn end(self) -> i64 {
        self.start + HOUR_SECS
    }

    /// The hour after.
    pub fn next(self) -> Hour {
        Hour { start: self.end() }
    }

    /// The hour before.
    pub fn prev(self) -> Hour {
        Hour { start: self.start - HOUR_SECS }
    }
}

/// `time` (unix seconds) as `YYYY-MM-DD HH:MM:SS` in `offset`'s clock: Tencent's `ExpireTime`.
pub fn format_local(time: i64, offset: UtcOffset) -> String {
    let ((y, mo, d), (h, mi, s)) = local_parts(time, offset);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Reads a point in time for `duet export`: `YYYYMMDDHH` in `offset`'s clock (the hour's start), RFC 3339
/// (`2026-12-04T00:00:00+08:00`, `…Z`; fractions of a second are dropped), or unix seconds: `@<secs>`,
/// or digits that do not name an hour (today's unix times, 17… and 18…, name none: the year would be
/// before 1970).
pub fn parse_instant(s: &str, offset: UtcOffset) -> Option<i64> {
    if let Some(secs) = s.strip_prefix('@') {
        return digits(secs)?.parse().ok();
    }
    if let Some(d) = digits(s) {
        return Hour::parse(d, offset).map(Hour::start).or_else(|| d.parse().ok());
    }
    let (date, rest) = s.split_at_checked(10)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (y, mo, d) = (date.get(0..4)?, date.get(5..7)?, date.get(8..10)?);
    if date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    let (time, zone) = rest.split_at_checked(8)?;
    let (h, mi, sec) = (time.get(0..2)?, time.get(3..5)?, time.get(6..8)?);
    if time.as_bytes()[2] != b':' || time.as_bytes()[5] != b':' {
        return None;
    }
    let zone = match zone.strip_prefix('.') {
        Some(frac) => &frac[frac.bytes().take_while(u8::is_ascii_digit).count()..],
        None => zone,
    };
    let zone = UtcOffset::parse(zone)?;
    let n = |v: &str| digits(v).and_then(|v| v.parse::<i64>().ok());
    let (y, mo, d, h, mi, sec) = (n(y)?, n(mo)?, n(d)?, n(h)?, n(mi)?, n(sec)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * DAY_SECS + h * HOUR_SECS + mi * 60 + sec.min(59) - zone.seconds())
}

/// The date and time of day of `time` in `offset`'s clock.
fn local_parts(time: i64, offset: UtcOffset) -> ((i64, i64, i64), (i64, i64, i64)) {
    let local = time.saturating_add(offset.seconds());
    let (days, secs) = (local.div_euclid(DAY_SECS), local.rem_euclid(DAY_SECS));
    (civil_from_days(days), (secs / 3600, secs % 3600 / 60, secs % 60))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BJ: UtcOffset = UtcOffset::BEIJING;

    #[test]
    fn offsets_parse_and_print() {
        assert_eq!(UtcOffset::parse("+08:00"), Some(BJ));
        assert_eq!(UtcOffset::parse("+0800"), Some(BJ));
        assert_eq!(UtcOffset::parse("+08"), Some(BJ));
        assert_eq!(UtcOffset::parse("Z"), Some(UtcOffset::UTC));
        assert_eq!(UtcOffset::parse("-05:30").map(UtcOffset::seconds), Some(-19_800));
        assert_eq!(UtcOffset::parse("-05:30").unwrap().to_string(), "-05:30");
        assert_eq!(BJ.to_string(), "+08:00");
        assert_eq!(UtcOffset::UTC.to_string(), "+00:00");
        for bad in ["", "8", "08:00", "+24:00", "+08:60", "+8:00", "+08:0", "+08:00:00", "+0a:00", "UTC", "+-8:00"] {
            assert_eq!(UtcOffset::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tencents_example_hour_is_beijing_time() {
        // 2015-12-01 21:00 in Beijing is 13:00 UTC.
        let h = Hour::parse("2015120121", BJ).unwrap();
        assert_eq!(h.start(), 1_448_974_800);
        assert_eq!(h.end() - h.start(), 3600);
        assert_eq!(h.name(BJ), "2015120121");
        assert_eq!(h.name(UtcOffset::UTC), "2015120113");
        assert_eq!(Hour::parse("2015120121", UtcOffset::UTC).unwrap().start(), 1_448_974_800 + 8 * 3600);
        assert_eq!(format_local(h.start(), BJ), "2015-12-01 21:00:00");
        assert_eq!(format_local(h.end() - 1, BJ), "2015-12-01 21:59:59");
    }

    #[test]
    fn every_second_of_an_hour_is_in_it_and_hours_cross_days_and_years() {
        let h = Hour::parse("2026123123", BJ).unwrap();
        for t in [h.start(), h.start() + 1, h.end() - 1] {
            assert_eq!(Hour::containing(t, BJ), h);
        }
        assert_eq!(Hour::containing(h.end(), BJ), h.next());
        assert_eq!(h.next().name(BJ), "2027010100");
        assert_eq!(h.next().prev(), h);
        assert_eq!(Hour::parse("2027010100", BJ).unwrap().prev().name(BJ), "2026123123");
        // The Beijing day starts at 16:00 UTC the day before.
        assert_eq!(Hour::containing(0, BJ).name(BJ), "1970010108");
        assert_eq!(Hour::parse("1970010100", BJ).unwrap().start(), -8 * 3600);
        // Half-hour offsets have hours starting at :30 UTC.
        let india = UtcOffset::parse("+05:30").unwrap();
        let h = Hour::containing(1_800, india);
        assert_eq!((h.start(), h.name(india).as_str()), (1_800, "1970010106"));
        assert_eq!(Hour::containing(1_799, india).start(), -1_800);
        // A negative offset.
        let west = UtcOffset::parse("-03:00").unwrap();
        assert_eq!(Hour::parse("2026010100", west).unwrap().name(UtcOffset::UTC), "2026010103");
    }

    #[test]
    fn bad_hour_names_are_refused() {
        assert!(Hour::parse("2024022923", BJ).is_some(), "a leap day");
        assert!(Hour::parse("2000022900", BJ).is_some(), "2000 is a leap year");
        for bad in [
            "",
            "201512012",
            "20151201211",
            "2015120124",
            "2015130121",
            "2015000121",
            "2015120021",
            "2015113121",
            "2023022900",
            "1900022900",
            "1969123123",
            "2015-12-01",
            "２０１５120121",
            " 2015120121",
            "+015120121",
        ] {
            assert_eq!(Hour::parse(bad, BJ), None, "{bad:?}");
        }
    }

    #[test]
    fn instants_parse_in_every_accepted_form() {
        let h = Hour::parse("2026120400", BJ).unwrap().start();
        assert_eq!(parse_instant("2026120400", BJ), Some(h));
        assert_eq!(parse_instant("2026-12-04T00:00:00+08:00", BJ), Some(h));
        assert_eq!(parse_instant("2026-12-03T16:00:00Z", UtcOffset::UTC), Some(h));
        assert_eq!(parse_instant("2026-12-03 16:00:00.250z", BJ), Some(h));
        assert_eq!(parse_instant(&h.to_string(), BJ), Some(h), "unix seconds that name no hour");
        assert_eq!(parse_instant("2026120400", BJ), Some(h), "ten digits naming an hour are one");
        assert_eq!(parse_instant("@2026120400", BJ), Some(2_026_120_400), "unless marked unix seconds");
        assert_eq!(parse_instant("0", BJ), Some(0));
        for bad in [
            "",
            "2026-12-04",
            "2026-12-04T00:00:00",
            "2026-13-04T00:00:00Z",
            "2026-12-04T24:00:00Z",
            "now",
            "-5",
            "@",
            "@x",
        ] {
            assert_eq!(parse_instant(bad, BJ), None, "{bad:?}");
        }
    }

    #[test]
    fn the_calendar_round_trips_over_four_centuries() {
        let mut day = days_from_civil(1970, 1, 1);
        assert_eq!(day, 0);
        for y in 1970..2370 {
            for m in 1..=12 {
                for d in 1..=days_in_month(y, m) {
                    assert_eq!(civil_from_days(day), (y, m, d));
                    assert_eq!(days_from_civil(y, m, d), day);
                    day += 1;
                }
            }
        }
    }
}
