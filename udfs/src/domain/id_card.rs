//! Resident identity card numbers (GB 11643-1999).
//!
//! 18 characters: a 6-digit division code (GB/T 2260), the birth date `YYYYMMDD`, a 3-digit
//! sequence whose last digit is odd for men and even for women, and a check character
//! (ISO 7064 MOD 11-2). Division codes never change on an issued number, so validation checks
//! only the province prefix and accepts abolished districts such as 310108 闸北.

use super::{days_from_civil, is_real_date, parse_digits};

/// Weights of the first 17 digits.
pub const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check character by weighted sum mod 11.
pub const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Province-level prefixes of GB/T 2260 (mainland provinces, Taiwan 71, Hong Kong 81,
/// Macao 82).
pub const PROVINCES: [u8; 34] = [
    11, 12, 13, 14, 15, // North
    21, 22, 23, // North-east
    31, 32, 33, 34, 35, 36, 37, // East
    41, 42, 43, 44, 45, 46, // Centre and south
    50, 51, 52, 53, 54, // South-west
    61, 62, 63, 64, 65, // North-west
    71, 81, 82,
];

/// Earliest accepted birth year.
pub const MIN_BIRTH_YEAR: i32 = 1850;

/// Why a number is not a valid ID number; [`Invalid::reason`] gives the names used by the
/// shared test vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not 18 characters.
    Length,
    /// A non-digit in the first 17, or a last character outside `[0-9X]`.
    Charset,
    /// A lower-case `x` as check character (refused: the standard writes `X`).
    LowercaseX,
    /// The check character does not match.
    CheckDigit,
    /// The province prefix is not a GB/T 2260 province.
    Region,
    /// Not a real calendar date, before 1850 or after today.
    Date,
}

impl Invalid {
    /// A stable snake-case name for the failure.
    pub const fn reason(self) -> &'static str {
        match self {
            Invalid::Length => "bad_length",
            Invalid::Charset => "bad_charset",
            Invalid::LowercaseX => "lowercase_x",
            Invalid::CheckDigit => "bad_check_digit",
            Invalid::Region => "bad_region",
            Invalid::Date => "bad_date",
        }
    }
}

/// The check character for the first 17 digits, or `None` unless `first17` is exactly 17
/// ASCII digits.
pub fn check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (&b, &w) in first17.iter().zip(WEIGHTS.iter()) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * w;
    }
    Some(CHECK_CHARS[(sum % 11) as usize])
}

/// [`PROVINCES`] as a bit set over 0..100.
const PROVINCE_BITS: u128 = {
    let mut bits = 0u128;
    let mut i = 0;
    while i < PROVINCES.len() {
        bits |= 1 << PROVINCES[i];
        i += 1;
    }
    bits
};

/// Whether `prefix` (the first two digits as a number) is a GB/T 2260 province.
pub fn is_province(prefix: u32) -> bool {
    prefix < 100 && PROVINCE_BITS & (1 << prefix) != 0
}

/// Checks an 18-character number; `today` is the current date in days since 1970-01-01
/// (birth dates after it are refused). Checks run in the order length, characters, check
/// character, province, date, and the first failure is returned.
pub fn validate(s: &str, today: i32) -> Result<(), Invalid> {
    let b = s.as_bytes();
    if b.len() != 18 {
        return Err(Invalid::Length);
    }
    if !b[..17].iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Charset);
    }
    match b[17] {
        b'0'..=b'9' | b'X' => {}
        b'x' => return Err(Invalid::LowercaseX),
        _ => return Err(Invalid::Charset),
    }
    if check_char(&b[..17]) != Some(b[17]) {
        return Err(Invalid::CheckDigit);
    }
    if !parse_digits(&b[..2]).is_some_and(is_province) {
        return Err(Invalid::Region);
    }
    match parse_date(&b[6..14]) {
        Some((y, m, d)) if y >= MIN_BIRTH_YEAR && days_from_civil(y, m, d) <= today => Ok(()),
        _ => Err(Invalid::Date),
    }
}

/// Whether `s` is a valid 18-character ID number on `today` (days since 1970-01-01); see
/// [`validate`].
pub fn is_valid(s: &str, today: i32) -> bool {
    validate(s, today).is_ok()
}

/// A `YYYYMMDD` slice as a real calendar date.
fn parse_date(yyyymmdd: &[u8]) -> Option<(i32, u32, u32)> {
    let year = parse_digits(&yyyymmdd[..4])? as i32;
    let month = parse_digits(&yyyymmdd[4..6])?;
    let day = parse_digits(&yyyymmdd[6..8])?;
    is_real_date(year, month, day).then_some((year, month, day))
}

/// Whether `b` has the shape of an 18-character number (17 digits and `[0-9X]`), without
/// checking the check character, province or date.
fn is_shaped18(b: &[u8]) -> bool {
    b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) && matches!(b[17], b'0'..=b'9' | b'X')
}

/// Whether `b` has the shape of an old 15-digit number.
fn is_shaped15(b: &[u8]) -> bool {
    b.len() == 15 && b.iter().all(u8::is_ascii_digit)
}

/// The birth date of an 18-character number, or of an old 15-digit one (born 19YY).
///
/// This reads the number's structure only (shape and a real calendar date); it does not
/// verify the check character or the province: combine with [`is_valid`] where that matters.
pub fn birth(s: &str) -> Option<(i32, u32, u32)> {
    let b = s.as_bytes();
    if is_shaped18(b) {
        parse_date(&b[6..14])
    } else if is_shaped15(b) {
        let mut yyyymmdd = *b"19000000";
        yyyymmdd[2..].copy_from_slice(&b[6..12]);
        parse_date(&yyyymmdd)
    } else {
        None
    }
}

/// The sex recorded in an 18- or 15-character number: `'M'` when the last sequence digit is
/// odd, `'F'` when even. Structural like [`birth`].
pub fn sex(s: &str) -> Option<char> {
    let b = s.as_bytes();
    let digit = if is_shaped18(b) {
        b[16]
    } else if is_shaped15(b) {
        b[14]
    } else {
        return None;
    };
    Some(if (digit - b'0') % 2 == 1 { 'M' } else { 'F' })
}

/// The 6-digit division code of an 18- or 15-character number. Structural like [`birth`].
pub fn region(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (is_shaped18(b) || is_shaped15(b)).then(|| &s[..6])
}

/// Upgrades an old 15-digit number to 18 characters: "19" goes before the 2-digit year and
/// the check character is appended. `None` unless `s15` is 15 digits with a real date.
pub fn upgrade15(s15: &str) -> Option<[u8; 18]> {
    let b = s15.as_bytes();
    if !is_shaped15(b) {
        return None;
    }
    let mut out = [0u8; 18];
    out[..6].copy_from_slice(&b[..6]);
    out[6..8].copy_from_slice(b"19");
    out[8..17].copy_from_slice(&b[6..15]);
    parse_date(&out[6..14])?;
    out[17] = check_char(&out[..17])?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field, vectors};

    fn vectors_today() -> i32 {
        let today = vectors()["meta"]["id_validation_today"].as_str().unwrap();
        let (y, m, d) = (&today[..4], &today[5..7], &today[8..10]);
        days_from_civil(y.parse().unwrap(), m.parse().unwrap(), d.parse().unwrap())
    }

    #[test]
    fn every_id_vector_validates_with_its_reason() {
        let today = vectors_today();
        for case in cases("id_card") {
            let input = str_field(case, "input");
            let valid = case["valid"].as_bool().unwrap();
            let got = validate(input, today);
            assert_eq!(got.is_ok(), valid, "{input}: {got:?}");
            assert_eq!(is_valid(input, today), valid, "{input}");
            let reason = got.err().map_or("ok", Invalid::reason);
            assert_eq!(reason, str_field(case, "reason"), "{input}");
        }
    }

    #[test]
    fn valid_id_vectors_give_birth_sex_region_and_check() {
        for case in cases("id_card").iter().filter(|c| c["valid"] == true) {
            let input = str_field(case, "input");
            assert_eq!(region(input), Some(str_field(case, "region")), "{input}");
            if let Some(expected) = case["birth"].as_str() {
                let (y, m, d) = birth(input).unwrap();
                assert_eq!(format!("{y:04}{m:02}{d:02}"), expected, "{input}");
            }
            if let Some(expected) = case["sex"].as_str() {
                assert_eq!(sex(input).map(String::from), Some(expected.to_owned()));
            }
            if let Some(expected) = case["check"].as_str() {
                let got = check_char(&input.as_bytes()[..17]).unwrap();
                assert_eq!(char::from(got).to_string(), expected, "{input}");
            }
        }
    }

    #[test]
    fn every_15_digit_vector_upgrades_to_its_18_digit_form() {
        for case in cases("id_card_15") {
            let input = str_field(case, "input");
            let upgraded = upgrade15(input).unwrap();
            assert_eq!(
                std::str::from_utf8(&upgraded).unwrap(),
                str_field(case, "id18")
            );
            assert_eq!(birth(input), birth(str_field(case, "id18")));
            assert_eq!(sex(input), sex(str_field(case, "id18")));
        }
    }

    #[test]
    fn standard_example_has_check_x() {
        assert_eq!(check_char(b"11010519491231002"), Some(b'X'));
        assert!(is_valid("11010519491231002X", days_from_civil(2025, 6, 30)));
    }

    #[test]
    fn province_set_is_the_table() {
        for prefix in 0..1000 {
            let listed = PROVINCES.iter().any(|&p| u32::from(p) == prefix);
            assert_eq!(is_province(prefix), listed, "{prefix}");
        }
    }

    #[test]
    fn check_char_needs_17_digits() {
        assert_eq!(check_char(b"1101051949123100"), None);
        assert_eq!(check_char(b"110105194912310021"), None);
        assert_eq!(check_char(b"1101051949123100A"), None);
    }

    #[test]
    fn birth_dates_are_bounded_by_1850_and_today() {
        // 2025-06-30 born; valid from that day on, not the day before.
        let id = with_check("31010120250630001");
        assert!(is_valid(&id, days_from_civil(2025, 6, 30)));
        assert_eq!(
            validate(&id, days_from_civil(2025, 6, 29)),
            Err(Invalid::Date)
        );
        let old = with_check("31010118491231001");
        assert_eq!(validate(&old, i32::MAX), Err(Invalid::Date));
        let oldest = with_check("31010118500101001");
        assert!(is_valid(&oldest, 0));
    }

    #[test]
    fn historical_and_non_shanghai_provinces_are_accepted() {
        let today = days_from_civil(2025, 6, 30);
        for first17 in [
            "31010319800101001",
            "31023019800101001",
            "81000019800101001",
        ] {
            assert!(is_valid(&with_check(first17), today), "{first17}");
        }
        for first17 in [
            "10010119800101001",
            "47010119800101001",
            "91010119800101001",
        ] {
            assert_eq!(validate(&with_check(first17), today), Err(Invalid::Region));
        }
    }

    #[test]
    fn non_digits_and_wrong_lengths_are_refused() {
        let today = days_from_civil(2025, 6, 30);
        assert_eq!(validate("", today), Err(Invalid::Length));
        assert_eq!(validate("3101011985031212361", today), Err(Invalid::Length));
        assert_eq!(validate("31010119850312123Y", today), Err(Invalid::Charset));
        assert_eq!(validate("3101011985031212A6", today), Err(Invalid::Charset));
        // 18 bytes but not 18 ASCII characters.
        assert_eq!(validate("310101198503121２", today), Err(Invalid::Charset));
        assert_eq!(validate("31010119850312123６", today), Err(Invalid::Length));
    }

    #[test]
    fn structural_accessors_refuse_malformed_input() {
        assert_eq!(birth("31010119850332123X"), None);
        assert_eq!(birth("31010119850312123x"), None);
        assert_eq!(sex("3101011985031212"), None);
        assert_eq!(region("abc"), None);
        assert_eq!(upgrade15("310101851312123"), None);
        assert_eq!(upgrade15("31010185031212"), None);
        assert_eq!(birth("310101000229123"), None);
        assert_eq!(birth("310101960229123"), Some((1996, 2, 29)));
    }

    fn with_check(first17: &str) -> String {
        let c = check_char(first17.as_bytes()).unwrap();
        format!("{first17}{}", char::from(c))
    }
}
