//! The unified social credit code functions: `uscc_valid`, `uscc_region` and
//! `uscc_entity_type`.

use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Signature, Volatility};

use crate::domain::uscc;
use crate::function::{StringFn, Validator};
use crate::kernel::{self, args, boolean, string};

/// `uscc_valid(s [, strict])`: whether a string is a valid unified social credit code.
pub(crate) struct UsccValid;

impl Validator for UsccValid {
    const NAME: &'static str = "uscc_valid";
    const ABOUT: &'static str = "Whether a string is a valid unified social credit code (GB \
        32100): 18 upper-case characters of `0-9A-HJ-NPQRTUWXY`, a known registration authority \
        and entity type, a 6-digit division code and a matching MOD 31 check character. With \
        `strict` true the embedded organisation code (positions 9-17) must also pass its GB 11714 \
        check. NULL in gives NULL out.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT uscc_valid('91310000MA1FL2B37C'), uscc_valid('91310104132260588N', true);
+----------------------------------------+--------------------------------------------------------+
| uscc_valid(Utf8("91310000MA1FL2B37C")) | uscc_valid(Utf8("91310104132260588N"),Boolean(true)) |
+----------------------------------------+--------------------------------------------------------+
| true                                   | false                                                  |
+----------------------------------------+--------------------------------------------------------+
```"#;
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[(
        "strict",
        "Also check the organisation code, a constant; default false.",
    )];

    fn test(args: &[ColumnarValue]) -> Result<Option<impl Fn(&str) -> bool>> {
        let strict = args.get(1).map_or(Ok(Some(false)), |arg| {
            kernel::bool_param(Self::NAME, "strict", arg)
        })?;
        Ok(strict.map(|strict| move |s: &str| uscc::is_valid(s, strict)))
    }

    fn signature() -> Signature {
        Signature::one_of(
            vec![args(vec![string()]), args(vec![string(), boolean()])],
            Volatility::Immutable,
        )
    }

    fn syntax() -> String {
        "uscc_valid(str[, strict])".into()
    }
}

/// Writes `part` of `s` if `s` is a valid code; `false` (NULL) otherwise.
fn valid_part(s: &str, part: Option<&str>, out: &mut String) -> bool {
    match part.filter(|_| uscc::is_valid(s, false)) {
        Some(part) => {
            out.push_str(part);
            true
        }
        None => false,
    }
}

/// `uscc_region(s)`: the division code in a unified social credit code.
pub(crate) struct UsccRegion;

impl StringFn for UsccRegion {
    const NAME: &'static str = "uscc_region";
    const ABOUT: &'static str = "The 6-digit division code (positions 3-8) of a unified social \
        credit code: where the entity was registered (310000 for the municipality itself). NULL \
        unless the code is valid (see uscc_valid). The result has the input's string type.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT uscc_region('91310115MA1H7K4D9D');
+-----------------------------------------+
| uscc_region(Utf8("91310115MA1H7K4D9D")) |
+-----------------------------------------+
| 310115                                  |
+-----------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["uscc_valid", "district_name"];

    fn apply(s: &str, out: &mut String) -> bool {
        valid_part(s, uscc::region(s), out)
    }
}

/// `uscc_entity_type(s)`: the kind of entity a unified social credit code names.
pub(crate) struct UsccEntityType;

impl StringFn for UsccEntityType {
    const NAME: &'static str = "uscc_entity_type";
    const ABOUT: &'static str = "The entity type of a unified social credit code (its \
        registration authority and type characters, GB 32100 table 1) as a snake-case English \
        name: 'enterprise', 'individual_business' (个体工商户, linked to a natural person: personal \
        data), 'farmers_cooperative', 'public_institution', 'social_group', 'foundation', \
        'law_firm', … NULL unless the code is valid (see uscc_valid). The result has the input's \
        string type.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT uscc_entity_type('92310106MA1JT8QX1Q');
+----------------------------------------------+
| uscc_entity_type(Utf8("92310106MA1JT8QX1Q")) |
+----------------------------------------------+
| individual_business                          |
+----------------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["uscc_valid"];

    fn apply(s: &str, out: &mut String) -> bool {
        valid_part(s, uscc::entity_type(s), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};
    use crate::testing::{STRING_TYPES, arr, assert_maps_strings, invoke, lit, values};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::common::ScalarValue;

    fn inputs() -> Vec<Option<&'static str>> {
        cases("uscc")
            .iter()
            .map(|c| Some(str_field(c, "input")))
            .collect()
    }

    #[test]
    fn uscc_vectors_validate_lax_and_strict() -> Result<()> {
        let expect = |key: &str| -> Vec<ScalarValue> {
            cases("uscc")
                .iter()
                .map(|c| ScalarValue::Boolean(Some(c[key].as_bool().unwrap_or(false))))
                .collect()
        };
        for dt in STRING_TYPES {
            let out = invoke(&UsccValid.udf(), vec![arr(&dt, &inputs())])?;
            assert_eq!(values(&out), expect("valid"), "{dt}");
            let strict = lit(ScalarValue::Boolean(Some(true)));
            let out = invoke(&UsccValid.udf(), vec![arr(&dt, &inputs()), strict])?;
            assert_eq!(values(&out), expect("valid_strict_org"), "{dt}");
        }
        Ok(())
    }

    #[test]
    fn nulls_give_null() -> Result<()> {
        let input = arr(&DataType::Utf8, &[None, Some("91310000MA1FL2B37C")]);
        let out = invoke(&UsccValid.udf(), vec![input])?;
        let valid = ScalarValue::Boolean;
        assert_eq!(values(&out), [valid(None), valid(Some(true))]);
        let code = lit("91310000MA1FL2B37C".into());
        let out = invoke(
            &UsccValid.udf(),
            vec![code, lit(ScalarValue::Boolean(None))],
        )?;
        assert_eq!(values(&out), [valid(None)]);
        Ok(())
    }

    #[test]
    fn uscc_vectors_give_their_region_or_null() {
        let mut expected: Vec<_> = cases("uscc")
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
        let mut inputs = inputs();
        inputs.push(None);
        expected.push(None);
        assert_maps_strings(&UsccRegion.udf(), &inputs, &expected);
    }

    /// The English name of a vector's `type` ("2 个体工商户"), by its Chinese name.
    fn expected_name(case: &serde_json::Value) -> Option<&'static str> {
        let (_, zh) = case["type"].as_str()?.split_once(' ')?;
        let kind = uscc::KINDS.iter().find(|k| k.name_zh == zh)?;
        Some(kind.name)
    }

    #[test]
    fn uscc_vectors_give_their_type_or_null() -> Result<()> {
        for dt in STRING_TYPES {
            let out = invoke(&UsccEntityType.udf(), vec![arr(&dt, &inputs())])?;
            assert_eq!(out.data_type(), dt);
            for (case, got) in cases("uscc").iter().zip(values(&out)) {
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
    fn market_regulation_kinds_and_nulls() {
        assert_maps_strings(
            &UsccEntityType.udf(),
            &[
                Some("91310000MA1FL2B37C"),
                Some("92310106MA1JT8QX1Q"),
                Some("93310151MA1KW3N652"),
                None,
                Some("B1310000MA1FL2B37A"),
            ],
            &[
                Some("enterprise"),
                Some("individual_business"),
                Some("farmers_cooperative"),
                None,
                None,
            ],
        );
    }
}
