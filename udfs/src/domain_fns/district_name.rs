//! `district_name(code [, lang])`: the name of a Shanghai division code.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_OTHER;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::domain::district;
use crate::kernel::{self, args, string};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
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
});

/// `district_name(code [, lang])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DistrictNameFunc {
    signature: Signature,
}

impl Default for DistrictNameFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl DistrictNameFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![args(vec![string()]), args(vec![string(), string()])],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for DistrictNameFunc {
    fn name(&self) -> &str {
        "district_name"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let lang = match args.args.get(1) {
            None => "zh",
            Some(arg) => match kernel::str_param(name, "lang", arg)? {
                Some(lang) => lang,
                None => return kernel::all_null(args.return_field.data_type()),
            },
        };
        let lookup: fn(&str) -> Option<&'static str> = match lang {
            "zh" => district::name_zh,
            "en" => district::name_en,
            other => return exec_err!("{name}: unknown lang {other:?}, expected 'zh' or 'en'"),
        };
        kernel::map_strings(name, &args.args[0], |code, out| match lookup(code) {
            Some(found) => {
                out.push_str(found);
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
    use crate::testing::{arr, assert_strings, invoke, lit, sql_value};
    use datafusion::common::ScalarValue;

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
            for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
                let out = invoke(
                    &DistrictNameFunc::new(),
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
        let f = DistrictNameFunc::new();
        let input = arr(
            &DataType::Utf8,
            &[Some("310108"), None, Some("110101"), Some("")],
        );
        let out = invoke(&f, vec![input])?;
        assert_strings(&out, &[Some("闸北区"), None, None, None]);
        let out = invoke(&f, vec![lit("310101".into()), lit(ScalarValue::Utf8(None))])?;
        assert_strings(&out, &[None]);
        Ok(())
    }

    #[test]
    fn unknown_lang_is_an_error() {
        let err = invoke(
            &DistrictNameFunc::new(),
            vec![lit("310101".into()), lit("fr".into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown lang \"fr\""), "{err}");
    }

    #[tokio::test]
    async fn sql_names_a_district() -> Result<()> {
        assert_eq!(sql_value("SELECT district_name('310101')").await?, "黄浦区");
        assert_eq!(
            sql_value("SELECT district_name('310115', 'en')").await?,
            "Pudong New Area"
        );
        Ok(())
    }
}
