//! `mask_id_card(s)`: a resident ID number with its division code and last four kept.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::keep::keep_into;
use crate::kernel::{self, string};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_STRING,
        "Masks a resident ID number, keeping the first 6 characters (the division code) and \
         the last 4; the birth date and sequence are hidden, one `*` per character. A value of \
         10 characters or fewer is masked entirely. The number is not validated.",
        "mask_id_card(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT mask_id_card('310101198503121236');
+------------------------------------------+
| mask_id_card(Utf8("310101198503121236")) |
+------------------------------------------+
| 310101********1236                       |
+------------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("mask_keep")
    .build()
});

/// `mask_id_card(s)`: `mask_keep(s, 6, 4)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskIdCardFunc {
    signature: Signature,
}

impl Default for MaskIdCardFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskIdCardFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskIdCardFunc {
    fn name(&self) -> &str {
        "mask_id_card"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(self.name(), &args.args[0], |s, out| {
            keep_into(s, 6, 4, '*', out);
            true
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
    use crate::testing::{arr, assert_strings, invoke, sql_value};

    #[test]
    fn masks_the_id_vectors() -> Result<()> {
        for case in cases("masking").iter().filter(|c| c["kind"] == "id") {
            let input = arr(&DataType::Utf8, &[Some(str_field(case, "input"))]);
            let out = invoke(&MaskIdCardFunc::new(), vec![input])?;
            assert_strings(&out, &[Some(str_field(case, "expected"))]);
        }
        Ok(())
    }

    #[test]
    fn keeps_type_and_nulls_and_hides_short_values() -> Result<()> {
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let input = arr(
                &dt,
                &[
                    Some("31010419900701008X"),
                    None,
                    Some("3101011985"),
                    Some("310101850312123"),
                ],
            );
            let out = invoke(&MaskIdCardFunc::new(), vec![input])?;
            assert_eq!(out.data_type(), dt);
            assert_strings(
                &out,
                &[
                    Some("310104********008X"),
                    None,
                    Some("**********"),
                    Some("310101*****2123"),
                ],
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn sql_masks_an_id_number() -> Result<()> {
        let got = sql_value("SELECT mask_id_card('310101198503121236')").await?;
        assert_eq!(got, "310101********1236");
        assert_eq!(sql_value("SELECT mask_id_card(NULL)").await?, "NULL");
        Ok(())
    }
}
