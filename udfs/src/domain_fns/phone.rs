//! `phone_valid(s)`: whether a string is a mainland Chinese mobile number.

use datafusion::common::Result;
use datafusion::logical_expr::ColumnarValue;

use crate::domain::phone;
use crate::function::Validator;

/// `phone_valid(s)`.
pub(crate) struct PhoneValid;

impl Validator for PhoneValid {
    const NAME: &'static str = "phone_valid";
    const ABOUT: &'static str = "Whether a string is a mainland Chinese mobile number: 11 digits, \
        optionally after `+86`, with no spaces or dashes, starting with a prefix allocated to \
        mobile service (130-139, 141, 145-149, 150-153, 155-159, 162, 165-167, 170-178, 180-189, \
        190-193, 195-199; 13-digit IoT ranges such as 140 are not phone numbers). NULL in gives \
        NULL out.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT phone_valid('+8613812341234'), phone_valid('15421234567');
+-------------------------------------+----------------------------------+
| phone_valid(Utf8("+8613812341234")) | phone_valid(Utf8("15421234567")) |
+-------------------------------------+----------------------------------+
| true                                | false                            |
+-------------------------------------+----------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["mask_phone"];

    fn test(_args: &[ColumnarValue]) -> Result<Option<impl Fn(&str) -> bool>> {
        Ok(Some(phone::is_valid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};
    use crate::testing::{STRING_TYPES, arr, invoke, values};
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
        for dt in STRING_TYPES {
            let out = invoke(&PhoneValid.udf(), vec![arr(&dt, &inputs)])?;
            assert_eq!(values(&out), expected, "{dt}");
        }
        Ok(())
    }
}
