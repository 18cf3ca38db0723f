//! `mask_email(s)`: an e-mail address with the local part's first character and the domain.

use datafusion::logical_expr::DocSection;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;

use crate::function::StringFn;

/// What stands for the hidden part, whatever its length: the local part's length is not
/// disclosed.
const HIDDEN: &str = "***";

/// `mask_email(s)`.
pub(crate) struct MaskEmail;

impl StringFn for MaskEmail {
    const NAME: &'static str = "mask_email";
    const SECTION: DocSection = DOC_SECTION_STRING;
    const ABOUT: &'static str = "Masks an e-mail address, keeping the first character of the \
        local part and the domain; the rest of the local part becomes `***` whatever its length. \
        A value without `@` becomes `***`.";
    const EXAMPLE: &'static str = r#"```sql
> SELECT mask_email('zhangwei@example.cn');
+-----------------------------------------+
| mask_email(Utf8("zhangwei@example.cn")) |
+-----------------------------------------+
| z***@example.cn                         |
+-----------------------------------------+
```"#;

    /// The first character of the local part, `***`, then `@` and the domain (after the last
    /// `@`). Without an `@` the whole value is `***`.
    fn apply(s: &str, out: &mut String) -> bool {
        let Some(at) = s.rfind('@') else {
            out.push_str(HIDDEN);
            return true;
        };
        if let Some(first) = s[..at].chars().next() {
            out.push(first);
        }
        out.push_str(HIDDEN);
        out.push_str(&s[at..]);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_maps_strings;

    #[test]
    fn keeps_first_character_and_domain_only() {
        assert_maps_strings(
            &MaskEmail.udf(),
            &[
                Some("zhangwei@example.cn"),
                Some("z@example.cn"),
                None,
                Some("张伟@例子.中国"),
                Some("@example.cn"),
                Some("not-an-address"),
                Some("\"a@b\"@example.cn"),
            ],
            &[
                Some("z***@example.cn"),
                Some("z***@example.cn"),
                None,
                Some("张***@例子.中国"),
                Some("***@example.cn"),
                Some("***"),
                Some("\"***@example.cn"),
            ],
        );
    }
}
