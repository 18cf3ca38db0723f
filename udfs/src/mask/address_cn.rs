//! `mask_address_cn(s, level)`: a Chinese address cut after its district or its street / town.

use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, Signature, Volatility,
};

use crate::function::Function;
use crate::kernel::{self, args, string};

/// What stands for the hidden rest, whatever its length: the length of the house number,
/// building and room is not disclosed.
pub(crate) const HIDDEN: &str = "****";

/// The longest name of one address unit, in characters (双江拉祜族佤族布朗族傣族自治县 has 15).
const MAX_UNIT_CHARS: usize = 16;

/// How much of an address is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Up to the county-level division: 上海市黄浦区.
    District,
    /// Also the subdistrict, town or road after it: 上海市黄浦区南京东路.
    Street,
}

impl Level {
    fn parse(name: &str, level: &str) -> Result<Self> {
        match level {
            "district" => Ok(Level::District),
            "street" => Ok(Level::Street),
            other => {
                exec_err!("{name}: unknown level {other:?}, expected 'district' or 'street'")
            }
        }
    }
}

/// The rank of an address unit, from its suffix. Administrative units descend strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// 省, 自治区, 特别行政区.
    Province,
    /// 市 (a municipality or a prefecture-level city), 自治州, 地区, 盟.
    City,
    /// 区, 县, 旗, or a 市 below a city (a county-level city).
    County,
    /// 街道, 镇, 乡 (township level) or a road: 路, 街, 大道, 巷.
    Street,
}

/// `char::is_numeric`, without its table search for the CJK ideographs that make up most
/// of an address (none of which is numeric).
fn is_numeric(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        !IDEOGRAPHS.contains(&u32::from(c)) && c.is_numeric()
    }
}

/// The characters whose UTF-8 form starts with one of the bytes E4–E9 (and has three
/// bytes): CJK Extension A from U+4000, the Yijing hexagrams and the CJK Unified
/// Ideographs. Every unit suffix is one of them; none of them is numeric.
const IDEOGRAPHS: std::ops::RangeInclusive<u32> = 0x4000..=0x9fff;

/// The characters that may end a unit; [`rank_of`] decides whether they do.
const SUFFIXES: [char; 13] = [
    '省', '区', '县', '旗', '市', '盟', '州', '街', '道', '镇', '乡', '路', '巷',
];

/// The last two bytes of each of the [`SUFFIXES`], as bits: bit `b2 & 63` of word
/// `b1 & 63`. An ideograph's last two bytes are its low 12 bits; with the first byte left
/// out, the test is a load and a bit test, and its rare false positives (an ideograph 4096
/// code points from a suffix) are told apart by [`rank_of`].
static SUFFIX_TAILS: [u64; 64] = {
    let mut bits = [0u64; 64];
    let mut i = 0;
    while i < SUFFIXES.len() {
        let code = SUFFIXES[i] as usize;
        bits[(code >> 6) & 63] |= 1 << (code & 63);
        i += 1;
    }
    bits
};

/// Whether the ideograph whose last two bytes are `b1`, `b2` may be one of the
/// [`SUFFIXES`].
#[inline(always)]
fn may_be_suffix(b1: u8, b2: u8) -> bool {
    SUFFIX_TAILS[usize::from(b1 & 0x3f)] >> (b2 & 0x3f) & 1 == 1
}

/// The rank of the unit `unit` (of two characters or more) that ends with the suffix `c`,
/// followed by `rest`; `None` when `c` does not end a unit there. Both are UTF-8 bytes.
fn rank_of(c: char, unit: &[u8], rest: &[u8]) -> Option<Rank> {
    let ends = |tail: &str| unit.ends_with(tail.as_bytes());
    let next_is = |next: &str| rest.starts_with(next.as_bytes());
    let rank = match c {
        '省' => Rank::Province,
        '区' if ends("自治区") || ends("特别行政区") => Rank::Province,
        '区' if ends("地区") => Rank::City,
        '区' | '县' | '旗' => Rank::County,
        '市' | '盟' => Rank::City,
        '州' if ends("自治州") => Rank::City,
        // 街 of 街道 ends its unit at 道.
        '街' if !next_is("道") => Rank::Street,
        '道' if ends("街道") || ends("大道") => Rank::Street,
        // A town's name inside a road's (新镇路) is not a town.
        '镇' | '乡' if !(next_is("路") || next_is("街") || next_is("道")) => Rank::Street,
        '路' | '巷' => Rank::Street,
        _ => return None,
    };
    Some(rank)
}

/// The first unit of `s`: its length in bytes and its rank. A unit has at least two
/// characters (the name and the suffix), at most [`MAX_UNIT_CHARS`], and no digit.
///
/// The scan reads bytes: an address is mostly ideographs, recognised by their first byte
/// and tested by [`may_be_suffix`]; other characters go through [`is_numeric`].
fn next_unit(s: &str) -> Option<(usize, Rank)> {
    let bytes = s.as_bytes();
    // The first character is the name's, whatever it is, unless it is numeric.
    let mut i = match bytes {
        [0xe4..=0xe9, _, _, ..] => 3,
        _ => {
            let c = s.chars().next()?;
            if is_numeric(c) {
                return None;
            }
            c.len_utf8()
        }
    };
    for _ in 1..MAX_UNIT_CHARS {
        match *bytes.get(i..)? {
            [lead @ 0xe4..=0xe9, b1, b2, ..] => {
                i += 3;
                if may_be_suffix(b1, b2) {
                    let code = u32::from(lead & 0x0f) << 12
                        | u32::from(b1 & 0x3f) << 6
                        | u32::from(b2 & 0x3f);
                    let c = char::from_u32(code)?;
                    if let Some(rank) = rank_of(c, &bytes[..i], &bytes[i..]) {
                        return Some((i, rank));
                    }
                }
            }
            [lead, ..] if lead < 0x80 => {
                if lead.is_ascii_digit() {
                    return None;
                }
                i += 1;
            }
            _ => {
                let c = s[i..].chars().next()?;
                if is_numeric(c) {
                    return None;
                }
                i += c.len_utf8();
            }
        }
    }
    None
}

/// The number of leading bytes of `s` kept at `level`; 0 when no division is recognised.
///
/// The district level keeps the administrative units (province, city, county) as long as
/// they descend; a second county-level unit (小区, 园区) ends them. The street level also
/// keeps one township or road unit right after a recognised division (and the 街道 of a
/// subdistrict named after its road).
pub(crate) fn kept_len(s: &str, level: Level) -> usize {
    kept_len_by(s, level, next_unit)
}

/// [`kept_len`] over any unit scanner (the tests run it over the reference scanner too).
fn kept_len_by(s: &str, level: Level, next_unit: impl Fn(&str) -> Option<(usize, Rank)>) -> usize {
    let mut district_end = 0;
    let mut last: Option<Rank> = None;
    // The unit that ended the divisions, if any: the street level's candidate.
    let mut after = None;
    while let Some((len, rank)) = next_unit(&s[district_end..]) {
        let rank = match (rank, last) {
            (Rank::City, Some(Rank::City)) => Rank::County,
            _ => rank,
        };
        if rank == Rank::Street || last.is_some_and(|l| rank <= l) {
            after = Some((len, rank));
            break;
        }
        district_end += len;
        last = Some(rank);
    }
    if level == Level::District || district_end == 0 {
        return district_end;
    }
    match after {
        Some((len, Rank::Street)) => {
            let end = district_end + len;
            if s[end..].starts_with("街道") && !s[..end].ends_with('街') {
                end + "街道".len()
            } else {
                end
            }
        }
        _ => district_end,
    }
}

/// `s` masked as an address, in two parts: the part kept at `level`, then `****`.
pub(crate) fn address_parts(s: &str, level: Level) -> [&str; 2] {
    [&s[..kept_len(s, level)], HIDDEN]
}

/// `s` masked as an address: the part kept at `level`, then `****`.
#[cfg(test)]
pub(crate) fn masked(s: &str, level: Level) -> String {
    address_parts(s, level).concat()
}

/// `mask_address_cn(s, level)`.
pub(crate) struct MaskAddressCn;

impl Function for MaskAddressCn {
    const NAME: &'static str = "mask_address_cn";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let level = match kernel::str_param(Self::NAME, "level", &args.args[1])? {
            Some(level) => Level::parse(Self::NAME, level)?,
            None => return kernel::all_null(args.return_field.data_type()),
        };
        kernel::map_string_parts(Self::NAME, &args.args[0], |s| address_parts(s, level))
    }

    fn signature() -> Signature {
        Signature::one_of(vec![args(vec![string(), string()])], Volatility::Immutable)
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_STRING,
            "Masks a Chinese address, keeping it up to the county-level division (level \
             'district': province, city and district, 上海市黄浦区) or one unit further (level \
             'street': the subdistrict, town or road, 上海市黄浦区南京东路), then `****` whatever \
             the length of the rest. An address whose division is not recognised becomes \
             `****`. The result has the input's string type; NULL in gives NULL out.",
            "mask_address_cn(str, level)",
        )
        .with_sql_example(
            r#"```sql
> SELECT mask_address_cn('上海市黄浦区南京东路100号5楼', 'district');
+--------------------------------------------------------------------+
| mask_address_cn(Utf8("上海市黄浦区南京东路100号5楼"),Utf8("district")) |
+--------------------------------------------------------------------+
| 上海市黄浦区****                                                    |
+--------------------------------------------------------------------+
> SELECT mask_address_cn('上海市浦东新区张江镇祖冲之路100号', 'street');
-- 上海市浦东新区张江镇****
```"#,
        )
        .with_standard_argument("str", Some("String"))
        .with_argument("level", "'district' or 'street', a constant.")
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_maps_strings_with, assert_null_option};
    use crate::testing::{assert_strings, invoke, lit};

    #[test]
    fn shanghai_addresses_at_both_levels() {
        let cases = [
            (
                "上海市黄浦区南京东路100号5楼",
                "上海市黄浦区****",
                "上海市黄浦区南京东路****",
            ),
            (
                "上海市浦东新区张江镇祖冲之路100号",
                "上海市浦东新区****",
                "上海市浦东新区张江镇****",
            ),
            (
                "上海市徐汇区漕河泾街道宜山路700号",
                "上海市徐汇区****",
                "上海市徐汇区漕河泾街道****",
            ),
            (
                "上海市黄浦区南京东路街道南京东路100号",
                "上海市黄浦区****",
                "上海市黄浦区南京东路街道****",
            ),
            (
                "上海市黄浦区人民大道200号",
                "上海市黄浦区****",
                "上海市黄浦区人民大道****",
            ),
            (
                "上海市长宁区镇宁路465弄3号",
                "上海市长宁区****",
                "上海市长宁区镇宁路****",
            ),
            (
                "上海市崇明县城桥镇八一路1号",
                "上海市崇明县****",
                "上海市崇明县城桥镇****",
            ),
            (
                "浦东新区世纪大道100号",
                "浦东新区****",
                "浦东新区世纪大道****",
            ),
            (
                "上海浦东新区世纪大道100号",
                "上海浦东新区****",
                "上海浦东新区世纪大道****",
            ),
        ];
        for (input, district, street) in cases {
            assert_eq!(masked(input, Level::District), district, "{input}");
            assert_eq!(masked(input, Level::Street), street, "{input}");
        }
    }

    #[test]
    fn provinces_prefectures_and_county_level_cities() {
        assert_eq!(
            masked("江苏省苏州市昆山市玉山镇前进路1号", Level::District),
            "江苏省苏州市昆山市****"
        );
        assert_eq!(
            masked("江苏省苏州市昆山市玉山镇前进路1号", Level::Street),
            "江苏省苏州市昆山市玉山镇****"
        );
        assert_eq!(
            masked(
                "新疆维吾尔自治区阿克苏地区库车县新城街道1号",
                Level::District
            ),
            "新疆维吾尔自治区阿克苏地区库车县****"
        );
        assert_eq!(
            masked("云南省西双版纳傣族自治州景洪市勐龙镇1号", Level::District),
            "云南省西双版纳傣族自治州景洪市****"
        );
    }

    #[test]
    fn residential_compounds_and_house_numbers_are_never_kept() {
        // A second 区 below the district is a compound or park, not a division.
        assert_eq!(
            masked("上海市黄浦区瑞金小区3号楼", Level::District),
            "上海市黄浦区****"
        );
        assert_eq!(
            masked("上海市黄浦区瑞金小区3号楼", Level::Street),
            "上海市黄浦区****"
        );
        // Without a district, the road after the city is as far as the street level goes.
        assert_eq!(
            masked("上海市南京东路100号", Level::Street),
            "上海市南京东路****"
        );
        assert_eq!(masked("上海市南京东路100号", Level::District), "上海市****");
        assert_eq!(masked("南京东路100号", Level::Street), "****");
        assert_eq!(masked("100号", Level::District), "****");
        assert_eq!(masked("", Level::District), "****");
        assert_eq!(masked("上海市黄浦区", Level::Street), "上海市黄浦区****");
        // A unit longer than any division name, or with digits, is not one.
        assert_eq!(
            masked("一二三四五六七八九十一二三四五六七区1号", Level::District),
            "****"
        );
        assert_eq!(masked("第1区", Level::District), "****");
    }

    /// The character-by-character scan this module had before the byte scan, kept as the
    /// definition the byte scan must agree with.
    mod reference {
        use super::super::{Level, MAX_UNIT_CHARS, Rank};

        fn next_unit(s: &str) -> Option<(usize, Rank)> {
            for (n, (i, c)) in s.char_indices().enumerate() {
                if n >= MAX_UNIT_CHARS || c.is_numeric() {
                    return None;
                }
                let end = i + 3;
                let unit = || &s[..end];
                let rest = || &s[end..];
                let rank = match c {
                    '省' => Rank::Province,
                    '区' if unit().ends_with("自治区") || unit().ends_with("特别行政区") => {
                        Rank::Province
                    }
                    '区' if unit().ends_with("地区") => Rank::City,
                    '区' | '县' | '旗' => Rank::County,
                    '市' | '盟' => Rank::City,
                    '州' if unit().ends_with("自治州") => Rank::City,
                    '街' if !rest().starts_with('道') => Rank::Street,
                    '道' if unit().ends_with("街道") || unit().ends_with("大道") => {
                        Rank::Street
                    }
                    '镇' | '乡' if !rest().starts_with(['路', '街', '道']) => Rank::Street,
                    '路' | '巷' => Rank::Street,
                    _ => continue,
                };
                if n >= 1 {
                    return Some((end, rank));
                }
            }
            None
        }

        pub(super) fn kept_len(s: &str, level: Level) -> usize {
            super::super::kept_len_by(s, level, next_unit)
        }
    }

    /// The ideographs whose last two UTF-8 bytes are those of a suffix (and which
    /// [`may_be_suffix`] lets through), the suffixes included.
    fn suffix_aliases() -> Vec<char> {
        SUFFIXES
            .iter()
            .flat_map(|&c| (0..6).map(move |k| 0x4000 + k * 0x1000 + (u32::from(c) & 0xfff)))
            .filter_map(char::from_u32)
            .collect()
    }

    #[test]
    fn suffix_aliases_are_exactly_what_the_tail_test_lets_through() {
        let aliases = suffix_aliases();
        for c in IDEOGRAPHS.filter_map(char::from_u32) {
            let mut b = [0; 3];
            let [_, b1, b2] = *c.encode_utf8(&mut b).as_bytes() else {
                panic!("{c:?} is 3 bytes long");
            };
            assert_eq!(may_be_suffix(b1, b2), aliases.contains(&c), "{c:?}");
        }
    }

    /// Address-like text: suffixes and the words around them, characters the suffix test
    /// must tell from suffixes, digits of every script, other CJK, Latin, 2- and 4-byte
    /// characters.
    fn address_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            4 => proptest::sample::select(SUFFIXES.to_vec()),
            1 => proptest::sample::select(suffix_aliases()),
            3 => proptest::sample::select(
                "自治特别行政地大小新上海黄浦东南京张江漕河泾城桥号楼室"
                    .chars()
                    .collect::<Vec<_>>()
            ),
            2 => proptest::char::range('一', '鿿'),
            1 => proptest::sample::select(
                "0159〇９Ⅻ²٣a -éß😀\u{3400}\u{4dff}\u{a000}".chars().collect::<Vec<_>>()
            ),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|cs| cs.into_iter().collect())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]

        #[test]
        fn byte_scan_keeps_what_the_character_scan_kept(s in address_like()) {
            for level in [Level::District, Level::Street] {
                proptest::prop_assert_eq!(
                    kept_len(&s, level),
                    reference::kept_len(&s, level),
                    "{} at {:?}", s, level
                );
            }
        }
    }

    #[test]
    fn byte_scan_agrees_on_every_suffix_after_every_kind_of_character() {
        // Every suffix and every character that the suffix test lets through, after a name
        // of one to 17 characters of each kind, then each kind of continuation.
        let names = ["黄", "a", "é", "😀", "〇", "1", "Ⅻ", "\u{9fff}", "\u{4e00}"];
        let tails = ["", "道", "路", "1号", "区", "市", "街道"];
        for suffix in suffix_aliases() {
            for name in names {
                for len in 1..=17 {
                    for tail in tails {
                        let s = format!("{}{suffix}{tail}", name.repeat(len));
                        for level in [Level::District, Level::Street] {
                            assert_eq!(kept_len(&s, level), reference::kept_len(&s, level), "{s}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn no_ideograph_is_numeric_and_every_suffix_is_one() {
        // The byte scan takes every character of IDEOGRAPHS for a letter.
        for c in IDEOGRAPHS.filter_map(char::from_u32) {
            assert!(!c.is_numeric(), "{c:?}");
            assert_eq!(c.len_utf8(), 3, "{c:?}");
        }
        for c in SUFFIXES {
            assert!(IDEOGRAPHS.contains(&u32::from(c)), "{c:?}");
        }
    }

    #[test]
    fn numeric_test_agrees_with_the_standard_library() {
        for c in ('\0'..='\u{10ffff}')
            .step_by(7)
            .chain("0９〇Ⅻ²一二八".chars())
        {
            assert_eq!(is_numeric(c), c.is_numeric(), "{c:?}");
        }
    }

    #[test]
    fn masking_twice_changes_nothing() {
        for s in ["上海市黄浦区南京东路100号", "南京东路1号", "上海市黄浦区"]
        {
            for level in [Level::District, Level::Street] {
                let once = masked(s, level);
                assert_eq!(masked(&once, level), once, "{s}");
            }
        }
    }

    #[test]
    fn every_string_type_scalar_and_null() -> Result<()> {
        assert_maps_strings_with(
            &MaskAddressCn.udf(),
            &[Some("上海市黄浦区南京东路100号"), None, Some("")],
            &[lit("street".into())],
            &[Some("上海市黄浦区南京东路****"), None, Some("****")],
        );
        let out = invoke(
            &MaskAddressCn.udf(),
            vec![
                lit("上海市黄浦区南京东路100号".into()),
                lit("district".into()),
            ],
        )?;
        assert_strings(&out, &[Some("上海市黄浦区****")]);
        assert_null_option(&MaskAddressCn.udf(), "上海市黄浦区");
        Ok(())
    }
}
