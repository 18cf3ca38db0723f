//! `uscc_entity_type(s)`: the kind of entity a unified social credit code names.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::domain::uscc;
use crate::kernel::{self, string};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "The entity type of a unified social credit code (its registration authority and \
         type characters, GB 32100 table 1) as a snake-case English name: 'enterprise', \
         'individual_business' (个体工商户, linked to a natural person: personal data), \
         'farmers_cooperative', 'public_institution', 'social_group', 'foundation', \
         'law_firm', … NULL unless the code is valid (see uscc_valid). The result has the \
         input's string type.",
        "uscc_entity_type(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT uscc_entity_type('92310106MA1JT8QX1Q');
+----------------------------------------------+
| uscc_entity_type(Utf8("92310106MA1JT8QX1Q")) |
+----------------------------------------------+
| individual_business                          |
+----------------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("uscc_valid")
    .build()
});

/// `uscc_entity_type(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UsccEntityTypeFunc {
    signature: Signature,
}

impl Default for UsccEntityTypeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl UsccEntityTypeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for UsccEntityTypeFunc {
    fn name(&self) -> &str {
        "uscc_entity_type"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(
            self.name(),
            &args.args[0],
            |s, out| match uscc::entity_type(s).filter(|_| uscc::is_valid(s, false)) {
                Some(kind) => {
                    out.push_str(kind);
                    true
                }
                None => false,
            },
        )
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

    /// The English name of a vector's `type` ("2 个体工商户"), by its Chinese name.
    fn expected_name(case: &serde_json::Value) -> Option<&'static str> {
        let (_, zh) = case["type"].as_str()?.split_once(' ')?;
        let kind = uscc::KINDS.iter().find(|k| k.name_zh == zh)?;
        Some(kind.name)
    }

    #[test]
    fn uscc_vectors_give_their_type_or_null() -> Result<()> {
        let inputs: Vec<_> = cases("uscc")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&UsccEntityTypeFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(out.data_type(), dt);
            let got = crate::testing::values(&out);
            for (case, got) in cases("uscc").iter().zip(got) {
                let got = got.try_as_str().flatten();
                if case["valid"] != true {
                    assert_eq!(got, None, "{case}");
                } else if let Some(want) = expected_name(case) {
                    assert_eq!(got, Some(want), "{case}");
                } else {
                    assert!(got.is_some(), "{case}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn market_regulation_kinds_and_nulls() -> Result<()> {
        let out = invoke(
            &UsccEntityTypeFunc::new(),
            vec![arr(
                &DataType::Utf8View,
                &[
                    Some("91310000MA1FL2B37C"),
                    Some("92310106MA1JT8QX1Q"),
                    Some("93310151MA1KW3N652"),
                    None,
                    Some("B1310000MA1FL2B37A"),
                ],
            )],
        )?;
        assert_strings(
            &out,
            &[
                Some("enterprise"),
                Some("individual_business"),
                Some("farmers_cooperative"),
                None,
                None,
            ],
        );
        Ok(())
    }

    #[tokio::test]
    async fn sql_reads_the_type() -> Result<()> {
        assert_eq!(
            sql_value("SELECT uscc_entity_type('12310110425023718W')").await?,
            "public_institution"
        );
        Ok(())
    }
}
