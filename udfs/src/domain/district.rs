//! Shanghai's county-level divisions (GB/T 2260): the 16 current districts with their 2020
//! census population, and abolished codes that still appear on issued ID numbers.

/// One division code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct District {
    /// 6-digit GB/T 2260 code.
    pub code: &'static str,
    /// Chinese name (`黄浦区`).
    pub name_zh: &'static str,
    /// English name (`Huangpu`).
    pub name_en: &'static str,
    /// 7th national census (2020) resident population; 0 for abolished codes.
    pub population_2020: u32,
    /// Whether the code is in use today.
    pub current: bool,
    /// Approximate geometric centroid, WGS-84 `(lon, lat)`; `None` for abolished codes.
    pub centroid_wgs84: Option<(f64, f64)>,
    /// For an abolished code, the current district that now covers its area.
    pub successor: Option<&'static str>,
}

const fn current(
    code: &'static str,
    name_zh: &'static str,
    name_en: &'static str,
    population_2020: u32,
    centroid_wgs84: (f64, f64),
) -> District {
    District {
        code,
        name_zh,
        name_en,
        population_2020,
        current: true,
        centroid_wgs84: Some(centroid_wgs84),
        successor: None,
    }
}

const fn historical(
    code: &'static str,
    name_zh: &'static str,
    name_en: &'static str,
    successor: &'static str,
) -> District {
    District {
        code,
        name_zh,
        name_en,
        population_2020: 0,
        current: false,
        centroid_wgs84: None,
        successor: Some(successor),
    }
}

/// Shanghai's 16 current districts, in code order.
pub const CURRENT: &[District] = &[
    current(
        "310101",
        "黄浦区",
        "Huangpu",
        662_030,
        (121.47907, 31.21791),
    ),
    current(
        "310104",
        "徐汇区",
        "Xuhui",
        1_113_078,
        (121.43479, 31.16488),
    ),
    current(
        "310105",
        "长宁区",
        "Changning",
        693_051,
        (121.37632, 31.20923),
    ),
    current(
        "310106",
        "静安区",
        "Jing'an",
        975_707,
        (121.44605, 31.27268),
    ),
    current(
        "310107",
        "普陀区",
        "Putuo",
        1_239_800,
        (121.38739, 31.25972),
    ),
    current(
        "310109",
        "虹口区",
        "Hongkou",
        757_498,
        (121.48094, 31.27859),
    ),
    current(
        "310110",
        "杨浦区",
        "Yangpu",
        1_242_548,
        (121.52495, 31.30041),
    ),
    current(
        "310112",
        "闵行区",
        "Minhang",
        2_653_489,
        (121.41427, 31.08912),
    ),
    current(
        "310113",
        "宝山区",
        "Baoshan",
        2_235_218,
        (121.4002, 31.39388),
    ),
    current(
        "310114",
        "嘉定区",
        "Jiading",
        1_834_258,
        (121.23995, 31.36011),
    ),
    current(
        "310115",
        "浦东新区",
        "Pudong New Area",
        5_681_512,
        (121.73781, 31.08592),
    ),
    current(
        "310116",
        "金山区",
        "Jinshan",
        822_776,
        (121.25075, 30.82118),
    ),
    current(
        "310117",
        "松江区",
        "Songjiang",
        1_909_713,
        (121.2158, 31.01731),
    ),
    current(
        "310118",
        "青浦区",
        "Qingpu",
        1_271_424,
        (121.08059, 31.12658),
    ),
    current(
        "310120",
        "奉贤区",
        "Fengxian",
        1_140_872,
        (121.55829, 30.90035),
    ),
    current(
        "310151",
        "崇明区",
        "Chongming",
        637_921,
        (121.56421, 31.638),
    ),
];

/// Abolished codes, which remain valid on ID numbers issued while they were in use.
pub const HISTORICAL: &[District] = &[
    historical("310102", "南市区", "Nanshi", "310101"),
    historical("310103", "卢湾区", "Luwan", "310101"),
    historical("310108", "闸北区", "Zhabei", "310106"),
    historical("310119", "南汇区", "Nanhui", "310115"),
    historical("310221", "上海县", "Shanghai County", "310112"),
    historical("310222", "嘉定县", "Jiading County", "310114"),
    historical("310223", "宝山县", "Baoshan County", "310113"),
    historical("310224", "川沙县", "Chuansha County", "310115"),
    historical("310225", "南汇县", "Nanhui County", "310115"),
    historical("310226", "奉贤县", "Fengxian County", "310120"),
    historical("310227", "松江县", "Songjiang County", "310117"),
    historical("310228", "金山县", "Jinshan County", "310116"),
    historical("310229", "青浦县", "Qingpu County", "310118"),
    historical("310230", "崇明县", "Chongming County", "310151"),
];

/// Total 2020 census population of the current districts.
pub const POPULATION_2020: u32 = 24_870_895;

/// The division with this 6-digit code, current or abolished.
pub fn get(code: &str) -> Option<&'static District> {
    CURRENT
        .iter()
        .chain(HISTORICAL.iter())
        .find(|d| d.code == code)
}

/// The Chinese name of a division code (`310101` → `黄浦区`).
pub fn name_zh(code: &str) -> Option<&'static str> {
    get(code).map(|d| d.name_zh)
}

/// The English name of a division code (`310101` → `Huangpu`).
pub fn name_en(code: &str) -> Option<&'static str> {
    get(code).map(|d| d.name_en)
}

/// The current district covering a code's area: itself when current, else its successor.
pub fn current_for(code: &str) -> Option<&'static District> {
    let d = get(code)?;
    match d.successor {
        Some(next) => get(next),
        None => Some(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, point, str_field};

    #[test]
    fn current_table_matches_every_district_vector() {
        let vectors = cases("districts");
        assert_eq!(vectors.len(), CURRENT.len());
        for (case, d) in vectors.iter().zip(CURRENT) {
            assert_eq!(d.code, str_field(case, "code"));
            assert_eq!(d.name_zh, str_field(case, "name_zh"));
            assert_eq!(d.name_en, str_field(case, "name_en"));
            let population = case["population_2020_census"].as_u64().unwrap();
            assert_eq!(u64::from(d.population_2020), population, "{}", d.code);
            let weight = f64::from(d.population_2020) / f64::from(POPULATION_2020);
            assert!((weight - case["weight"].as_f64().unwrap()).abs() < 1e-6);
            assert_eq!(d.centroid_wgs84, Some(point(case, "centroid_wgs84")));
            assert!(d.current && d.successor.is_none());
        }
    }

    #[test]
    fn census_total_is_the_sum_of_districts() {
        let sum: u32 = CURRENT.iter().map(|d| d.population_2020).sum();
        assert_eq!(sum, POPULATION_2020);
    }

    #[test]
    fn id_vector_districts_resolve() {
        for case in cases("id_card").iter().filter(|c| c["valid"] == true) {
            let (Some(region), Some(district)) =
                (case["region"].as_str(), case["district"].as_str())
            else {
                continue;
            };
            let name = name_zh(region).unwrap_or_else(|| panic!("{region} unknown"));
            assert!(district.starts_with(name), "{region}: {name} vs {district}");
        }
    }

    #[test]
    fn historical_codes_resolve_to_their_successor() {
        assert_eq!(name_zh("310103"), Some("卢湾区"));
        assert_eq!(name_en("310108"), Some("Zhabei"));
        assert_eq!(name_zh("310119"), Some("南汇区"));
        assert_eq!(name_en("310230"), Some("Chongming County"));
        assert_eq!(current_for("310108").map(|d| d.code), Some("310106"));
        assert_eq!(current_for("310115").map(|d| d.code), Some("310115"));
        for d in HISTORICAL {
            assert!(!d.current && d.population_2020 == 0);
            assert!(
                get(d.successor.unwrap()).is_some_and(|s| s.current),
                "{}",
                d.code
            );
        }
    }

    #[test]
    fn unknown_codes_have_no_name() {
        assert_eq!(name_zh("310000"), None);
        assert_eq!(name_en("110101"), None);
        assert_eq!(get(""), None);
    }

    #[test]
    fn codes_are_unique_six_digit_shanghai_codes() {
        let all: Vec<_> = CURRENT.iter().chain(HISTORICAL).collect();
        for (i, d) in all.iter().enumerate() {
            assert!(d.code.len() == 6 && d.code.starts_with("31"), "{}", d.code);
            assert!(all[i + 1..].iter().all(|e| e.code != d.code), "{}", d.code);
        }
    }
}
