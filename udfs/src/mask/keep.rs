//! The masks that keep a string's first and last characters: `mask_keep(s, head, tail
//! [, mask_char])`, the general one, and the fixed patterns built on it for ID numbers
//! (`mask_id_card`) and phone numbers (`mask_phone`).

use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, Signature, Volatility,
};

use crate::domain::phone::CHINA_PREFIX;
use crate::function::{Function, StringFn};
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

/// `mask_keep`'s `mask_char`, which must be one character.
fn one_char(m: &str) -> Result<char> {
    let mut chars = m.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => exec_err!("mask_keep: mask_char must be exactly one character, got {m:?}"),
    }
}

/// `mask_keep(s, head, tail [, mask_char])`.
pub(crate) struct MaskKeep;

impl Function for MaskKeep {
    const NAME: &'static str = "mask_keep";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = &args.args;
        let head = kernel::count_param(Self::NAME, "head", &a[1])?;
        let tail = kernel::count_param(Self::NAME, "tail", &a[2])?;
        let mask = kernel::option(Self::NAME, "mask_char", a.get(3), "*", one_char)?;
        let (Some(head), Some(tail), Some(mask)) = (head, tail, mask) else {
            return kernel::all_null(args.return_field.data_type());
        };
        kernel::map_strings(Self::NAME, &a[0], |s, out| {
            keep_into(s, head, tail, mask, out);
            true
        })
    }

    fn signature() -> Signature {
        Signature::one_of(
            vec![
                args(vec![string(), int64(), int64()]),
                args(vec![string(), int64(), int64(), string()]),
            ],
            Volatility::Immutable,
        )
    }

    fn doc() -> Documentation {
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
    }
}

/// `mask_id_card(s)`: a resident ID number with its division code and last four kept, that
/// is `mask_keep(s, 6, 4)`.
pub(crate) struct MaskIdCard;

impl StringFn for MaskIdCard {
    const NAME: &'static str = "mask_id_card";
    const SECTION: DocSection = DOC_SECTION_STRING;
    const ABOUT: &'static str = "Masks a resident ID number, keeping the first 6 characters (the \
        division code) and the last 4; the birth date and sequence are hidden, one `*` per \
        character. A value of 10 characters or fewer is masked entirely. The number is not \
        validated.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT mask_id_card('310101198503121236');
+------------------------------------------+
| mask_id_card(Utf8("310101198503121236")) |
+------------------------------------------+
| 310101********1236                       |
+------------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["mask_keep"];

    fn apply(s: &str, out: &mut String) -> bool {
        keep_into(s, 6, 4, '*', out);
        true
    }
}

/// `mask_phone(s)`: a phone number with its first three and last four digits kept.
pub(crate) struct MaskPhone;

impl StringFn for MaskPhone {
    const NAME: &'static str = "mask_phone";
    const SECTION: DocSection = DOC_SECTION_STRING;
    const ABOUT: &'static str = "Masks a phone number, keeping the first 3 and last 4 characters \
        after an optional `+86` prefix (which is kept); one `*` per hidden character. A number of \
        7 characters or fewer (after the prefix) is masked entirely.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT mask_phone('+8613912345678');
+------------------------------------+
| mask_phone(Utf8("+8613912345678")) |
+------------------------------------+
| +86139****5678                     |
+------------------------------------+
```"#;
    const RELATED: &'static [&'static str] = &["mask_keep"];

    /// An optional `+86` kept, then 3 + 4 characters kept.
    fn apply(s: &str, out: &mut String) -> bool {
        let rest = match s.strip_prefix(CHINA_PREFIX) {
            Some(rest) => {
                out.push_str(CHINA_PREFIX);
                rest
            }
            None => s,
        };
        keep_into(rest, 3, 4, '*', out);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_vectors::{cases, str_field};
    use crate::testing::{arr, assert_maps_strings, invoke, lit};
    use datafusion::arrow::datatypes::DataType;
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
        for dt in crate::testing::STRING_TYPES {
            let input = arr(&dt, &[Some("13812341234"), None, Some("张三丰"), Some("")]);
            let one = || lit(ScalarValue::Int64(Some(1)));
            let out = invoke(&MaskKeep.udf(), vec![input, one(), one()])?;
            assert_eq!(out.data_type(), dt);
            crate::testing::assert_strings(
                &out,
                &[Some("1*********4"), None, Some("张*丰"), Some("")],
            );
        }
        Ok(())
    }

    #[test]
    fn scalar_in_scalar_out_and_null_parameters_give_null() -> Result<()> {
        let s = lit(ScalarValue::Utf8View(Some("abcdef".into())));
        let (one, two) = (lit(1i64.into()), lit(2i64.into()));
        let out = invoke(
            &MaskKeep.udf(),
            vec![s.clone(), one.clone(), two.clone(), lit("#".into())],
        )?;
        let ColumnarValue::Scalar(ScalarValue::Utf8View(Some(v))) = out else {
            panic!("expected a Utf8View scalar, got {out:?}");
        };
        assert_eq!(v, "a###ef");
        let null = lit(ScalarValue::Int64(None));
        let out = invoke(&MaskKeep.udf(), vec![s, null, two.clone()])?;
        crate::testing::assert_strings(&out, &[None]);
        let out = invoke(
            &MaskKeep.udf(),
            vec![lit(ScalarValue::Utf8(None)), one, two],
        )?;
        crate::testing::assert_strings(&out, &[None]);
        Ok(())
    }

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        let fails = |head: i64, mask: Option<&str>, needle: &str| {
            let mut args = vec![lit("abcdef".into()), lit(head.into()), lit(2i64.into())];
            args.extend(mask.map(|m| lit(m.into())));
            let err = invoke(&MaskKeep.udf(), args).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        };
        fails(-1, None, "head must not be negative");
        fails(1, Some("##"), "exactly one character");
        fails(1, Some(""), "exactly one character");
        let column = arr(&DataType::Int64, &[]);
        let err = invoke(
            &MaskKeep.udf(),
            vec![lit("abcdef".into()), column, lit(2i64.into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("head must be a constant"), "{err}");
    }

    #[test]
    fn masks_the_id_and_phone_vectors() {
        for (f, kind) in [(MaskIdCard.udf(), "id"), (MaskPhone.udf(), "phone")] {
            let vectors = cases("masking").iter().filter(|c| c["kind"] == kind);
            let (inputs, expected): (Vec<_>, Vec<_>) = vectors
                .map(|c| (Some(str_field(c, "input")), Some(str_field(c, "expected"))))
                .unzip();
            assert_maps_strings(&f, &inputs, &expected);
        }
    }

    #[test]
    fn id_card_keeps_type_and_nulls_and_hides_short_values() {
        assert_maps_strings(
            &MaskIdCard.udf(),
            &[
                Some("31010419900701008X"),
                None,
                Some("3101011985"),
                Some("310101850312123"),
            ],
            &[
                Some("310104********008X"),
                None,
                Some("**********"),
                Some("310101*****2123"),
            ],
        );
    }

    #[test]
    fn phone_keeps_type_and_nulls_and_hides_short_numbers() {
        assert_maps_strings(
            &MaskPhone.udf(),
            &[
                Some("13812341234"),
                None,
                Some("+861234567"),
                Some("021-63211234"),
            ],
            &[
                Some("138****1234"),
                None,
                Some("+86*******"),
                Some("021*****1234"),
            ],
        );
    }
}
