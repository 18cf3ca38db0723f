//! `phone_valid(s)`: whether a string is a mainland Chinese mobile number.

use std::sync::LazyLock;

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::domain::phone;
use crate::kernel::{self, string};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "Whether a string is a mainland Chinese mobile number: 11 digits, optionally after \
         `+86`, with no spaces or dashes, starting with a prefix allocated to mobile service \
         (130-139, 141, 145-149, 150-153, 155-159, 162, 165-167, 170-178, 180-189, 190-193, \
         195-199; 13-digit IoT ranges such as 140 are not phone numbers). NULL in gives NULL \
         out.",
        "phone_valid(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT phone_valid('+8613812341234'), phone_valid('15421234567');
+-------------------------------------+----------------------------------+
| phone_valid(Utf8("+8613812341234")) | phone_valid(Utf8("15421234567")) |
+-------------------------------------+----------------------------------+
| true                                | false                            |
+-------------------------------------+----------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("mask_phone")
    .build()
});

/// `phone_valid(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PhoneValidFunc {
    signature: Signature,
}

impl Default for PhoneValidFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl PhoneValidFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PhoneValidFunc {
    fn name(&self) -> &str {
        "phone_valid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_to::<_, BooleanBuilder>(self.name(), &args.args[0], |s| {
            Some(phone::is_valid(s))
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
    fn mobile_vectors_validate_for_every_string_type() -> Result<()> {
        let mut inputs: Vec<_> = cases("mobile")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        let mut expected: Vec<_> = cases("mobile")
            .iter()
            .map(|c| ScalarValue::Boolean(c["valid"].as_bool()))
            .collect();
        inputs.push(None);
        expected.push(ScalarValue::Boolean(None));
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&PhoneValidFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(values(&out), expected, "{dt}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn sql_validates_a_number() -> Result<()> {
        assert_eq!(
            sql_value("SELECT phone_valid('+8613812341234')").await?,
            "true"
        );
        assert_eq!(
            sql_value("SELECT phone_valid('17921234567')").await?,
            "false"
        );
        Ok(())
    }
}
