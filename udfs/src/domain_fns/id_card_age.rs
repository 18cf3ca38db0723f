//! `id_card_age(s, at)`: the age in whole years of a resident ID number's holder on a date.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Int32Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::id_card_birth::with_well_formed;
use crate::domain::{civil_from_days, days_from_civil, id_card};
use crate::kernel::{self, args, date, string};

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

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "The age in completed years, on the date `at`, of the holder of a resident ID \
         number (from its birth date; someone born on 29 February turns a year older on \
         1 March in common years). Accepts 18-character and old 15-digit numbers. NULL when \
         the number is not well formed (see id_card_birth), when `at` is before the birth, \
         or when either argument is NULL.",
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
});

/// `id_card_age(s, at)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IdCardAgeFunc {
    signature: Signature,
}

impl Default for IdCardAgeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl IdCardAgeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(vec![args(vec![string(), date()])], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IdCardAgeFunc {
    fn name(&self) -> &str {
        "id_card_age"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        kernel::on_arrays(&args.args, |arrays| {
            // Date64 (the other date the signature lets through) to days.
            let at = cast(&arrays[1], &DataType::Date32)?;
            let at = at.as_primitive::<Date32Type>();
            let mut builder = Int32Builder::with_capacity(at.len());
            let mut row = 0;
            kernel::for_each_str(name, &arrays[0], |s| {
                let day = at.is_valid(row).then(|| at.value(row));
                builder.append_option(s.zip(day).and_then(|(s, day)| age_on(s, day)));
                row += 1;
            })?;
            Ok(Arc::new(builder.finish()))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};
    use crate::testing::{arr, invoke, lit, sql_value, values};
    use datafusion::arrow::array::Date32Array;
    use datafusion::common::ScalarValue;

    fn day(y: i32, m: u32, d: u32) -> i32 {
        days_from_civil(y, m, d)
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
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let dates = ColumnarValue::Array(Arc::new(Date32Array::from(vec![at; valid.len()])));
            let out = invoke(&IdCardAgeFunc::new(), vec![arr(&dt, &inputs), dates])?;
            assert_eq!(values(&out), expected, "{dt}");
        }
        Ok(())
    }

    #[test]
    fn nulls_in_either_argument_give_null() -> Result<()> {
        let f = IdCardAgeFunc::new();
        let ids = arr(
            &DataType::Utf8,
            &[Some("310101198503121236"), None, Some("310101198503121236")],
        );
        let dates = ColumnarValue::Array(Arc::new(Date32Array::from(vec![
            Some(day(2000, 1, 1)),
            Some(day(2000, 1, 1)),
            None,
        ])));
        let out = invoke(&f, vec![ids, dates])?;
        assert_eq!(
            values(&out),
            [
                ScalarValue::Int32(Some(14)),
                ScalarValue::Int32(None),
                ScalarValue::Int32(None)
            ]
        );
        let out = invoke(
            &f,
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

    #[tokio::test]
    async fn sql_accepts_dates_timestamps_and_date_strings() -> Result<()> {
        for at in [
            "DATE '2025-03-11'",
            "'2025-03-11'",
            "TIMESTAMP '2025-03-11 23:59:59'",
            "CAST(DATE '2025-03-11' AS DATE)",
        ] {
            let sql = format!("SELECT id_card_age('310101198503121236', {at})");
            assert_eq!(sql_value(&sql).await?, "39", "{sql}");
        }
        let err = sql_value("SELECT id_card_age('310101198503121236')")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("id_card_age"), "{err}");
        Ok(())
    }
}
