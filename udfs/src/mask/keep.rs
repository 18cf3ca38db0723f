//! `mask_keep(s, head, tail [, mask_char])`: the general masking function the others build on.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::kernel::{self, args, int64, string};

/// Writes `s` into `out` with all but its first `head` and last `tail` characters replaced by
/// one `mask` each. A string no longer than `head + tail` characters is masked entirely, so
/// a short value is never shown whole.
pub(crate) fn keep_into(s: &str, head: usize, tail: usize, mask: char, out: &mut String) {
    // ID and phone numbers are ASCII: characters are bytes, no decoding needed.
    if s.is_ascii() {
        let len = s.len();
        if len <= head.saturating_add(tail) {
            out.extend(std::iter::repeat_n(mask, len));
        } else {
            out.push_str(&s[..head]);
            out.extend(std::iter::repeat_n(mask, len - head - tail));
            out.push_str(&s[len - tail..]);
        }
        return;
    }
    let chars = s.chars().count();
    if chars <= head.saturating_add(tail) {
        out.extend(std::iter::repeat_n(mask, chars));
        return;
    }
    let hidden = chars - head - tail;
    // Byte offsets of the first hidden character and of the kept tail.
    let mut offsets = s.char_indices().map(|(i, _)| i);
    let head_end = offsets.nth(head).unwrap_or(s.len());
    let tail_start = offsets.nth(hidden - 1).unwrap_or(s.len());
    out.push_str(&s[..head_end]);
    out.extend(std::iter::repeat_n(mask, hidden));
    out.push_str(&s[tail_start..]);
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_STRING,
        "Masks a string, keeping its first `head` and last `tail` characters (Unicode \
         characters, not bytes) and replacing each other character by one mask character. \
         A string no longer than `head + tail` is masked entirely. The result has the \
         input's string type; NULL in gives NULL out.",
        "mask_keep(str, head, tail[, mask_char])",
    )
    .with_sql_example(
        r#"```sql
> SELECT mask_keep('13812341234', 3, 4);
+---------------------------------------------------+
| mask_keep(Utf8("13812341234"),Int64(3),Int64(4))  |
+---------------------------------------------------+
| 138****1234                                       |
+---------------------------------------------------+
> SELECT mask_keep('上海市黄浦区', 2, 1, '#');
-- 上海###区
```"#,
    )
    .with_standard_argument("str", Some("String"))
    .with_argument(
        "head",
        "Number of leading characters to keep (a constant, not negative).",
    )
    .with_argument(
        "tail",
        "Number of trailing characters to keep (a constant, not negative).",
    )
    .with_argument(
        "mask_char",
        "The mask character, exactly one character; default `*`.",
    )
    .build()
});

/// `mask_keep(s, head, tail [, mask_char])`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskKeepFunc {
    signature: Signature,
}

impl Default for MaskKeepFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskKeepFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    args(vec![string(), int64(), int64()]),
                    args(vec![string(), int64(), int64(), string()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for MaskKeepFunc {
    fn name(&self) -> &str {
        "mask_keep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        kernel::same_string_type(self.name(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let a = &args.args;
        let head = kernel::count_param(name, "head", &a[1])?;
        let tail = kernel::count_param(name, "tail", &a[2])?;
        let mask = match a.get(3) {
            None => Some('*'),
            Some(arg) => match kernel::str_param(name, "mask_char", arg)? {
                None => None,
                Some(m) => {
                    let mut chars = m.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Some(c),
                        _ => {
                            return exec_err!(
                                "{name}: mask_char must be exactly one character, got {m:?}"
                            );
                        }
                    }
                }
            },
        };
        let (Some(head), Some(tail), Some(mask)) = (head, tail, mask) else {
            return kernel::all_null(args.return_field.data_type());
        };
        kernel::map_strings(name, &a[0], |s, out| {
            keep_into(s, head, tail, mask, out);
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
    use crate::testing::{arr, assert_strings, invoke, lit, sql_value};
    use datafusion::common::ScalarValue;

    fn keep(s: &str, head: usize, tail: usize, mask: char) -> String {
        let mut out = String::new();
        keep_into(s, head, tail, mask, &mut out);
        out
    }

    #[test]
    fn keeps_head_and_tail_characters_not_bytes() {
        assert_eq!(keep("13812341234", 3, 4, '*'), "138****1234");
        assert_eq!(keep("上海市黄浦区", 2, 1, '#'), "上海###区");
        assert_eq!(keep("ab😀cd", 1, 1, '●'), "a●●●d");
        assert_eq!(keep("abcdef", 0, 0, '*'), "******");
        assert_eq!(keep("abcdef", 0, 2, '*'), "****ef");
        assert_eq!(keep("abcdef", 2, 0, '*'), "ab****");
    }

    #[test]
    fn short_strings_are_masked_entirely() {
        assert_eq!(keep("abcdefg", 3, 4, '*'), "*******");
        assert_eq!(keep("张三", 1, 1, '*'), "**");
        assert_eq!(keep("", 3, 4, '*'), "");
        assert_eq!(keep("abc", usize::MAX, usize::MAX, '*'), "***");
    }

    #[test]
    fn every_string_type_keeps_its_type_and_nulls() -> Result<()> {
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let input = arr(&dt, &[Some("13812341234"), None, Some("张三丰"), Some("")]);
            let out = invoke(
                &MaskKeepFunc::new(),
                vec![
                    input,
                    lit(ScalarValue::Int64(Some(1))),
                    lit(ScalarValue::Int64(Some(1))),
                ],
            )?;
            assert_eq!(out.data_type(), dt);
            assert_strings(&out, &[Some("1*********4"), None, Some("张*丰"), Some("")]);
        }
        Ok(())
    }

    #[test]
    fn scalar_in_scalar_out_and_null_parameters_give_null() -> Result<()> {
        let f = MaskKeepFunc::new();
        let s = lit(ScalarValue::Utf8View(Some("abcdef".into())));
        let out = invoke(
            &f,
            vec![
                s.clone(),
                lit(1i64.into()),
                lit(2i64.into()),
                lit("#".into()),
            ],
        )?;
        let ColumnarValue::Scalar(ScalarValue::Utf8View(Some(v))) = out else {
            panic!("expected a Utf8View scalar, got {out:?}");
        };
        assert_eq!(v, "a###ef");
        let out = invoke(
            &f,
            vec![s.clone(), lit(ScalarValue::Int64(None)), lit(2i64.into())],
        )?;
        assert_strings(&out, &[None]);
        let out = invoke(
            &f,
            vec![
                lit(ScalarValue::Utf8(None)),
                lit(1i64.into()),
                lit(2i64.into()),
            ],
        )?;
        assert_strings(&out, &[None]);
        Ok(())
    }

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        let f = MaskKeepFunc::new();
        let s = lit("abcdef".into());
        let err = invoke(&f, vec![s.clone(), lit((-1i64).into()), lit(2i64.into())]).unwrap_err();
        assert!(
            err.to_string().contains("head must not be negative"),
            "{err}"
        );
        let err = invoke(
            &f,
            vec![
                s.clone(),
                lit(1i64.into()),
                lit(2i64.into()),
                lit("##".into()),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one character"), "{err}");
        let err = invoke(
            &f,
            vec![
                s.clone(),
                lit(1i64.into()),
                lit(2i64.into()),
                lit("".into()),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly one character"), "{err}");
        let column = arr(&DataType::Int64, &[]);
        let err = invoke(&f, vec![s, column, lit(2i64.into())]).unwrap_err();
        assert!(err.to_string().contains("head must be a constant"), "{err}");
    }

    #[tokio::test]
    async fn sql_masks_with_a_custom_character() -> Result<()> {
        assert_eq!(
            sql_value("SELECT mask_keep('13812341234', 3, 4)").await?,
            "138****1234"
        );
        assert_eq!(
            sql_value("SELECT mask_keep('上海市黄浦区', 2, 1, '#')").await?,
            "上海###区"
        );
        Ok(())
    }

    #[tokio::test]
    async fn sql_wrong_arguments_are_planning_errors_naming_the_function() {
        for sql in [
            "SELECT mask_keep('abc')",
            "SELECT mask_keep('abc', 'x', 1)",
            "SELECT mask_keep('abc', 1, 2, '*', 5)",
        ] {
            let err = sql_value(sql).await.unwrap_err().to_string();
            assert!(err.contains("mask_keep"), "{sql}: {err}");
        }
    }
}
