//! `id_card_upgrade(s15)`: an old 15-digit resident ID number in its 18-character form.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::id_card_birth::with_well_formed;
use crate::kernel::{self, string};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_OTHER,
        "Upgrades an old 15-digit resident ID number to 18 characters (GB 11643): `19` goes \
         before the two-digit birth year and the check character is appended. A well-formed \
         18-character number is returned as it is, so a column of mixed numbers can be \
         normalised for joins. NULL when the number is not well formed (see id_card_birth). \
         The result has the input's string type.",
        "id_card_upgrade(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT id_card_upgrade('110105491231002');
+-----------------------------------------+
| id_card_upgrade(Utf8("110105491231002")) |
+-----------------------------------------+
| 11010519491231002X                      |
+-----------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("id_card_valid")
    .build()
});

/// `id_card_upgrade(s15)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IdCardUpgradeFunc {
    signature: Signature,
}

impl Default for IdCardUpgradeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl IdCardUpgradeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IdCardUpgradeFunc {
    fn name(&self) -> &str {
        "id_card_upgrade"
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
                out.push_str(full);
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
    fn old_number_vectors_upgrade() -> Result<()> {
        let inputs: Vec<_> = cases("id_card_15")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        let expected: Vec<_> = cases("id_card_15")
            .iter()
            .map(|c| Some(str_field(c, "id18")))
            .collect();
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&IdCardUpgradeFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(out.data_type(), dt);
            assert_strings(&out, &expected);
        }
        Ok(())
    }

    #[test]
    fn new_numbers_stay_and_bad_ones_give_null() -> Result<()> {
        let out = invoke(
            &IdCardUpgradeFunc::new(),
            vec![arr(
                &DataType::Utf8View,
                &[
                    Some("310101198503121236"),
                    Some("310101198503121230"),
                    None,
                    Some("310101851312123"),
                    Some("000000850312123"),
                    Some("31010185031212"),
                ],
            )],
        )?;
        assert_strings(
            &out,
            &[Some("310101198503121236"), None, None, None, None, None],
        );
        Ok(())
    }

    #[tokio::test]
    async fn sql_upgrades_the_standard_example() -> Result<()> {
        assert_eq!(
            sql_value("SELECT id_card_upgrade('110105491231002')").await?,
            "11010519491231002X"
        );
        Ok(())
    }
}
