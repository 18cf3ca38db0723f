//! The resident ID number functions: `id_card_valid`, `id_card_birth`, `id_card_sex`,
//! `id_card_region`, `id_card_age` and `id_card_upgrade`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, AsArray, Date32Builder, Int32Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, Signature, Volatility,
};

use crate::domain::{civil_from_days, days_from_civil, id_card};
use crate::function::{Function, StringFn, Validator};
use crate::kernel::{self, args, date, string};

/// China Standard Time, in which birth dates are recorded (no daylight saving).
const CST_OFFSET_SECS: i64 = 8 * 3600;

/// Today's date in China, in days since 1970-01-01.
fn today_in_china() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let days = secs.saturating_add(CST_OFFSET_SECS).div_euclid(86_400);
    i32::try_from(days).unwrap_or(i32::MAX)
}

/// Runs `f` on a number written as 18 characters if it is well formed: an 18-character
/// number that passes every check but "not born after today", or an old 15-digit one
/// upgraded (on the stack, no allocation). `None` otherwise.
pub(crate) fn with_well_formed<T>(s: &str, f: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    match s.len() {
        18 => id_card::is_valid(s, i32::MAX).then(|| f(s))?,
        15 => {
            let full = id_card::upgrade15(s)?;
            let full = std::str::from_utf8(&full).ok()?;
            id_card::is_valid(full, i32::MAX).then(|| f(full))?
        }
        _ => None,
    }
}

/// Completed years from the birth date in `s` to day `at` (since 1970-01-01); `None` for a
/// number that is not well formed or a date before the birth. Someone born on 29 February
/// turns a year older on 1 March in common years.
pub(crate) fn age_on(s: &str, at: i32) -> Option<i32> {
    let (by, bm, bd) = with_well_formed(s, id_card::birth)?;
    if at < days_from_civil(by, bm, bd) {
        return None;
    }
    let (ay, am, ad) = civil_from_days(at);
    Some(ay - by - i32::from((am, ad) < (bm, bd)))
}

/// `id_card_valid(s)`: whether a string is a valid resident ID number today. Stable, not
/// Immutable: a number born tomorrow becomes valid then.
pub(crate) struct IdCardValid;

impl Validator for IdCardValid {
    const NAME: &'static str = "id_card_valid";
    const ABOUT: &'static str = "Whether a string is a valid 18-character resident ID number (GB \
        11643): 17 digits and a check character `0-9` or upper-case `X` matching MOD 11-2, a GB/T \
        2260 province prefix, and a real birth date from 1850 up to today (China Standard Time). \
        Old 15-digit numbers are not valid. NULL in gives NULL out.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT id_card_valid('310101198503121236'), id_card_valid('310101198503121230');
+-------------------------------------------+-------------------------------------------+
| id_card_valid(Utf8("310101198503121236")) | id_card_valid(Utf8("310101198503121230")) |
+-------------------------------------------+-------------------------------------------+
| true                                      | false                                     |
+-------------------------------------------+-------------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["id_card_birth", "id_card_sex"];

    fn test(_args: &[ColumnarValue]) -> Result<Option<impl Fn(&str) -> bool>> {
        let today = today_in_china();
        Ok(Some(move |s: &str| id_card::is_valid(s, today)))
    }

    fn signature() -> Signature {
        Signature::coercible(vec![string()], Volatility::Stable)
    }
}

/// `id_card_birth(s)`: the birth date in a resident ID number.
pub(crate) struct IdCardBirth;

impl Function for IdCardBirth {
    const NAME: &'static str = "id_card_birth";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_to::<_, Date32Builder>(Self::NAME, &args.args[0], |s| {
            let (y, m, d) = with_well_formed(s, id_card::birth)?;
            Some(days_from_civil(y, m, d))
        })
    }

    fn signature() -> Signature {
        Signature::coercible(vec![string()], Volatility::Immutable)
    }

    fn return_type(_arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_OTHER,
            "The birth date recorded in a resident ID number (18 characters, or an old \
             15-digit number born 19YY), as a DATE. NULL when the number is not well formed: \
             wrong length or characters, wrong check character, unknown province, or not a \
             real date from 1850 on. Whether the date lies in the future is not checked: use \
             id_card_valid for that.",
            "id_card_birth(str)",
        )
        .with_sql_example(
            r#"```sql
> SELECT id_card_birth('310101198503121236');
+-------------------------------------------+
| id_card_birth(Utf8("310101198503121236")) |
+-------------------------------------------+
| 1985-03-12                                |
+-------------------------------------------+
```"#,
        )
        .with_standard_argument("str", Some("String"))
        .with_related_udf("id_card_valid")
        .build()
    }
}

/// `id_card_sex(s)`: the sex recorded in a resident ID number.
pub(crate) struct IdCardSex;

impl StringFn for IdCardSex {
    const NAME: &'static str = "id_card_sex";
    const ABOUT: &'static str = "The sex recorded in a resident ID number: 'M' when the last \
        sequence digit is odd, 'F' when even. Accepts 18-character and old 15-digit numbers; NULL \
        when the number is not well formed (see id_card_birth). The result has the input's string \
        type.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT id_card_sex('31010419900701008X');
+-----------------------------------------+
| id_card_sex(Utf8("31010419900701008X")) |
+-----------------------------------------+
| F                                       |
+-----------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["id_card_birth"];

    fn apply(s: &str, out: &mut String) -> bool {
        match with_well_formed(s, id_card::sex) {
            Some(sex) => {
                out.push(sex);
                true
            }
            None => false,
        }
    }
}

/// `id_card_region(s)`: the division code in a resident ID number.
pub(crate) struct IdCardRegion;

impl StringFn for IdCardRegion {
    const NAME: &'static str = "id_card_region";
    const ABOUT: &'static str = "The 6-digit division code (GB/T 2260) at the start of a resident \
        ID number: where the number was issued, which never changes, so abolished codes such as \
        310108 (闸北区) appear. district_name turns it into a name. Accepts 18-character and old \
        15-digit numbers; NULL when the number is not well formed (see id_card_birth). The result \
        has the input's string type.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT id_card_region('310108198008081550'), district_name(id_card_region('310108198008081550'));
+--------------------------------------------+-----------------------------------------------------------+
| id_card_region(Utf8("310108198008081550")) | district_name(id_card_region(Utf8("310108198008081550"))) |
+--------------------------------------------+-----------------------------------------------------------+
| 310108                                     | 闸北区                                                     |
+--------------------------------------------+-----------------------------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["district_name"];

    fn apply(s: &str, out: &mut String) -> bool {
        with_well_formed(s, |full| {
            out.push_str(id_card::region(full)?);
            Some(())
        })
        .is_some()
    }
}

/// `id_card_upgrade(s15)`: an old 15-digit resident ID number in its 18-character form.
pub(crate) struct IdCardUpgrade;

impl StringFn for IdCardUpgrade {
    const NAME: &'static str = "id_card_upgrade";
    const ABOUT: &'static str = "Upgrades an old 15-digit resident ID number to 18 characters (GB \
        11643): `19` goes before the two-digit birth year and the check character is appended. A \
        well-formed 18-character number is returned as it is, so a column of mixed numbers can be \
        normalised for joins. NULL when the number is not well formed (see id_card_birth). The \
        result has the input's string type.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT id_card_upgrade('110105491231002');
+-----------------------------------------+
| id_card_upgrade(Utf8("110105491231002")) |
+-----------------------------------------+
| 11010519491231002X                      |
+-----------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["id_card_valid"];

    fn apply(s: &str, out: &mut String) -> bool {
        with_well_formed(s, |full| {
            out.push_str(full);
            Some(())
        })
        .is_some()
    }
}

/// `id_card_age(s, at)`: the age in whole years of a resident ID number's holder on a date.
pub(crate) struct IdCardAge;

impl Function for IdCardAge {
    const NAME: &'static str = "id_card_age";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::on_arrays(&args.args, |arrays| {
            // Date64 (the other date the signature lets through) to days.
            let at = cast(&arrays[1], &DataType::Date32)?;
            let at = at.as_primitive::<Date32Type>();
            let mut builder = Int32Builder::with_capacity(at.len());
            let mut row = 0;
            kernel::for_each_str(Self::NAME, &arrays[0], |s| {
                let day = at.is_valid(row).then(|| at.value(row));
                builder.append_option(s.zip(day).and_then(|(s, day)| age_on(s, day)));
                row += 1;
            })?;
            Ok(Arc::new(builder.finish()))
        })
    }

    fn signature() -> Signature {
        Signature::one_of(vec![args(vec![string(), date()])], Volatility::Immutable)
    }

    fn return_type(_arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_OTHER,
            "The age in completed years, on the date `at`, of the holder of a resident ID \
             number (from its birth date; someone born on 29 February turns a year older on \
             1 March in common years). Accepts 18-character and old 15-digit numbers. NULL \
             when the number is not well formed (see id_card_birth), when `at` is before the \
             birth, or when either argument is NULL.",
            "id_card_age(str, at)",
        )
        .with_sql_example(
            r#"```sql
> SELECT id_card_age('310101198503121236', '2025-03-11');
+---------------------------------------------------------------------+
| id_card_age(Utf8("310101198503121236"),Utf8("2025-03-11"))          |
+---------------------------------------------------------------------+
| 39                                                                  |
+---------------------------------------------------------------------+
> SELECT id_card_age(id_number, current_date()) FROM residents;
```"#,
        )
        .with_standard_argument("str", Some("String"))
        .with_argument(
            "at",
            "The date of the age: a date, a timestamp (its date) or a date string.",
        )
        .with_related_udf("id_card_birth")
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};
    use crate::testing::{STRING_TYPES, arr, assert_maps_strings, invoke, lit, values};
    use datafusion::arrow::array::Date32Array;
    use datafusion::common::ScalarValue;

    /// The inputs of the vectors of `key`.
    fn inputs(key: &str) -> Vec<Option<&'static str>> {
        cases(key)
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect()
    }

    fn days(yyyymmdd: &str) -> i32 {
        let n = |r: std::ops::Range<usize>| yyyymmdd[r].parse::<u32>().unwrap();
        days_from_civil(n(0..4) as i32, n(4..6), n(6..8))
    }

    fn day(y: i32, m: u32, d: u32) -> i32 {
        days_from_civil(y, m, d)
    }

    #[test]
    fn id_vectors_validate_for_every_string_type() -> Result<()> {
        // The vectors were judged on 2025-06-30; none of them was born after that, so the
        // verdicts hold on any later day.
        let expected: Vec<_> = cases("id_card")
            .iter()
            .map(|c| ScalarValue::Boolean(c["valid"].as_bool()))
            .collect();
        for dt in STRING_TYPES {
            let out = invoke(&IdCardValid.udf(), vec![arr(&dt, &inputs("id_card"))])?;
            assert_eq!(values(&out), expected, "{dt}");
            let out = invoke(&IdCardValid.udf(), vec![arr(&dt, &[None])])?;
            assert_eq!(values(&out), [ScalarValue::Boolean(None)]);
        }
        Ok(())
    }

    #[test]
    fn a_birth_date_after_today_is_invalid() -> Result<()> {
        let (y, _, _) = civil_from_days(today_in_china());
        let first17 = format!("310101{}0101001", y + 1);
        let check = id_card::check_char(first17.as_bytes()).unwrap();
        let id = format!("{first17}{}", char::from(check));
        let out = invoke(&IdCardValid.udf(), vec![arr(&DataType::Utf8, &[Some(&id)])])?;
        assert_eq!(values(&out), [ScalarValue::Boolean(Some(false))]);
        Ok(())
    }

    #[test]
    fn id_vectors_give_their_birth_date_or_null() -> Result<()> {
        let expected: Vec<_> = cases("id_card")
            .iter()
            .map(|c| match (c["valid"].as_bool(), c["birth"].as_str()) {
                (Some(true), Some(b)) => ScalarValue::Date32(Some(days(b))),
                (Some(true), None) => {
                    let input = str_field(c, "input");
                    ScalarValue::Date32(Some(days(&input[6..14])))
                }
                _ => ScalarValue::Date32(None),
            })
            .collect();
        for dt in STRING_TYPES {
            let out = invoke(&IdCardBirth.udf(), vec![arr(&dt, &inputs("id_card"))])?;
            assert_eq!(values(&out), expected, "{dt}");
        }
        Ok(())
    }

    #[test]
    fn birth_of_old_numbers_nulls_and_garbage() -> Result<()> {
        let mut inputs = inputs("id_card_15");
        inputs.extend([
            None,
            Some(""),
            Some("not a number"),
            Some("310101851312123"),
        ]);
        let out = invoke(&IdCardBirth.udf(), vec![arr(&DataType::Utf8View, &inputs)])?;
        let birth = |d: Option<&str>| ScalarValue::Date32(d.map(days));
        let expected = [
            birth(Some("19491231")),
            birth(Some("19900701")),
            birth(Some("19850312")),
            birth(None),
            birth(None),
            birth(None),
            birth(None),
        ];
        assert_eq!(values(&out), expected);
        Ok(())
    }

    #[test]
    fn id_vectors_give_their_sex_or_null() {
        let expected: Vec<_> = cases("id_card")
            .iter()
            .map(|c| match c["valid"].as_bool() {
                // One valid vector gives no sex: its sequence digit 5 is odd.
                Some(true) => c["sex"].as_str().or_else(|| {
                    let digit = str_field(c, "input").as_bytes()[16] - b'0';
                    Some(if digit % 2 == 1 { "M" } else { "F" })
                }),
                _ => None,
            })
            .collect();
        assert_maps_strings(&IdCardSex.udf(), &inputs("id_card"), &expected);
    }

    #[test]
    fn sex_of_old_numbers_and_nulls() {
        let inputs = [Some("310104900701048"), None, Some("abc")];
        assert_maps_strings(&IdCardSex.udf(), &inputs, &[Some("F"), None, None]);
    }

    #[test]
    fn id_vectors_give_their_region_or_null() {
        let expected: Vec<_> = cases("id_card")
            .iter()
            .map(|c| match c["valid"].as_bool() {
                Some(true) => Some(str_field(c, "region")),
                _ => None,
            })
            .collect();
        assert_maps_strings(&IdCardRegion.udf(), &inputs("id_card"), &expected);
    }

    #[test]
    fn region_of_old_numbers_nulls_and_garbage() {
        assert_maps_strings(
            &IdCardRegion.udf(),
            &[
                Some("310104900701048"),
                None,
                Some("abc"),
                Some("390101780101001"),
            ],
            &[Some("310104"), None, None, None],
        );
    }

    #[test]
    fn ages_count_completed_years() {
        let id = "310101198503121236";
        assert_eq!(age_on(id, day(1985, 3, 12)), Some(0));
        assert_eq!(age_on(id, day(2025, 3, 11)), Some(39));
        assert_eq!(age_on(id, day(2025, 3, 12)), Some(40));
        assert_eq!(age_on(id, day(1985, 3, 11)), None);
        // Born 2000-02-29: 1 in 2001 from 1 March, 4 on 29 February 2004.
        let leap = "310110200002290337";
        assert_eq!(age_on(leap, day(2001, 2, 28)), Some(0));
        assert_eq!(age_on(leap, day(2001, 3, 1)), Some(1));
        assert_eq!(age_on(leap, day(2004, 2, 29)), Some(4));
        // An old 15-digit number, a bad check digit, and the extremes of Date32.
        assert_eq!(age_on("310101850312123", day(2025, 3, 12)), Some(40));
        assert_eq!(age_on("310101198503121230", day(2025, 3, 12)), None);
        assert!(age_on(id, i32::MAX).is_some_and(|a| a > 5_000_000));
        assert_eq!(age_on(id, i32::MIN), None);
    }

    #[test]
    fn id_vectors_with_a_date_column_and_every_string_type() -> Result<()> {
        let valid: Vec<_> = cases("id_card")
            .iter()
            .filter(|c| c["valid"] == true)
            .map(|c| str_field(c, "input"))
            .collect();
        let at = day(2025, 6, 30);
        let expected: Vec<_> = valid
            .iter()
            .map(|id| {
                let (y, m, d) = id_card::birth(id).unwrap();
                let before = (m, d) > (6, 30);
                ScalarValue::Int32(Some(2025 - y - i32::from(before)))
            })
            .collect();
        let inputs: Vec<_> = valid.iter().map(|s| Some(*s)).collect();
        for dt in STRING_TYPES {
            let dates = ColumnarValue::Array(Arc::new(Date32Array::from(vec![at; valid.len()])));
            let out = invoke(&IdCardAge.udf(), vec![arr(&dt, &inputs), dates])?;
            assert_eq!(values(&out), expected, "{dt}");
        }
        Ok(())
    }

    #[test]
    fn nulls_in_either_argument_give_null() -> Result<()> {
        let ids = arr(
            &DataType::Utf8,
            &[Some("310101198503121236"), None, Some("310101198503121236")],
        );
        let dates = ColumnarValue::Array(Arc::new(Date32Array::from(vec![
            Some(day(2000, 1, 1)),
            Some(day(2000, 1, 1)),
            None,
        ])));
        let out = invoke(&IdCardAge.udf(), vec![ids, dates])?;
        let age = ScalarValue::Int32;
        assert_eq!(values(&out), [age(Some(14)), age(None), age(None)]);
        let out = invoke(
            &IdCardAge.udf(),
            vec![
                lit("310101198503121236".into()),
                lit(ScalarValue::Date32(Some(day(2000, 1, 1)))),
            ],
        )?;
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::Int32(Some(14)))
        ));
        Ok(())
    }

    #[test]
    fn old_number_vectors_upgrade() {
        let expected: Vec<_> = cases("id_card_15")
            .iter()
            .map(|c| Some(str_field(c, "id18")))
            .collect();
        assert_maps_strings(&IdCardUpgrade.udf(), &inputs("id_card_15"), &expected);
    }

    #[test]
    fn new_numbers_stay_and_bad_ones_give_null() {
        assert_maps_strings(
            &IdCardUpgrade.udf(),
            &[
                Some("310101198503121236"),
                Some("310101198503121230"),
                None,
                Some("310101851312123"),
                Some("000000850312123"),
                Some("31010185031212"),
            ],
            &[Some("310101198503121236"), None, None, None, None, None],
        );
    }
}
