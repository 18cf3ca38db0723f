//! Property tests over random inputs: what every mask, validator and coordinate transform
//! must keep whatever the value.
//!
//! The per-character masks (`mask_keep`, `mask_id_card`, `mask_phone`, `mask_name_cn`) keep
//! the length in characters; `mask_email` and `mask_address_cn` replace what they hide by a
//! fixed `***` / `****`, so for them the length is what must *not* show. Inputs never contain
//! `*`: a value made of mask characters is its own mask.

use std::sync::Arc;

use proptest::prelude::*;

use crate::domain::{coords, days_from_civil, id_card, is_real_date, phone, uscc};
use crate::function::{Function, StringFn};
use crate::mask::address_cn::{Level, kept_len, masked};
use crate::mask::email::MaskEmail;
use crate::mask::keep::{MaskPhone, keep_into};
use crate::mask::name_cn::{Style, name_into};
use crate::mask::token::{keyed, token_into};
use crate::testing::written;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Text of digits, Latin and CJK letters, an emoji and punctuation, never `*`.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('a', 'z'),
            proptest::char::range('一', '龥'),
            Just('😀'),
            Just('@'),
            Just('+'),
            Just('·'),
            Just(' '),
        ],
        0..40,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// A Chinese address: optional province / city / district / town / road parts, then a house
/// number and room.
fn address() -> impl Strategy<Value = String> {
    let part = |options: &'static [&'static str]| proptest::sample::select(options);
    (
        part(&["", "上海市", "上海", "江苏省苏州市", "中国上海市"]),
        part(&["", "黄浦区", "浦东新区", "崇明县", "昆山市"]),
        part(&["", "张江镇", "漕河泾街道", "小区"]),
        part(&["", "南京东路", "世纪大道", "镇宁路"]),
        1u32..5000,
        text(),
    )
        .prop_map(|(a, b, c, d, n, rest)| format!("{a}{b}{c}{d}{n}号{rest}"))
}

/// GB 11643's check character from its definition (ISO 7064 MOD 11-2), not from the
/// implementation's tables: weights 2^(18-i) mod 11, check c with (S + c) ≡ 1 (mod 11).
fn id_check_by_definition(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .enumerate()
        .map(|(i, &d)| u32::from(d - b'0') * ((1u32 << (17 - i)) % 11))
        .sum();
    match (12 - sum % 11) % 11 {
        10 => b'X',
        c => b'0' + c as u8,
    }
}

/// GB 32100's check character from its definition: weights 3^(i-1) mod 31, check
/// (31 − S mod 31) mod 31.
fn uscc_check_by_definition(first17: &[u8]) -> u8 {
    let mut weight = 1u32;
    let mut sum = 0u32;
    for &c in first17 {
        let value = uscc::ALPHABET.iter().position(|&a| a == c).unwrap_or(0) as u32;
        sum += value * weight;
        weight = weight * 3 % 31;
    }
    uscc::ALPHABET[((31 - sum % 31) % 31) as usize]
}

/// 17 digits of a well-formed ID number: a Shanghai district, a real birth date from 1850
/// to 2024, and a sequence.
fn id_first17() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(
            crate::domain::district::CURRENT
                .iter()
                .chain(crate::domain::district::HISTORICAL)
                .map(|d| d.code)
                .collect::<Vec<_>>(),
        ),
        days_from_civil(1850, 1, 1)..days_from_civil(2024, 12, 31),
        0u32..1000,
    )
        .prop_map(|(code, days, seq)| {
            let (y, m, d) = crate::domain::civil_from_days(days);
            format!("{code}{y:04}{m:02}{d:02}{seq:03}")
        })
}

/// 17 characters of a well-formed credit code: a known authority and type, six digits and
/// nine characters of the alphabet.
fn uscc_first17() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(uscc::KINDS),
        proptest::collection::vec(0u8..10, 6),
        proptest::collection::vec(0usize..31, 9),
    )
        .prop_map(|(kind, region, org)| {
            let mut s = vec![kind.authority, kind.kind];
            s.extend(region.iter().map(|d| b'0' + d));
            s.extend(org.iter().map(|&i| uscc::ALPHABET[i]));
            s
        })
}

/// The China bounding box, where GCJ-02 applies.
fn china_point() -> impl Strategy<Value = (f64, f64)> {
    (72.1..137.7f64, 0.9..55.7f64)
}

const FAR_FUTURE: i32 = i32::MAX;

proptest! {
    #[test]
    fn mask_keep_keeps_length_hides_the_middle_and_is_deterministic(
        s in text(), head in 0usize..8, tail in 0usize..8,
    ) {
        let out = written(|o| keep_into(&s, head, tail, '*', o));
        prop_assert_eq!(chars(&out), chars(&s));
        prop_assert_eq!(&out, &written(|o| keep_into(&s, head, tail, '*', o)));
        if chars(&s) > head + tail {
            prop_assert_ne!(&out, &s);
            let prefix: String = s.chars().take(head).collect();
            prop_assert!(out.starts_with(&prefix));
        } else {
            prop_assert!(out.chars().all(|c| c == '*'));
        }
    }

    #[test]
    fn mask_id_card_and_mask_phone_keep_length_and_hide_something(s in text()) {
        let id = written(|o| keep_into(&s, 6, 4, '*', o));
        prop_assert_eq!(chars(&id), chars(&s));
        if !s.is_empty() {
            prop_assert_ne!(&id, &s);
        }
        let phone = written(|o| _ = MaskPhone::apply(&s, o));
        prop_assert_eq!(chars(&phone), chars(&s));
        prop_assert_eq!(&phone, &written(|o| _ = MaskPhone::apply(&s, o)));
        let body = s.strip_prefix("+86").unwrap_or(&s);
        if !body.is_empty() {
            prop_assert_ne!(&phone, &s);
        }
    }

    #[test]
    fn mask_name_cn_keeps_length_and_never_shows_a_whole_name(
        s in text(), first_last in any::<bool>(),
    ) {
        let style = if first_last { Style::FirstLast } else { Style::Surname };
        let out = written(|o| name_into(&s, style, o));
        prop_assert_eq!(chars(&out), chars(&s));
        prop_assert_eq!(&out, &written(|o| name_into(&s, style, o)));
        if !s.is_empty() {
            prop_assert_ne!(&out, &s);
        }
    }

    #[test]
    fn mask_email_keeps_at_most_one_local_character(s in text()) {
        let out = written(|o| _ = MaskEmail::apply(&s, o));
        prop_assert_ne!(&out, &s);
        prop_assert_eq!(&out, &written(|o| _ = MaskEmail::apply(&s, o)));
        let local = out.split("***").next().unwrap_or_default();
        prop_assert!(chars(local) <= 1, "{}", out);
        if let Some(at) = s.rfind('@') {
            prop_assert!(out.ends_with(&s[at..]));
        }
    }

    #[test]
    fn mask_address_cn_keeps_a_prefix_without_numbers(a in address(), street in any::<bool>()) {
        let level = if street { Level::Street } else { Level::District };
        let out = masked(&a, level);
        prop_assert_ne!(&out, &a);
        prop_assert_eq!(&out, &masked(&a, level));
        let kept = kept_len(&a, level);
        prop_assert_eq!(&out[..kept], &a[..kept]);
        prop_assert_eq!(&out[kept..], "****");
        prop_assert!(!a[..kept].chars().any(char::is_numeric), "{}", out);
        prop_assert!(kept_len(&a, Level::District) <= kept_len(&a, Level::Street));
        // Masking a mask changes nothing.
        prop_assert_eq!(&masked(&out, level), &out);
    }

    #[test]
    fn mask_token_is_deterministic_per_key_and_differs_between_keys(
        s in text(), k1 in proptest::collection::vec(any::<u8>(), 0..80),
        k2 in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let (m1, m2) = (keyed(&k1).unwrap(), keyed(&k2).unwrap());
        let t1 = written(|o| token_into(&m1, &s, o));
        prop_assert_eq!(&t1, &written(|o| token_into(&m1, &s, o)));
        prop_assert_eq!(t1.len(), 32);
        prop_assert!(t1.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        prop_assert_ne!(&t1, &s);
        if k1 != k2 {
            prop_assert_ne!(&t1, &written(|o| token_into(&m2, &s, o)));
        }
    }

    #[test]
    fn mask_round_floors_into_the_step_below(x in any::<i64>(), step in 1i64..1_000_000_000) {
        let f = crate::mask::round::MaskRound.udf();
        let out = crate::testing::invoke(
            &f,
            vec![crate::testing::lit(x.into()), crate::testing::lit(step.into())],
        ).unwrap();
        let datafusion::common::ScalarValue::Int64(got) = crate::testing::values(&out)[0] else {
            panic!("an Int64");
        };
        let exact = i128::from(x).div_euclid(i128::from(step)) * i128::from(step);
        prop_assert_eq!(got.map(i128::from), (exact >= i128::from(i64::MIN)).then_some(exact));
    }

    #[test]
    fn mask_date_year_gives_the_first_of_january_of_the_same_year(days in -1_000_000i32..1_000_000) {
        let start = crate::domain::year_start_days(i64::from(days));
        let (y, _, _) = crate::domain::civil_from_days(days);
        prop_assert_eq!(start, i64::from(days_from_civil(y, 1, 1)));
    }

    #[test]
    fn id_validity_is_the_mod_11_2_definition(first17 in id_first17(), last in 0usize..11) {
        let check = b"0123456789X"[last];
        let id = format!("{first17}{}", char::from(check));
        let expected = check == id_check_by_definition(first17.as_bytes());
        prop_assert_eq!(id_card::is_valid(&id, FAR_FUTURE), expected, "{}", id);
    }

    #[test]
    fn every_single_digit_error_in_a_valid_id_is_caught(
        first17 in id_first17(), pos in 0usize..18, digit in 0u8..11,
    ) {
        let mut id = first17.into_bytes();
        id.push(id_check_by_definition(&id));
        prop_assert!(id_card::is_valid(std::str::from_utf8(&id).unwrap(), FAR_FUTURE));
        let replacement = if digit == 10 { b'X' } else { b'0' + digit };
        prop_assume!(id[pos] != replacement);
        id[pos] = replacement;
        prop_assert!(!id_card::is_valid(std::str::from_utf8(&id).unwrap(), FAR_FUTURE));
    }

    #[test]
    fn id_accessors_agree_with_validity(first17 in id_first17()) {
        let id = format!("{first17}{}", char::from(id_check_by_definition(first17.as_bytes())));
        let (y, m, d) = id_card::birth(&id).unwrap();
        prop_assert!(is_real_date(y, m, d));
        prop_assert_eq!(&format!("{y:04}{m:02}{d:02}"), &id[6..14]);
        prop_assert_eq!(id_card::region(&id), Some(&id[..6]));
    }

    #[test]
    fn uscc_validity_is_the_mod_31_definition(first17 in uscc_first17(), last in 0usize..31) {
        let mut code = first17.clone();
        code.push(uscc::ALPHABET[last]);
        let expected = uscc::ALPHABET[last] == uscc_check_by_definition(&first17);
        let code = String::from_utf8(code).unwrap();
        prop_assert_eq!(uscc::is_valid(&code, false), expected, "{}", code);
    }

    #[test]
    fn every_single_character_error_in_a_valid_uscc_is_caught(
        first17 in uscc_first17(), pos in 0usize..18, replacement in 0usize..31,
    ) {
        let mut code = first17.clone();
        code.push(uscc_check_by_definition(&first17));
        prop_assert!(uscc::is_valid(std::str::from_utf8(&code).unwrap(), false));
        prop_assume!(code[pos] != uscc::ALPHABET[replacement]);
        code[pos] = uscc::ALPHABET[replacement];
        prop_assert!(!uscc::is_valid(std::str::from_utf8(&code).unwrap(), false));
    }

    #[test]
    fn phone_validity_is_the_allocation_table(n in 0u64..100_000_000_000, plus86 in any::<bool>()) {
        let digits = format!("{n:011}");
        let allocated = [
            "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
            "141", "145", "146", "147", "148", "149",
            "150", "151", "152", "153", "155", "156", "157", "158", "159",
            "162", "165", "166", "167",
            "170", "171", "172", "173", "174", "175", "176", "177", "178",
            "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
            "190", "191", "192", "193", "195", "196", "197", "198", "199",
        ];
        let expected = allocated.contains(&&digits[..3]);
        let s = if plus86 { format!("+86{digits}") } else { digits };
        prop_assert_eq!(phone::is_valid(&s), expected, "{}", s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn gcj02_round_trips_within_1e_8_degrees((lon, lat) in china_point()) {
        let (g_lon, g_lat) = coords::wgs84_to_gcj02(lon, lat);
        let (w_lon, w_lat) = coords::gcj02_to_wgs84(g_lon, g_lat);
        prop_assert!((w_lon - lon).abs() < 1e-8 && (w_lat - lat).abs() < 1e-8,
            "({lon}, {lat}) -> ({w_lon}, {w_lat})");
        // And the other way: a GCJ-02 point is the image of its inverse.
        let (w_lon, w_lat) = coords::gcj02_to_wgs84(lon, lat);
        let (g_lon, g_lat) = coords::wgs84_to_gcj02(w_lon, w_lat);
        prop_assert!((g_lon - lon).abs() < 1e-8 && (g_lat - lat).abs() < 1e-8);
    }

    #[test]
    fn bd09_round_trips_within_1e_8_degrees((lon, lat) in china_point()) {
        let (b_lon, b_lat) = coords::gcj02_to_bd09(lon, lat);
        let (g_lon, g_lat) = coords::bd09_to_gcj02(b_lon, b_lat);
        prop_assert!((g_lon - lon).abs() < 1e-8 && (g_lat - lat).abs() < 1e-8,
            "({lon}, {lat}) -> ({g_lon}, {g_lat})");
    }

    #[test]
    fn points_outside_the_box_are_unchanged(lon in -180.0..180.0f64, lat in -90.0..90.0f64) {
        prop_assume!(coords::out_of_china(lon, lat));
        prop_assert_eq!(coords::wgs84_to_gcj02(lon, lat), (lon, lat));
        prop_assert_eq!(coords::gcj02_to_wgs84(lon, lat), (lon, lat));
    }
}

#[test]
fn the_sql_functions_agree_with_the_pure_transforms() -> datafusion::common::Result<()> {
    use crate::domain_fns::coords::test_support::{column, points};
    let pts: Vec<(f64, f64)> = (0..50)
        .map(|i| (121.0 + f64::from(i) * 0.02, 30.8 + f64::from(i) * 0.02))
        .collect();
    let lon = column(&pts.iter().map(|p| Some(p.0)).collect::<Vec<_>>());
    let lat = column(&pts.iter().map(|p| Some(p.1)).collect::<Vec<_>>());
    let secrets = Arc::new(crate::SecretStore::new());
    type Transform = fn(f64, f64) -> (f64, f64);
    let transforms: [(&str, Transform); 4] = [
        ("wgs84_to_gcj02", coords::wgs84_to_gcj02),
        ("gcj02_to_wgs84", coords::gcj02_to_wgs84),
        ("gcj02_to_bd09", coords::gcj02_to_bd09),
        ("bd09_to_gcj02", coords::bd09_to_gcj02),
    ];
    for (name, f) in transforms {
        let udf = crate::all(&secrets)
            .into_iter()
            .find(|u| u.name() == name)
            .expect("registered");
        let out = crate::testing::invoke(&udf, vec![lon.clone(), lat.clone()])?;
        let got = points(&out);
        for (g, p) in got.iter().zip(&pts) {
            assert_eq!(*g, Some(f(p.0, p.1)), "{name}");
        }
    }
    Ok(())
}
