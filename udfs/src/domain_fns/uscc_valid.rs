//! `uscc_valid(s [, strict])`: whether a string is a valid unified social credit code.

use std::sync::LazyLock;

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::domain::uscc;
use crate::kernel::{self, args, boolean, string};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "Whether a string is a valid unified social credit code (GB 32100): 18 upper-case \
         characters of `0-9A-HJ-NPQRTUWXY`, a known registration authority and entity type, \
         a 6-digit division code and a matching MOD 31 check character. With `strict` true \
         the embedded organisation code (positions 9-17) must also pass its GB 11714 check. \
         NULL in gives NULL out.",
        "uscc_valid(str[, strict])",
    )
    .with_sql_example(
        r#"```sql
> SELECT uscc_valid('91310000MA1FL2B37C'), uscc_valid('91310104132260588N', true);
+----------------------------------------+--------------------------------------------------------+
| uscc_valid(Utf8("91310000MA1FL2B37C")) | uscc_valid(Utf8("91310104132260588N"),Boolean(true)) |
+----------------------------------------+--------------------------------------------------------+
| true                                   | false                                                  |
+----------------------------------------+--------------------------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_argument(
        "strict",
        "Also check the organisation code, a constant; default false.",
    )
    .build()
});

/// `uscc_valid(s [, strict])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UsccValidFunc {
    signature: Signature,
}

impl Default for UsccValidFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl UsccValidFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![args(vec![string()]), args(vec![string(), boolean()])],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for UsccValidFunc {
    fn name(&self) -> &str {
        "uscc_valid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let strict = match args.args.get(1) {
            None => false,
            Some(arg) => match kernel::bool_param(self.name(), "strict", arg)? {
                Some(strict) => strict,
                None => return kernel::all_null(&DataType::Boolean),
            },
        };
        kernel::map_to::<_, BooleanBuilder>(self.name(), &args.args[0], |s| {
            Some(uscc::is_valid(s, strict))
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
    use datafusion::common::ScalarValue;

    #[test]
    fn uscc_vectors_validate_lax_and_strict() -> Result<()> {
        let inputs: Vec<_> = cases("uscc")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        let expect = |key: &str| -> Vec<ScalarValue> {
            cases("uscc")
                .iter()
                .map(|c| ScalarValue::Boolean(Some(c[key].as_bool().unwrap_or(false))))
                .collect()
        };
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let f = UsccValidFunc::new();
            let out = invoke(&f, vec![arr(&dt, &inputs)])?;
            assert_eq!(values(&out), expect("valid"), "{dt}");
            let out = invoke(
                &f,
                vec![arr(&dt, &inputs), lit(ScalarValue::Boolean(Some(true)))],
            )?;
            assert_eq!(values(&out), expect("valid_strict_org"), "{dt}");
        }
        Ok(())
    }

    #[test]
    fn nulls_give_null() -> Result<()> {
        let f = UsccValidFunc::new();
        let out = invoke(
            &f,
            vec![arr(&DataType::Utf8, &[None, Some("91310000MA1FL2B37C")])],
        )?;
        assert_eq!(
            values(&out),
            [ScalarValue::Boolean(None), ScalarValue::Boolean(Some(true))]
        );
        let out = invoke(
            &f,
            vec![
                lit("91310000MA1FL2B37C".into()),
                lit(ScalarValue::Boolean(None)),
            ],
        )?;
        assert_eq!(values(&out), [ScalarValue::Boolean(None)]);
        Ok(())
    }

    #[tokio::test]
    async fn sql_validates_a_code() -> Result<()> {
        assert_eq!(
            sql_value("SELECT uscc_valid('91310000MA1FL2B37C')").await?,
            "true"
        );
        assert_eq!(
            sql_value("SELECT uscc_valid('91310000MA1FL2B37C', true)").await?,
            "true"
        );
        assert_eq!(
            sql_value("SELECT uscc_valid('91310104132260588N')").await?,
            "false"
        );
        Ok(())
    }
}
