//! `district_name(code [, lang])`: the name of a Shanghai division code.

use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarFunctionArgs, Signature};

use crate::domain::district;
use crate::function::Function;
use crate::kernel;

/// The lookup of division names in `lang`.
fn names_in(lang: &str) -> Result<fn(&str) -> Option<&'static str>> {
    match lang {
        "zh" => Ok(district::name_zh),
        "en" => Ok(district::name_en),
        other => exec_err!("district_name: unknown lang {other:?}, expected 'zh' or 'en'"),
    }
}

/// `district_name(code [, lang])`.
pub(crate) struct DistrictName;

impl Function for DistrictName {
    const NAME: &'static str = "district_name";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(lookup) = kernel::option(Self::NAME, "lang", args.args.get(1), "zh", names_in)?
        else {
            return kernel::all_null(args.return_field.data_type());
        };
        kernel::map_strings(Self::NAME, &args.args[0], |code, out| match lookup(code) {
            Some(found) => {
                out.push_str(found);
                true
            }
            None => false,
        })
    }

    fn signature() -> Signature {
        kernel::string_and_option()
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_OTHER,
            "The name of a Shanghai county-level division code (GB/T 2260), current or \
             abolished (310108 闸北区 still appears on ID numbers): Chinese with lang 'zh' \
             (default), English with 'en'. NULL for an unknown code. The result has the \
             input's string type.",
            "district_name(code[, lang])",
        )
        .with_sql_example(
            r#"```sql
> SELECT district_name('310101'), district_name('310115', 'en');
+--------------------------------+-------------------------------------------+
| district_name(Utf8("310101"))  | district_name(Utf8("310115"),Utf8("en"))  |
+--------------------------------+-------------------------------------------+
| 黄浦区                          | Pudong New Area                           |
+--------------------------------+-------------------------------------------+
```"#,
        )
        .with_argument("code", "The 6-digit division code, a string.")
        .with_argument("lang", "'zh' (default) or 'en', a constant.")
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};
    use crate::testing::{STRING_TYPES, arr, assert_null_option, assert_strings, invoke, lit};
    use datafusion::arrow::datatypes::DataType;

    #[test]
    fn district_vectors_in_both_languages() -> Result<()> {
        let codes: Vec<_> = cases("districts")
            .iter()
            .map(|c| Some(str_field(c, "code")))
            .collect();
        for (lang, key) in [("zh", "name_zh"), ("en", "name_en")] {
            let names: Vec<_> = cases("districts")
                .iter()
                .map(|c| Some(str_field(c, key)))
                .collect();
            for dt in STRING_TYPES {
                let out = invoke(
                    &DistrictName.udf(),
                    vec![arr(&dt, &codes), lit(lang.into())],
                )?;
                assert_eq!(out.data_type(), dt);
                assert_strings(&out, &names);
            }
        }
        Ok(())
    }

    #[test]
    fn unknown_codes_and_nulls_give_null_and_default_is_chinese() -> Result<()> {
        let input = arr(
            &DataType::Utf8,
            &[Some("310108"), None, Some("110101"), Some("")],
        );
        let out = invoke(&DistrictName.udf(), vec![input])?;
        assert_strings(&out, &[Some("闸北区"), None, None, None]);
        assert_null_option(&DistrictName.udf(), "310101");
        Ok(())
    }
}
