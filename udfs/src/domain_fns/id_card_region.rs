//! `id_card_region(s)`: the division code in a resident ID number.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::id_card_birth::with_well_formed;
use crate::domain::id_card;
use crate::kernel::{self, string};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "The 6-digit division code (GB/T 2260) at the start of a resident ID number: where \
         the number was issued, which never changes, so abolished codes such as 310108 \
         (闸北区) appear. district_name turns it into a name. Accepts 18-character and old \
         15-digit numbers; NULL when the number is not well formed (see id_card_birth). The \
         result has the input's string type.",
        "id_card_region(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT id_card_region('310108198008081550'), district_name(id_card_region('310108198008081550'));
+--------------------------------------------+-----------------------------------------------------------+
| id_card_region(Utf8("310108198008081550")) | district_name(id_card_region(Utf8("310108198008081550"))) |
+--------------------------------------------+-----------------------------------------------------------+
| 310108                                     | 闸北区                                                     |
+--------------------------------------------+-----------------------------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("district_name")
    .build()
});

/// `id_card_region(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IdCardRegionFunc {
    signature: Signature,
}

impl Default for IdCardRegionFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl IdCardRegionFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IdCardRegionFunc {
    fn name(&self) -> &str {
        "id_card_region"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(self.name(), &args.args[0], |s, out| {
            with_well_formed(s, |full| {
                out.push_str(id_card::region(full)?);
                Some(())
            })
            .is_some()
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
    fn id_vectors_give_their_region_or_null() -> Result<()> {
        let inputs: Vec<_> = cases("id_card")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        let expected: Vec<_> = cases("id_card")
            .iter()
            .map(|c| match c["valid"].as_bool() {
                Some(true) => Some(str_field(c, "region")),
                _ => None,
            })
            .collect();
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&IdCardRegionFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(out.data_type(), dt);
            assert_strings(&out, &expected);
        }
        Ok(())
    }

    #[test]
    fn old_numbers_nulls_and_garbage() -> Result<()> {
        let out = invoke(
            &IdCardRegionFunc::new(),
            vec![arr(
                &DataType::Utf8,
                &[
                    Some("310104900701048"),
                    None,
                    Some("abc"),
                    Some("390101780101001"),
                ],
            )],
        )?;
        assert_strings(&out, &[Some("310104"), None, None, None]);
        Ok(())
    }

    #[tokio::test]
    async fn sql_reads_the_region_and_names_it() -> Result<()> {
        assert_eq!(
            sql_value("SELECT district_name(id_card_region('310108198008081550'))").await?,
            "闸北区"
        );
        Ok(())
    }
}
