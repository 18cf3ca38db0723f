//! `mask_token(s, key_name)`: a keyed HMAC-SHA256 token, the join key shared across bureaus.
//!
//! A plain hash of an ID number is no mask: the ID space is small enough to hash entirely. The
//! token is keyed, and the key is looked up by name in the server's [`SecretStore`]; SQL never
//! sees key bytes. The function carries secrets, so only policies may call it
//! ([`crate::POLICY_ONLY`]).

use std::sync::Arc;

use datafusion::common::{Result, exec_err, internal_err};
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_STRING;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, Signature, Volatility,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::function::Function;
use crate::kernel::{self, args, string};
use crate::secrets::SecretStore;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a token: 128 bits, written as 32 hex characters.
pub const TOKEN_BYTES: usize = 16;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes the token of `s` under the keyed `mac` (cloned, so the key schedule is computed
/// once per batch, not per row).
pub(crate) fn token_into(mac: &HmacSha256, s: &str, out: &mut String) {
    let mut mac = mac.clone();
    mac.update(s.as_bytes());
    let tag = mac.finalize().into_bytes();
    for &b in &tag[..TOKEN_BYTES] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// The MAC keyed with `key`; HMAC takes keys of any length, so this fails only on a bug.
pub(crate) fn keyed(key: &[u8]) -> Result<HmacSha256> {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => Ok(mac),
        Err(_) => internal_err!("HMAC-SHA256 refused a key of {} bytes", key.len()),
    }
}

/// `mask_token(s, key_name)`, reading its keys from `secrets`.
pub(crate) struct MaskToken {
    secrets: Arc<SecretStore>,
}

impl MaskToken {
    pub(crate) fn new(secrets: Arc<SecretStore>) -> Self {
        Self { secrets }
    }
}

impl Function for MaskToken {
    const NAME: &'static str = "mask_token";

    fn invoke(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = Self::NAME;
        let Some(key_name) = kernel::str_param(name, "key_name", &args.args[1])? else {
            return kernel::all_null(args.return_field.data_type());
        };
        let Some(key) = self.secrets.key(key_name) else {
            return exec_err!(
                "{name}: no key named {key_name:?} is configured; it must be configured in \
                 the server's secret store (an environment variable named in its \
                 configuration)"
            );
        };
        let mac = keyed(key)?;
        kernel::map_strings(name, &args.args[0], |s, out| {
            token_into(&mac, s, out);
            true
        })
    }

    // Two instances are the same function only when they read the same store: a plan built
    // with one store must not be taken for a plan built with another.
    fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.secrets, &other.secrets)
    }

    fn signature() -> Signature {
        Signature::one_of(vec![args(vec![string(), string()])], Volatility::Immutable)
    }

    fn doc() -> Documentation {
        Documentation::builder(
            DOC_SECTION_STRING,
            "A keyed token of a string: the first 16 bytes of HMAC-SHA256 over its UTF-8 bytes, \
             as 32 lower-case hex characters. Deterministic for one key, so bureaus can join on \
             it; different for different keys; not reversible and, unlike a plain hash, not \
             guessable without the key. The key is named, never written in SQL: `key_name` must \
             be a key configured in the server's secret store. Only access policies may call \
             this function. The result has the input's string type; NULL in gives NULL out.",
            "mask_token(str, key_name)",
        )
        .with_sql_example(
            r#"```sql
-- In a masking policy of the security catalog, with key 'bureau_join' configured:
> SELECT mask_token(id_number, 'bureau_join') FROM residents LIMIT 1;
+-------------------------------------------------------+
| mask_token(residents.id_number,Utf8("bureau_join"))   |
+-------------------------------------------------------+
| 3f0c5e8a9b1d2c4e6f708192a3b4c5d6                      |
+-------------------------------------------------------+
```"#,
        )
        .with_standard_argument("str", Some("String"))
        .with_argument(
            "key_name",
            "Name of a key in the server's secret store, a constant string.",
        )
        .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{SQL_KEYS, arr, assert_strings, invoke, lit, sql_value, values};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::common::ScalarValue;

    fn store() -> Arc<SecretStore> {
        let mut store = SecretStore::new();
        store.insert("rfc4231_1", vec![0x0b; 20]);
        store.insert("rfc4231_2", b"Jefe".to_vec());
        store.insert("empty", Vec::new());
        Arc::new(store)
    }

    fn token(key: &[u8], s: &str) -> String {
        let mut out = String::new();
        token_into(&keyed(key).unwrap(), s, &mut out);
        out
    }

    #[test]
    fn tokens_are_the_first_half_of_rfc_4231_macs() {
        // RFC 4231 test cases 1 and 2, truncated to 16 bytes.
        assert_eq!(
            token(&[0x0b; 20], "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b"
        );
        assert_eq!(
            token(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn every_string_type_keeps_its_type_and_nulls() -> Result<()> {
        let f = MaskToken::new(store()).udf();
        for dt in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
            let input = arr(&dt, &[Some("Hi There"), None, Some("Hi There")]);
            let out = invoke(&f, vec![input, lit("rfc4231_1".into())])?;
            assert_eq!(out.data_type(), dt);
            let t = "b0344c61d8db38535ca8afceaf0bf12b";
            assert_strings(&out, &[Some(t), None, Some(t)]);
        }
        let out = invoke(
            &f,
            vec![
                lit(ScalarValue::LargeUtf8(Some(
                    "what do ya want for nothing?".into(),
                ))),
                lit("rfc4231_2".into()),
            ],
        )?;
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::LargeUtf8(_))
        ));
        assert_strings(&out, &[Some("5bdcc146bf60754e6a042426089575c7")]);
        Ok(())
    }

    #[test]
    fn different_keys_give_different_tokens_and_empty_values_are_tokens_too() -> Result<()> {
        let f = MaskToken::new(store()).udf();
        let input = || arr(&DataType::Utf8, &[Some("310101198503121236"), Some("")]);
        let a = values(&invoke(&f, vec![input(), lit("rfc4231_1".into())])?);
        let b = values(&invoke(&f, vec![input(), lit("rfc4231_2".into())])?);
        let c = values(&invoke(&f, vec![input(), lit("empty".into())])?);
        for row in 0..2 {
            assert_ne!(a[row], b[row]);
            assert_ne!(a[row], c[row]);
            assert_ne!(b[row], c[row]);
        }
        for v in a.iter().chain(&b).chain(&c) {
            let s = v.try_as_str().flatten().unwrap();
            assert_eq!(s.len(), 32);
            assert!(
                s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{s}"
            );
        }
        Ok(())
    }

    #[test]
    fn an_unknown_key_name_is_an_error_that_names_it_and_shows_no_key() {
        let f = MaskToken::new(store()).udf();
        let err = invoke(&f, vec![lit("x".into()), lit("payroll".into())])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"payroll\"") && err.contains("must be configured"),
            "{err}"
        );
        assert!(!err.contains("Jefe") && !err.contains("rfc4231"), "{err}");
    }

    #[test]
    fn key_name_must_be_a_constant_and_null_gives_null() -> Result<()> {
        let f = MaskToken::new(store()).udf();
        let column = arr(&DataType::Utf8, &[Some("rfc4231_1")]);
        let err = invoke(&f, vec![lit("x".into()), column]).unwrap_err();
        assert!(
            err.to_string().contains("key_name must be a constant"),
            "{err}"
        );
        let out = invoke(&f, vec![lit("x".into()), lit(ScalarValue::Utf8(None))])?;
        assert_strings(&out, &[None]);
        Ok(())
    }

    #[tokio::test]
    async fn sql_tokens_are_the_mac_under_the_named_key_of_the_session_store() -> Result<()> {
        let id = "310101198503121236";
        let query = |key: &str| format!("SELECT mask_token('{id}', '{key}')");
        let [(test_key, test_bytes), (other_key, _)] = SQL_KEYS;
        let first = sql_value(&query(test_key)).await?;
        assert_eq!(first, sql_value(&query(test_key)).await?);
        assert_eq!(first.len(), 32);
        assert!(
            first
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{first}"
        );
        assert_eq!(first, token(test_bytes, id));
        assert_ne!(first, sql_value(&query(other_key)).await?);
        // Over a column: equal values, equal tokens.
        let distinct = sql_value(
            "SELECT count(DISTINCT mask_token(column1, 'test_key')) \
             FROM (VALUES ('a'), ('b'), ('a'), ('b'))",
        )
        .await?;
        assert_eq!(distinct, "2");
        let null = sql_value("SELECT mask_token(CAST(NULL AS VARCHAR), 'test_key')").await?;
        assert_eq!(null, "NULL");
        Ok(())
    }

    #[test]
    fn instances_are_equal_only_over_the_same_store() {
        let shared = store();
        let a = MaskToken::new(Arc::clone(&shared)).udf();
        let b = MaskToken::new(shared).udf();
        let c = MaskToken::new(store()).udf();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let shown = format!("{a:?}");
        assert!(
            shown.contains("mask_token") && !shown.contains("Jefe"),
            "{shown}"
        );
    }
}
