//! `id_card_birth(s)`: the birth date in a resident ID number.

use std::sync::LazyLock;

use datafusion::arrow::array::Date32Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::domain::{days_from_civil, id_card};
use crate::kernel::{self, string};

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

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "The birth date recorded in a resident ID number (18 characters, or an old 15-digit \
         number born 19YY), as a DATE. NULL when the number is not well formed: wrong \
         length or characters, wrong check character, unknown province, or not a real date \
         from 1850 on. Whether the date lies in the future is not checked: use \
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
});

/// `id_card_birth(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IdCardBirthFunc {
    signature: Signature,
}

impl Default for IdCardBirthFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl IdCardBirthFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IdCardBirthFunc {
    fn name(&self) -> &str {
        "id_card_birth"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_to::<_, Date32Builder>(self.name(), &args.args[0], |s| {
            let (y, m, d) = with_well_formed(s, id_card::birth)?;
            Some(days_from_civil(y, m, d))
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
    use crate::testing::{arr, invoke, sql_value, values};
    use datafusion::common::ScalarValue;

    fn days(yyyymmdd: &str) -> i32 {
        let n = |r: std::ops::Range<usize>| yyyymmdd[r].parse::<u32>().unwrap();
        days_from_civil(n(0..4) as i32, n(4..6), n(6..8))
    }

    #[test]
    fn id_vectors_give_their_birth_date_or_null() -> Result<()> {
        let inputs: Vec<_> = cases("id_card")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
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
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&IdCardBirthFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(values(&out), expected, "{dt}");
        }
        Ok(())
    }

    #[test]
    fn old_numbers_nulls_and_garbage() -> Result<()> {
        let mut inputs: Vec<_> = cases("id_card_15")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        inputs.extend([
            None,
            Some(""),
            Some("not a number"),
            Some("310101851312123"),
        ]);
        let out = invoke(
            &IdCardBirthFunc::new(),
            vec![arr(&DataType::Utf8View, &inputs)],
        )?;
        let expected = [
            ScalarValue::Date32(Some(days("19491231"))),
            ScalarValue::Date32(Some(days("19900701"))),
            ScalarValue::Date32(Some(days("19850312"))),
            ScalarValue::Date32(None),
            ScalarValue::Date32(None),
            ScalarValue::Date32(None),
            ScalarValue::Date32(None),
        ];
        assert_eq!(values(&out), expected);
        Ok(())
    }

    #[tokio::test]
    async fn sql_reads_a_birth_date() -> Result<()> {
        assert_eq!(
            sql_value("SELECT id_card_birth('310101198503121236')").await?,
            "1985-03-12"
        );
        assert_eq!(
            sql_value("SELECT id_card_birth('310101198503121230')").await?,
            "NULL"
        );
        Ok(())
    }
}
