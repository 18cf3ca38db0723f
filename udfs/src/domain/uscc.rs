//! Unified social credit codes (GB 32100-2015).
//!
//! 18 characters from [`ALPHABET`]: registration authority, entity type, 6-digit division
//! code, 9-character organisation code (GB 11714) and a MOD 31 check character. Authority `9`
//! (market regulation) issues type `1` enterprises, `2` individual businesses (个体工商户,
//! linked to a natural person, so personal data) and `3` farmers' cooperatives.

/// The code's alphabet; a character's value is its index (no I, O, S, V, Z).
pub const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of the first 17 characters.
pub const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Weights of the 8 body characters of a GB 11714 organisation code.
pub const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// One registration authority / entity type pair of GB 32100-2015, table 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityKind {
    /// Registration authority character (position 1).
    pub authority: u8,
    /// Entity type character (position 2).
    pub kind: u8,
    /// Registration authority in Chinese.
    pub authority_zh: &'static str,
    /// Entity type, snake-case English.
    pub name: &'static str,
    /// Entity type in Chinese.
    pub name_zh: &'static str,
}

const fn kind(
    authority: u8,
    kind: u8,
    authority_zh: &'static str,
    name: &'static str,
    name_zh: &'static str,
) -> EntityKind {
    EntityKind {
        authority,
        kind,
        authority_zh,
        name,
        name_zh,
    }
}

/// The known authority / entity type pairs.
pub const KINDS: &[EntityKind] = &[
    kind(b'1', b'1', "机构编制", "government_agency", "机关"),
    kind(b'1', b'2', "机构编制", "public_institution", "事业单位"),
    kind(
        b'1',
        b'3',
        "机构编制",
        "mass_organisation",
        "中央编办直接管理机构编制的群众团体",
    ),
    kind(b'1', b'9', "机构编制", "other", "其他"),
    kind(
        b'2',
        b'1',
        "外交",
        "foreign_news_agency",
        "外国常驻新闻机构",
    ),
    kind(b'2', b'9', "外交", "other", "其他"),
    kind(b'3', b'1', "司法行政", "law_firm", "律师执业机构"),
    kind(b'3', b'2', "司法行政", "notary_office", "公证处"),
    kind(
        b'3',
        b'3',
        "司法行政",
        "grassroots_legal_service",
        "基层法律服务所",
    ),
    kind(b'3', b'4', "司法行政", "judicial_expertise", "司法鉴定机构"),
    kind(
        b'3',
        b'5',
        "司法行政",
        "arbitration_commission",
        "仲裁委员会",
    ),
    kind(b'3', b'9', "司法行政", "other", "其他"),
    kind(
        b'4',
        b'1',
        "文化",
        "foreign_cultural_centre",
        "外国在华文化中心",
    ),
    kind(b'4', b'9', "文化", "other", "其他"),
    kind(b'5', b'1', "民政", "social_group", "社会团体"),
    kind(
        b'5',
        b'2',
        "民政",
        "private_non_enterprise",
        "民办非企业单位",
    ),
    kind(b'5', b'3', "民政", "foundation", "基金会"),
    kind(b'5', b'9', "民政", "other", "其他"),
    kind(
        b'6',
        b'1',
        "旅游",
        "foreign_tourism_office",
        "外国旅游部门常驻代表机构",
    ),
    kind(
        b'6',
        b'2',
        "旅游",
        "hk_macao_taiwan_tourism_office",
        "港澳台地区旅游部门常驻内地（大陆）代表机构",
    ),
    kind(b'6', b'9', "旅游", "other", "其他"),
    kind(b'7', b'1', "宗教", "religious_venue", "宗教活动场所"),
    kind(b'7', b'2', "宗教", "religious_college", "宗教院校"),
    kind(b'7', b'9', "宗教", "other", "其他"),
    kind(b'8', b'1', "工会", "trade_union", "基层工会"),
    kind(b'8', b'9', "工会", "other", "其他"),
    kind(b'9', b'1', "工商", "enterprise", "企业"),
    kind(b'9', b'2', "工商", "individual_business", "个体工商户"),
    kind(b'9', b'3', "工商", "farmers_cooperative", "农民专业合作社"),
    kind(
        b'A',
        b'1',
        "中央军委改革和编制办公室",
        "military_public_institution",
        "军队事业单位",
    ),
    kind(b'A', b'9', "中央军委改革和编制办公室", "other", "其他"),
    kind(
        b'N',
        b'1',
        "农业",
        "group_collective_economic_organisation",
        "组级集体经济组织",
    ),
    kind(
        b'N',
        b'2',
        "农业",
        "village_collective_economic_organisation",
        "村级集体经济组织",
    ),
    kind(
        b'N',
        b'3',
        "农业",
        "township_collective_economic_organisation",
        "乡镇级集体经济组织",
    ),
    kind(b'N', b'9', "农业", "other", "其他"),
    kind(b'Y', b'1', "其他", "other", "其他"),
];

/// Why a code is not a valid USCC; [`Invalid::reason`] gives the names used by the shared
/// test vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not 18 characters.
    Length,
    /// A character outside [`ALPHABET`] (lower case included).
    Charset,
    /// An unknown registration authority / entity type pair.
    Authority,
    /// A non-digit in the division code (positions 3-8).
    Region,
    /// The MOD 31 check character does not match.
    CheckChar,
    /// (strict only) positions 9-17 are not a GB 11714-valid organisation code.
    OrgCode,
}

impl Invalid {
    /// A stable snake-case name for the failure.
    pub const fn reason(self) -> &'static str {
        match self {
            Invalid::Length => "bad_length",
            Invalid::Charset => "bad_charset",
            Invalid::Authority => "bad_authority",
            Invalid::Region => "bad_region",
            Invalid::CheckChar => "bad_check_char",
            Invalid::OrgCode => "bad_org_code",
        }
    }
}

/// Each byte's value in [`ALPHABET`], or `NOT_IN_ALPHABET`.
const VALUES: [u8; 256] = {
    let mut values = [NOT_IN_ALPHABET; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        values[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    values
};
const NOT_IN_ALPHABET: u8 = u8::MAX;

/// The value of a code character, `None` outside [`ALPHABET`].
pub fn value(c: u8) -> Option<u32> {
    match VALUES[usize::from(c)] {
        NOT_IN_ALPHABET => None,
        v => Some(u32::from(v)),
    }
}

/// The check character for the first 17 characters, or `None` unless `first17` is exactly 17
/// characters of [`ALPHABET`].
pub fn check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (&c, &w) in first17.iter().zip(WEIGHTS.iter()) {
        sum += value(c)? * w;
    }
    // The outer `% 31` maps a sum divisible by 31 to '0' instead of an out-of-range 31.
    Some(ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// The GB 11714 check character (`0-9` or `X`) of an organisation code's first 8 characters
/// (digits and upper-case letters, A = 10 … Z = 35), or `None` for other characters.
pub fn org_code_check_char(first8: &[u8]) -> Option<u8> {
    if first8.len() != 8 {
        return None;
    }
    let mut sum = 0u32;
    for (&c, &w) in first8.iter().zip(ORG_WEIGHTS.iter()) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        c => b'0' + c as u8,
    })
}

fn entity_kind_of(authority: u8, kind: u8) -> Option<&'static EntityKind> {
    KINDS
        .iter()
        .find(|k| k.authority == authority && k.kind == kind)
}

/// Checks a code. Checks run in the order length, characters, authority / type pair,
/// division code, check character and (with `strict`) the embedded organisation code; the
/// first failure is returned.
pub fn validate(s: &str, strict: bool) -> Result<(), Invalid> {
    let b = s.as_bytes();
    if b.len() != 18 {
        return Err(Invalid::Length);
    }
    if !b.iter().all(|&c| value(c).is_some()) {
        return Err(Invalid::Charset);
    }
    if entity_kind_of(b[0], b[1]).is_none() {
        return Err(Invalid::Authority);
    }
    if !b[2..8].iter().all(u8::is_ascii_digit) {
        return Err(Invalid::Region);
    }
    if check_char(&b[..17]) != Some(b[17]) {
        return Err(Invalid::CheckChar);
    }
    if strict && org_code_check_char(&b[8..16]) != Some(b[16]) {
        return Err(Invalid::OrgCode);
    }
    Ok(())
}

/// Whether `s` is a valid code; `strict` also requires a GB 11714-valid organisation code in
/// positions 9-17. See [`validate`].
pub fn is_valid(s: &str, strict: bool) -> bool {
    validate(s, strict).is_ok()
}

/// The authority / entity type pair of an 18-character code of [`ALPHABET`].
///
/// Structural only (the check character is not verified): combine with [`is_valid`] where
/// that matters.
pub fn entity_kind(s: &str) -> Option<&'static EntityKind> {
    let b = s.as_bytes();
    if b.len() != 18 || !b.iter().all(|&c| value(c).is_some()) {
        return None;
    }
    entity_kind_of(b[0], b[1])
}

/// The entity type, snake-case English (`enterprise`, `individual_business`,
/// `farmers_cooperative`, `public_institution`, …). Structural like [`entity_kind`].
pub fn entity_type(s: &str) -> Option<&'static str> {
    entity_kind(s).map(|k| k.name)
}

/// The 6-digit division code (positions 3-8) of an 18-character code of [`ALPHABET`].
/// Structural like [`entity_kind`].
pub fn region(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let ok = b.len() == 18
        && b.iter().all(|&c| value(c).is_some())
        && b[2..8].iter().all(u8::is_ascii_digit);
    ok.then(|| &s[2..8])
}

/// The 9-character organisation code (positions 9-17). Structural like [`entity_kind`].
pub fn org_code(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (b.len() == 18 && b.iter().all(|&c| value(c).is_some())).then(|| &s[8..17])
}

/// Whether the code names a natural person's business (authority 9, type 2), which is
/// personal data.
pub fn is_personal(s: &str) -> bool {
    entity_kind(s).is_some_and(|k| k.authority == b'9' && k.kind == b'2')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};

    #[test]
    fn every_uscc_vector_validates_with_its_reason() {
        for case in cases("uscc") {
            let input = str_field(case, "input");
            let valid = case["valid"].as_bool().unwrap();
            let got = validate(input, false);
            assert_eq!(got.is_ok(), valid, "{input}: {got:?}");
            assert_eq!(is_valid(input, false), valid, "{input}");
            let reason = got.err().map_or("ok", Invalid::reason);
            assert_eq!(reason, str_field(case, "reason"), "{input}");
            let strict = case["valid_strict_org"].as_bool().unwrap_or(false);
            assert_eq!(is_valid(input, true), strict, "{input} (strict)");
        }
    }

    #[test]
    fn valid_uscc_vectors_give_parts_and_check() {
        for case in cases("uscc").iter().filter(|c| c["valid"] == true) {
            let input = str_field(case, "input");
            let b = input.as_bytes();
            assert_eq!(check_char(&b[..17]), Some(b[17]), "{input}");
            assert_eq!(org_code_check_char(&b[8..16]), Some(b[16]), "{input}");
            if let Some(expected) = case["region"].as_str() {
                assert_eq!(region(input), Some(expected), "{input}");
            }
            if let Some(expected) = case["org_code"].as_str() {
                assert_eq!(org_code(input), Some(expected), "{input}");
            }
            if let Some(expected) = case["check"].as_str() {
                assert_eq!(&input[17..], expected, "{input}");
            }
            let kind = entity_kind(input).unwrap();
            if let Some(expected) = case["authority"].as_str() {
                // "9 工商": the authority character, then its Chinese name.
                let want = format!("{} {}", char::from(kind.authority), kind.authority_zh);
                assert_eq!(want, expected, "{input}");
            }
            if let Some(expected) = case["type"].as_str() {
                assert_eq!(
                    format!("{} {}", char::from(kind.kind), kind.name_zh),
                    expected
                );
            }
        }
    }

    #[test]
    fn market_regulation_types_have_stable_names() {
        assert_eq!(entity_type("91310000MA1FL2B37C"), Some("enterprise"));
        assert_eq!(
            entity_type("92310106MA1JT8QX1Q"),
            Some("individual_business")
        );
        assert_eq!(
            entity_type("93310151MA1KW3N652"),
            Some("farmers_cooperative")
        );
        assert_eq!(
            entity_type("12310110425023718W"),
            Some("public_institution")
        );
        assert_eq!(entity_type("B1310000MA1FL2B37A"), None);
        assert!(is_personal("92310106MA1JT8QX1Q"));
        assert!(!is_personal("91310000MA1FL2B37C"));
    }

    #[test]
    fn values_are_alphabet_positions() {
        for c in 0..=u8::MAX {
            let position = ALPHABET.iter().position(|&a| a == c).map(|i| i as u32);
            assert_eq!(value(c), position, "{c}");
        }
    }

    #[test]
    fn check_sum_divisible_by_31_gives_zero() {
        assert_eq!(check_char(b"91310101MA1000041"), Some(b'0'));
    }

    #[test]
    fn lower_case_and_bad_lengths_are_refused() {
        assert_eq!(validate("91310000ma1fl2b37c", false), Err(Invalid::Charset));
        assert_eq!(validate("", false), Err(Invalid::Length));
        assert_eq!(validate("91310000MA1FL2B37CC", false), Err(Invalid::Length));
        assert_eq!(
            validate("94310000MA1FL2B37C", false),
            Err(Invalid::Authority)
        );
        assert_eq!(check_char(b"91310000MA1FL2B3"), None);
        assert_eq!(check_char(b"91310000MI1FL2B37"), None);
        assert_eq!(region("91310000MA1FL2B37"), None);
        assert_eq!(org_code_check_char(b"MA1FL2B"), None);
    }

    #[test]
    fn strict_mode_refuses_a_bad_org_code_with_a_good_check_char() {
        // Org code body MA1FL2B3 has check 7; put 8 there and recompute the USCC check.
        let mut code = *b"91310000MA1FL2B38?";
        code[17] = check_char(&code[..17]).unwrap();
        let code = std::str::from_utf8(&code).unwrap();
        assert!(is_valid(code, false));
        assert_eq!(validate(code, true), Err(Invalid::OrgCode));
    }
}
