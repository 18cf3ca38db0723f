//! `uscc_region(s)`: the division code in a unified social credit code.

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
        "The 6-digit division code (positions 3-8) of a unified social credit code: where \
         the entity was registered (310000 for the municipality itself). NULL unless the code \
         is valid (see uscc_valid). The result has the input's string type.",
        "uscc_region(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT uscc_region('91310115MA1H7K4D9D');
+-----------------------------------------+
| uscc_region(Utf8("91310115MA1H7K4D9D")) |
+-----------------------------------------+
| 310115                                  |
+-----------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("uscc_valid")
    .with_related_udf("district_name")
    .build()
});

/// `uscc_region(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UsccRegionFunc {
    signature: Signature,
}

impl Default for UsccRegionFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl UsccRegionFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for UsccRegionFunc {
    fn name(&self) -> &str {
        "uscc_region"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(self.name(), &args.args[0], |s, out| {
            match uscc::region(s).filter(|_| uscc::is_valid(s, false)) {
                Some(region) => {
                    out.push_str(region);
                    true
                }
                None => false,
            }
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
    fn uscc_vectors_give_their_region_or_null() -> Result<()> {
        let inputs: Vec<_> = cases("uscc")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        let expected: Vec<_> = cases("uscc")
            .iter()
            .map(|c| match c["valid"].as_bool() {
                Some(true) => Some(&str_field(c, "input")[2..8]),
                _ => None,
            })
            .collect();
        // Where the vectors state the region, it is the one read.
        for (case, want) in cases("uscc").iter().zip(&expected) {
            if let Some(region) = case["region"].as_str() {
                assert_eq!(Some(region), *want);
            }
        }
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&UsccRegionFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(out.data_type(), dt);
            assert_strings(&out, &expected);
            let out = invoke(&UsccRegionFunc::new(), vec![arr(&dt, &[None])])?;
            assert_strings(&out, &[None]);
        }
        Ok(())
    }

    #[tokio::test]
    async fn sql_reads_the_region() -> Result<()> {
        assert_eq!(
            sql_value("SELECT district_name(uscc_region('91310115MA1H7K4D9D'))").await?,
            "浦东新区"
        );
        Ok(())
    }
}
