//! `id_card_sex(s)`: the sex recorded in a resident ID number.

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
        "The sex recorded in a resident ID number: 'M' when the last sequence digit is odd, \
         'F' when even. Accepts 18-character and old 15-digit numbers; NULL when the number \
         is not well formed (see id_card_birth). The result has the input's string type.",
        "id_card_sex(str)",
    )
    .with_sql_example(
        r#"```sql
> SELECT id_card_sex('31010419900701008X');
+-----------------------------------------+
| id_card_sex(Utf8("31010419900701008X")) |
+-----------------------------------------+
| F                                       |
+-----------------------------------------+
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_related_udf("id_card_birth")
    .build()
});

/// `id_card_sex(s)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IdCardSexFunc {
    signature: Signature,
}

impl Default for IdCardSexFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl IdCardSexFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IdCardSexFunc {
    fn name(&self) -> &str {
        "id_card_sex"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        kernel::map_strings(self.name(), &args.args[0], |s, out| match with_well_formed(
            s,
            id_card::sex,
        ) {
            Some(sex) => {
                out.push(sex);
                true
            }
            None => false,
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
    fn id_vectors_give_their_sex_or_null() -> Result<()> {
        let inputs: Vec<_> = cases("id_card")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect();
        let expected: Vec<_> = cases("id_card")
            .iter()
            .map(|c| match c["valid"].as_bool() {
                // One valid vector gives no sex: its sequence digit 5 is odd.
                Some(true) => c["sex"].as_str().or_else(|| {
                    let digit = str_field(c, "input").as_bytes()[16] - b'0';
                    Some(if digit % 2 == 1 { "M" } else { "F" })
                }),
                _ => None,
            })
            .collect();
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let out = invoke(&IdCardSexFunc::new(), vec![arr(&dt, &inputs)])?;
            assert_eq!(out.data_type(), dt);
            assert_strings(&out, &expected);
        }
        Ok(())
    }

    #[test]
    fn old_numbers_and_nulls() -> Result<()> {
        let out = invoke(
            &IdCardSexFunc::new(),
            vec![arr(
                &DataType::Utf8,
                &[Some("310104900701048"), None, Some("abc")],
            )],
        )?;
        assert_strings(&out, &[Some("F"), None, None]);
        Ok(())
    }

    #[tokio::test]
    async fn sql_reads_the_sex() -> Result<()> {
        assert_eq!(
            sql_value("SELECT id_card_sex('31010419900701008X')").await?,
            "F"
        );
        Ok(())
    }
}
