//! Named keys for the keyed functions (`mask_token`).
//!
//! The server fills a [`SecretStore`] from environment variables named in its configuration;
//! SQL names a key, never passes one. Key bytes never leave this module except into a MAC, and
//! nothing here prints them: `Debug` shows the names only.

use std::collections::BTreeMap;
use std::fmt;

/// Named keys for keyed functions, loaded by the server from environment variables named in
/// its config.
#[derive(Default, Clone)]
pub struct SecretStore {
    keys: BTreeMap<String, Vec<u8>>,
}

impl SecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the key called `name`.
    pub fn insert(&mut self, name: impl Into<String>, key: Vec<u8>) {
        self.keys.insert(name.into(), key);
    }

    /// Whether a key called `name` is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }

    /// The names of the configured keys, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The key bytes called `name`.
    pub(crate) fn key(&self, name: &str) -> Option<&[u8]> {
        self.keys.get(name).map(Vec::as_slice)
    }
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("names", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_but_never_key_bytes() {
        let mut store = SecretStore::new();
        store.insert("bureau_join", b"s3cr3t-key-material".to_vec());
        store.insert("health", vec![0xde, 0xad, 0xbe, 0xef]);
        let shown = format!("{store:?} {store:#?}");
        assert!(
            shown.contains("bureau_join") && shown.contains("health"),
            "{shown}"
        );
        for leak in ["s3cr3t", "222", "0xde", "de, ad", "[115, 51"] {
            assert!(!shown.contains(leak), "{leak} in {shown}");
        }
    }

    #[test]
    fn insert_replaces_and_names_are_sorted() {
        let mut store = SecretStore::new();
        assert!(!store.contains("b"));
        store.insert("b", vec![1]);
        store.insert(String::from("a"), vec![2]);
        store.insert("b", vec![3]);
        assert!(store.contains("a") && store.contains("b"));
        assert_eq!(store.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(store.key("b"), Some(&[3u8][..]));
        assert_eq!(store.key("c"), None);
    }
}
