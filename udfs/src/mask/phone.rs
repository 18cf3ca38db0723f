//! `mask_phone(s)`: a phone number with its first three and last four digits kept.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::keep::keep_into;
use crate::domain::phone::CHINA_PREFIX;
use crate::kernel::{self, string};

/// Writes `s` masked as a phone number: an optional `+86` kept, then 3 + 4 characters kept.
pub(crate) fn phone_into(s: &str, out: &mut String) {
    let rest = match s.strip_prefix(CHINA_PREFIX) {
        Some(rest) => {
            out.push_str(CHINA_PREFIX);
            rest
        }
        None => s,
    };
    keep_into(rest, 3, 4, '*', out);
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_STRING,
        "Masks a phone number, keeping the first 3 and last 4 characters after an optional \
         `+86` prefix (which is kept); one `*` per hidden character. A number of 7 characters \
         or fewer (after the prefix) is masked entirely.",
        "mask_phone(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT mask_phone('+8613912345678');
+------------------------------------+
| mask_phone(Utf8("+8613912345678")) |
+------------------------------------+
| +86139****5678                     |
+------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("mask_keep")
    .build()
});

/// `mask_phone(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskPhoneFunc {
    signature: Signature,
}

impl Default for MaskPhoneFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskPhoneFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskPhoneFunc {
    fn name(&self) -> &str {
        "mask_phone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(self.name(), &args.args[0], |s, out| {
            phone_into(s, out);
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
    fn masks_the_phone_vectors() -> Result<()> {
        for case in cases("masking").iter().filter(|c| c["kind"] == "phone") {
            let input = arr(&DataType::LargeUtf8, &[Some(str_field(case, "input"))]);
            let out = invoke(&MaskPhoneFunc::new(), vec![input])?;
            assert_strings(&out, &[Some(str_field(case, "expected"))]);
        }
        Ok(())
    }

    #[test]
    fn keeps_type_and_nulls_and_hides_short_numbers() -> Result<()> {
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let input = arr(
                &dt,
                &[
                    Some("13812341234"),
                    None,
                    Some("+861234567"),
                    Some("021-63211234"),
                ],
            );
            let out = invoke(&MaskPhoneFunc::new(), vec![input])?;
            assert_eq!(out.data_type(), dt);
            assert_strings(
                &out,
                &[
                    Some("138****1234"),
                    None,
                    Some("+86*******"),
                    Some("021*****1234"),
                ],
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn sql_masks_a_phone_number_with_country_code() -> Result<()> {
        assert_eq!(
            sql_value("SELECT mask_phone('+8613912345678')").await?,
            "+86139****5678"
        );
        Ok(())
    }
}
