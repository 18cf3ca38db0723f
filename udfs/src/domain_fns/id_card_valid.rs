//! `id_card_valid(s)`: whether a string is a valid resident ID number today.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::domain::id_card;
use crate::kernel::{self, string};

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

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "Whether a string is a valid 18-character resident ID number (GB 11643): 17 digits \
         and a check character `0-9` or upper-case `X` matching MOD 11-2, a GB/T 2260 \
         province prefix, and a real birth date from 1850 up to today (China Standard Time). \
         Old 15-digit numbers are not valid. NULL in gives NULL out.",
        "id_card_valid(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT id_card_valid('310101198503121236'), id_card_valid('310101198503121230');
+-------------------------------------------+-------------------------------------------+
| id_card_valid(Utf8("310101198503121236")) | id_card_valid(Utf8("310101198503121230")) |
+-------------------------------------------+-------------------------------------------+
| true                                      | false                                     |
+-------------------------------------------+-------------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("id_card_birth")
    .with_related_udf("id_card_sex")
    .build()
});

/// `id_card_valid(s)`. Stable, not Immutable: a number born tomorrow becomes valid then.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IdCardValidFunc {
    signature: Signature,
}

impl Default for IdCardValidFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl IdCardValidFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for IdCardValidFunc {
    fn name(&self) -> &str {
        "id_card_valid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let today = today_in_china();
        kernel::map_to::<_, BooleanBuilder>(self.name(), &args.args[0], |s| {
            Some(id_card::is_valid(s, today))
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

    #[test]
    fn id_vectors_validate_for_every_string_type() -> Result<()> {
        // The vectors were judged on 2025-06-30; none of them was born after that, so the
        // verdicts hold on any later day.
        let inputs: Vec<_> = cases("id_card")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        let expected: Vec<_> = cases("id_card")
            .iter()
            .map(|c| ScalarValue::Boolean(c["valid"].as_bool()))
            .collect();
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&IdCardValidFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(values(&out), expected, "{dt}");
            let out = invoke(&IdCardValidFunc::new(), vec![arr(&dt, &[None])])?;
            assert_eq!(values(&out), [ScalarValue::Boolean(None)]);
        }
        Ok(())
    }

    #[test]
    fn a_birth_date_after_today_is_invalid() -> Result<()> {
        let (y, _, _) = crate::domain::civil_from_days(today_in_china());
        let first17 = format!("310101{}0101001", y + 1);
        let check = id_card::check_char(first17.as_bytes()).unwrap();
        let id = format!("{first17}{}", char::from(check));
        let out = invoke(
            &IdCardValidFunc::new(),
            vec![arr(&DataType::Utf8, &[Some(&id)])],
        )?;
        assert_eq!(values(&out), [ScalarValue::Boolean(Some(false))]);
        Ok(())
    }

    #[tokio::test]
    async fn sql_validates_a_number() -> Result<()> {
        assert_eq!(
            sql_value("SELECT id_card_valid('310101198503121236')").await?,
            "true"
        );
        assert_eq!(
            sql_value("SELECT id_card_valid('31010419900701008x')").await?,
            "false"
        );
        Ok(())
    }
}
