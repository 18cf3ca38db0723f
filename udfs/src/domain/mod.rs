//! Pure domain logic for Shanghai's city data: resident ID numbers (GB 11643), unified social
//! credit codes (GB 32100), the city's division codes (GB/T 2260), mobile numbers and the
//! GCJ-02 / BD-09 coordinate systems used by Chinese web maps.
//!
//! Everything here is plain Rust over `&str` / `&[u8]` / `f64`: no Arrow, no allocation in the
//! check functions, so the SQL functions and the example data generator share one
//! implementation. Dates are proleptic Gregorian; "days" means days since 1970-01-01, the
//! same count as Arrow's `Date32`.

pub mod coords;
pub mod district;
pub mod id_card;
pub mod phone;
pub mod uscc;

/// Whether `year` is a Gregorian leap year.
pub const fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1..=12) of `year`; 0 for a month outside 1..=12.
pub const fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Whether (year, month, day) is a real calendar date.
pub const fn is_real_date(year: i32, month: u32, day: u32) -> bool {
    day >= 1 && day <= days_in_month(year, month)
}

/// Days since 1970-01-01 of a calendar date (which is not checked; see [`is_real_date`]).
///
/// Howard Hinnant's `days_from_civil`, exact for the whole `i32` year range we use.
pub const fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (month as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub const fn civil_from_days(days: i32) -> (i32, u32, u32) {
    // 64-bit so that no day of `i32` overflows the shift to 0000-03-01.
    let z = days as i64 + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    // |days| < 2^31 spans fewer than 2^31 years.
    (year as i32, month, day)
}

/// The day count of 1 January of the year that contains day `days` (both since
/// 1970-01-01): [`civil_from_days`] then [`days_from_civil`] in 64-bit arithmetic, exact for
/// any day of Arrow's temporal types (a day count of an `i64` of seconds or finer, or of
/// Date32).
pub const fn year_start_days(days: i64) -> i64 {
    let z = days + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    // Years here start on 1 March: months from March on (mp < 10) belong to the calendar
    // year `march_year`, January and February to the next. 1 January of calendar year Y is
    // day 306 of the March-year Y - 1.
    let mp = (5 * doy + 2) / 153;
    let march_year = yoe + era * 400;
    let y = if mp < 10 { march_year - 1 } else { march_year };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + 306 - 719_468
}

/// Parses `N` ASCII digits into a number; `None` if any byte is not a digit.
pub(crate) const fn parse_digits(bytes: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + (b - b'0') as u32;
        i += 1;
    }
    Some(value)
}

#[cfg(test)]
pub(crate) mod test_vectors {
    use serde_json::Value;
    use std::sync::OnceLock;

    /// `udfs/tests/data/vectors.json`, a copy of the shared domain vectors.
    pub(crate) fn vectors() -> &'static Value {
        static VECTORS: OnceLock<Value> = OnceLock::new();
        VECTORS.get_or_init(|| {
            serde_json::from_str(include_str!("../../tests/data/vectors.json"))
                .expect("vectors.json parses")
        })
    }

    /// The entries of one top-level array of the vectors file.
    pub(crate) fn cases(key: &str) -> &'static [Value] {
        vectors()[key]
            .as_array()
            .unwrap_or_else(|| panic!("vectors.json has no array {key:?}"))
    }

    pub(crate) fn str_field<'a>(case: &'a Value, key: &str) -> &'a str {
        case[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key:?} missing in {case}"))
    }

    pub(crate) fn point(case: &Value, key: &str) -> (f64, f64) {
        let p = case[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key:?} missing in {case}"));
        (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_count_round_trips_across_centuries() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1850, 1, 1), -43_829);
        // The extremes of Date32 do not overflow.
        for days in [i32::MIN, i32::MAX] {
            let (y, m, d) = civil_from_days(days);
            assert!(is_real_date(y, m, d) && y.abs() > 5_000_000, "{y}-{m}-{d}");
        }
        for days in (-60_000..40_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert!(is_real_date(y, m, d));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn year_start_is_first_of_january_of_the_same_year() {
        for days in (-800_000..800_000).step_by(13) {
            let (y, _, _) = civil_from_days(days);
            assert_eq!(
                year_start_days(i64::from(days)),
                i64::from(days_from_civil(y, 1, 1)),
                "{days}"
            );
        }
        assert_eq!(year_start_days(0), 0);
        assert_eq!(year_start_days(-1), i64::from(days_from_civil(1969, 1, 1)));
        assert_eq!(
            year_start_days(i64::from(days_from_civil(2024, 12, 31))),
            19_723
        );
        // The extremes of Date32 and of a Date64 in milliseconds do not overflow.
        for days in [
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            i64::MAX / 86_400_000,
        ] {
            let start = year_start_days(days);
            assert!(start <= days && days - start < 366, "{days}: {start}");
        }
    }

    #[test]
    fn leap_years_follow_gregorian_rules() {
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(1900));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(2023));
        assert!(is_real_date(2000, 2, 29));
        assert!(!is_real_date(2023, 2, 29));
        assert!(!is_real_date(2023, 13, 1));
        assert!(!is_real_date(2023, 4, 31));
        assert!(!is_real_date(2023, 1, 0));
    }

    #[test]
    fn parse_digits_rejects_non_digits() {
        assert_eq!(parse_digits(b"0042"), Some(42));
        assert_eq!(parse_digits(b"4a"), None);
        assert_eq!(parse_digits(b""), Some(0));
    }
}
