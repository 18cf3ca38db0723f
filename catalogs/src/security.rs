//! The first slice of the security catalog: principals and their credentials. Roles and
//! attributes are carried on every principal so that grants and policies are additions.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};

use crate::error::{ConfigErrors, Error, Result};
use crate::raw::RawSecurityFile;

/// A value of a principal attribute, e.g. `bureau = "police"` or `districts = ["310115"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

/// Who is asking: resolved once per request and carried through planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    /// `user` or `service`.
    pub kind: String,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, AttrValue>,
}

#[derive(Debug)]
struct Entry {
    principal: Arc<Principal>,
    /// PHC string of an argon2 hash; `None` for principals that cannot log in with a password.
    password_hash: Option<String>,
}

/// Principals by id, read from `security.toml`.
#[derive(Debug, Default)]
pub struct SecurityCatalog {
    principals: HashMap<String, Entry>,
}

/// An argon2id hash of a random password: unknown users are checked against it so that a
/// wrong user name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no principal has this password"))
}

impl SecurityCatalog {
    pub(crate) fn load(path: &Path, errors: &mut ConfigErrors) -> Self {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(path, "", "", format!("cannot read: {e}"));
                return Self::default();
            }
        };
        let raw: RawSecurityFile = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(path, "", "", e.to_string());
                return Self::default();
            }
        };
        let mut principals = HashMap::new();
        for p in raw.principal {
            let entry = format!("principal \"{}\"", p.id);
            if p.id.is_empty() {
                errors.push(path, "principal", "id", "must not be empty");
                continue;
            }
            if !matches!(p.kind.as_str(), "user" | "service") {
                errors.push(
                    path,
                    &entry,
                    "kind",
                    format!("unknown kind `{}`; use user or service", p.kind),
                );
            }
            if let Some(h) = &p.password_hash
                && let Err(e) = PasswordHash::new(h)
            {
                errors.push(
                    path,
                    &entry,
                    "password_hash",
                    format!("not a PHC hash string ({e}); create one with `bund hash-password`"),
                );
            }
            let mut attributes = BTreeMap::new();
            for (k, v) in p.attributes {
                let value = match v {
                    toml::Value::String(s) => AttrValue::Str(s),
                    toml::Value::Integer(i) => AttrValue::Int(i),
                    toml::Value::Boolean(b) => AttrValue::Bool(b),
                    toml::Value::Array(items) => {
                        let mut list = Vec::with_capacity(items.len());
                        for item in items {
                            match item {
                                toml::Value::String(s) => list.push(s),
                                other => {
                                    errors.push(
                                        path,
                                        &entry,
                                        format!("attributes.{k}"),
                                        format!(
                                            "list items must be strings, found {}",
                                            other.type_str()
                                        ),
                                    );
                                }
                            }
                        }
                        AttrValue::List(list)
                    }
                    other => {
                        errors.push(
                            path,
                            &entry,
                            format!("attributes.{k}"),
                            format!(
                                "must be a string, integer, boolean or list of strings, found {}",
                                other.type_str()
                            ),
                        );
                        continue;
                    }
                };
                attributes.insert(k, value);
            }
            let principal = Arc::new(Principal {
                id: p.id.clone(),
                kind: p.kind,
                roles: p.roles,
                attributes,
            });
            if principals
                .insert(
                    p.id.clone(),
                    Entry {
                        principal,
                        password_hash: p.password_hash,
                    },
                )
                .is_some()
            {
                errors.push(path, &entry, "id", "duplicate principal id");
            }
        }
        Self { principals }
    }

    /// The principal with this id, if it still exists.
    pub fn principal(&self, id: &str) -> Option<Arc<Principal>> {
        self.principals.get(id).map(|e| Arc::clone(&e.principal))
    }

    /// Checks a user name and password. Unknown users, principals without a password and wrong
    /// passwords all give the same error after the same work.
    pub fn authenticate(&self, user: &str, password: &str) -> Result<Arc<Principal>> {
        let entry = self.principals.get(user);
        let hash: &str = match entry.and_then(|e| e.password_hash.as_deref()) {
            Some(h) => h,
            None => dummy_hash(),
        };
        let ok = PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        match entry {
            Some(e) if ok && e.password_hash.is_some() => Ok(Arc::clone(&e.principal)),
            _ => Err(Error::BadCredentials),
        }
    }

    pub fn len(&self) -> usize {
        self.principals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

/// Hashes a password for `security.toml` (argon2id, default parameters, random salt).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}
