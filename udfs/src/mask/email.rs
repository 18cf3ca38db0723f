//! `mask_email(s)`: an e-mail address with the local part's first character and the domain.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::kernel::{self, string};

/// What stands for the hidden part, whatever its length: the local part's length is not
/// disclosed.
const HIDDEN: &str = "***";

/// Writes `s` masked as an e-mail address: the first character of the local part, `***`,
/// then `@` and the domain (after the last `@`). Without an `@` the whole value is `***`.
pub(crate) fn email_into(s: &str, out: &mut String) {
    let Some(at) = s.rfind('@') else {
        out.push_str(HIDDEN);
        return;
    };
    if let Some(first) = s[..at].chars().next() {
        out.push(first);
    }
    out.push_str(HIDDEN);
    out.push_str(&s[at..]);
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_STRING,
        "Masks an e-mail address, keeping the first character of the local part and the \
         domain; the rest of the local part becomes `***` whatever its length. A value \
         without `@` becomes `***`.",
        "mask_email(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT mask_email('zhangwei@example.cn');
+-----------------------------------------+
| mask_email(Utf8("zhangwei@example.cn")) |
+-----------------------------------------+
| z***@example.cn                         |
+-----------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .build()
});

/// `mask_email(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskEmailFunc {
    signature: Signature,
}

impl Default for MaskEmailFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskEmailFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskEmailFunc {
    fn name(&self) -> &str {
        "mask_email"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(self.name(), &args.args[0], |s, out| {
            email_into(s, out);
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
    use crate::testing::{arr, assert_strings, invoke, sql_value};

    #[test]
    fn keeps_first_character_and_domain_only() -> Result<()> {
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let input = arr(
                &dt,
                &[
                    Some("zhangwei@example.cn"),
                    Some("z@example.cn"),
                    None,
                    Some("张伟@例子.中国"),
                    Some("@example.cn"),
                    Some("not-an-address"),
                    Some("\"a@b\"@example.cn"),
                ],
            );
            let out = invoke(&MaskEmailFunc::new(), vec![input])?;
            assert_eq!(out.data_type(), dt);
            assert_strings(
                &out,
                &[
                    Some("z***@example.cn"),
                    Some("z***@example.cn"),
                    None,
                    Some("张***@例子.中国"),
                    Some("***@example.cn"),
                    Some("***"),
                    Some("\"***@example.cn"),
                ],
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn sql_masks_an_address() -> Result<()> {
        assert_eq!(
            sql_value("SELECT mask_email('zhangwei@example.cn')").await?,
            "z***@example.cn"
        );
        Ok(())
    }
}
