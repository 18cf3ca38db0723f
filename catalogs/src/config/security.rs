//! The security catalog's principals, roles, credentials and secrets. Grants and policies
//! are read here as data; the planner validates them against the datasets and resolves them
//! per principal (`bund_planner::access`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::PasswordHash;

use bund_udfs::SecretStore;
use sha2::{Digest, Sha256};

use crate::config::files::{RawGrant, RawPolicy, RawSecurityFile, Word};
use crate::error::{ConfigErrors, Error, Result};

/// The principal of requests without credentials, and its role: grants to it make datasets
/// available to anyone (unconditionally open data only).
pub const ANONYMOUS: &str = "anonymous";

/// Shortest key accepted for a `[[secret]]`.
const MIN_SECRET_BYTES: usize = 16;

/// A value of a principal attribute, e.g. `bureau = "police"` or `districts = ["310115"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

/// What kind of principal an entry of `security.toml` is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person, who logs in with a password.
    #[default]
    User,
    /// An application, which sends an API key.
    Service,
    /// Requests without credentials.
    Anonymous,
}

impl std::str::FromStr for PrincipalKind {
    type Err = ();

    /// `anonymous` is not a kind an entry may declare.
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "user" => Ok(Self::User),
            "service" => Ok(Self::Service),
            _ => Err(()),
        }
    }
}

/// Who is asking: resolved once per request and carried through planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub kind: PrincipalKind,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, AttrValue>,
}

impl Principal {
    /// The principal of requests without credentials.
    pub fn is_anonymous(&self) -> bool {
        self.id == ANONYMOUS
    }
}

#[derive(Debug)]
struct Entry {
    principal: Arc<Principal>,
    /// PHC string of an argon2 hash; `None` for principals that cannot log in with a password.
    password_hash: Option<String>,
}

/// Principals, roles, secrets, grants and policies, read from `security.toml`. Grants and
/// policies are validated against the datasets by the planner (`bund_planner::access`).
#[derive(Debug, Default)]
pub struct SecurityCatalog {
    principals: HashMap<String, Entry>,
    /// Principal ids in file order.
    order: Vec<String>,
    roles: BTreeMap<String, String>,
    /// SHA-256 (hex) of an API key → principal id.
    api_keys: HashMap<String, String>,
    secrets: Arc<SecretStore>,
    anonymous: Option<Arc<Principal>>,
    /// Grants, policies and the mask order, as written.
    raw: RawSecurityFile,
}

thread_local! {
    /// The working memory of argon2 (19 MiB with the default parameters), kept by each
    /// thread that checks passwords: allocating and freeing it for every login left the
    /// allocator holding up to 38 MiB per arena it had passed through.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks `password` against a PHC argon2 hash, with this thread's working memory.
fn verify(password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let check = || -> Option<bool> {
        let algorithm = argon2::Algorithm::new(hash.algorithm.as_str()).ok()?;
        let version = match hash.version {
            Some(v) => argon2::Version::try_from(v).ok()?,
            None => argon2::Version::default(),
        };
        let params = argon2::Params::try_from(hash).ok()?;
        let expected = hash.hash?;
        let mut salt = [0u8; argon2::password_hash::Salt::MAX_LENGTH];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?;
        let blocks = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        BLOCKS.with(|b| {
            let mut b = b.borrow_mut();
            if b.len() < blocks {
                b.resize(blocks, argon2::Block::default());
            }
            argon
                .hash_password_into_with_memory(password, salt, &mut out, &mut b[..blocks])
                .ok()
        })?;
        // Output compares in constant time
        Some(argon2::password_hash::Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// An argon2id hash of a random password: unknown users are checked against it so that a
/// wrong user name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no principal has this password"))
}

impl SecurityCatalog {
    /// The `[[grant]]` entries, as written.
    pub fn grants(&self) -> &[RawGrant] {
        &self.raw.grant
    }

    /// The `[[policy]]` entries, as written.
    pub fn policies(&self) -> &[RawPolicy] {
        &self.raw.policy
    }

    /// `mask_order`, when the file declares it.
    pub fn mask_order(&self) -> Option<&[String]> {
        self.raw.mask_order.as_deref()
    }

    pub(crate) fn load(path: &Path, env: &crate::Environment, errors: &mut ConfigErrors) -> Self {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(path, "", "", format!("cannot read: {e}"));
                return Self::default();
            }
        };
        let mut raw: RawSecurityFile = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(path, "", "", e.to_string());
                return Self::default();
            }
        };
        let mut roles = BTreeMap::new();
        for r in &raw.role {
            let entry = format!("role \"{}\"", r.id);
            if r.id.is_empty() || r.id == ANONYMOUS {
                errors.push(
                    path,
                    &entry,
                    "id",
                    format!("must not be empty or `{ANONYMOUS}`"),
                );
            }
            if roles.insert(r.id.clone(), r.description.clone()).is_some() {
                errors.push(path, &entry, "id", "duplicate role id");
            }
        }
        let secrets = Arc::new(load_secrets(&raw, path, env, errors));
        let mut principals = HashMap::new();
        let mut order = Vec::new();
        let mut api_keys = HashMap::new();
        for p in std::mem::take(&mut raw.principal) {
            let entry = format!("principal \"{}\"", p.id);
            if p.id.is_empty() {
                errors.push(path, "principal", "id", "must not be empty");
                continue;
            }
            if p.id == ANONYMOUS {
                errors.push(
                    path,
                    &entry,
                    "id",
                    format!("`{ANONYMOUS}` is the principal of requests without credentials"),
                );
            }
            for r in &p.roles {
                if !roles.contains_key(r) {
                    errors.push(
                        path,
                        &entry,
                        "roles",
                        format!("unknown role `{r}`; declare it with [[role]]"),
                    );
                }
            }
            for k in &p.api_keys {
                let valid = k.sha256.len() == 64
                    && k.sha256
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !valid {
                    errors.push(
                        path,
                        &entry,
                        format!("api_keys.{}", k.id),
                        "sha256 must be 64 lower-case hex characters; create a key with `bund new-api-key`",
                    );
                } else if api_keys.insert(k.sha256.clone(), p.id.clone()).is_some() {
                    errors.push(
                        path,
                        &entry,
                        format!("api_keys.{}", k.id),
                        "this key is already given to a principal",
                    );
                }
            }
            let kind = match &p.kind {
                Word::Known(kind) => *kind,
                Word::Unknown(other) => {
                    errors.push(
                        path,
                        &entry,
                        "kind",
                        format!("unknown kind `{other}`; use user or service"),
                    );
                    PrincipalKind::User
                }
            };
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
                kind,
                roles: p.roles,
                attributes,
            });
            order.push(p.id.clone());
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
        let anonymous_granted = raw
            .grant
            .iter()
            .any(|g| g.roles.iter().any(|r| r == ANONYMOUS));
        let anonymous = anonymous_granted.then(|| {
            Arc::new(Principal {
                id: ANONYMOUS.to_string(),
                kind: PrincipalKind::Anonymous,
                roles: vec![ANONYMOUS.to_string()],
                attributes: BTreeMap::new(),
            })
        });
        Self {
            principals,
            order,
            roles,
            api_keys,
            secrets,
            anonymous,
            raw,
        }
    }

    /// Every principal, in file order (the anonymous one excluded).
    pub fn principals(&self) -> impl Iterator<Item = Arc<Principal>> + '_ {
        self.order
            .iter()
            .filter_map(|id| self.principals.get(id))
            .map(|e| Arc::clone(&e.principal))
    }

    /// The principal of requests without credentials, when some grant names it.
    pub fn anonymous(&self) -> Option<Arc<Principal>> {
        self.anonymous.clone()
    }

    pub fn has_role(&self, id: &str) -> bool {
        self.roles.contains_key(id)
    }

    /// Declared roles with their descriptions.
    pub fn roles(&self) -> &BTreeMap<String, String> {
        &self.roles
    }

    /// Keys for keyed functions, by name.
    pub fn secrets(&self) -> &Arc<SecretStore> {
        &self.secrets
    }

    /// The principal an API key belongs to. Keys are compared by their SHA-256, so a lookup
    /// reveals nothing through timing about other keys.
    pub fn authenticate_api_key(&self, key: &str) -> Result<Arc<Principal>> {
        let digest = sha256_hex(key.as_bytes());
        self.api_keys
            .get(&digest)
            .and_then(|id| self.principal(id))
            .ok_or(Error::BadCredentials)
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
        let ok = PasswordHash::new(hash).is_ok_and(|h| verify(password.as_bytes(), &h));
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

/// Lower-case hex SHA-256, as `security.toml` stores API keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Reads every `[[secret]]` from its environment variable.
fn load_secrets(
    raw: &RawSecurityFile,
    path: &Path,
    env: &crate::Environment,
    errors: &mut ConfigErrors,
) -> SecretStore {
    let mut store = SecretStore::new();
    for s in &raw.secret {
        let entry = format!("secret \"{}\"", s.name);
        if store.contains(&s.name) {
            errors.push(path, &entry, "name", "duplicate secret name");
            continue;
        }
        let generate = match s.if_unset.as_deref() {
            None | Some("error") => false,
            Some("generate") => true,
            Some(other) => {
                errors.push(
                    path,
                    &entry,
                    "if_unset",
                    format!("unknown value `{other}`; use error or generate"),
                );
                false
            }
        };
        match env.var(&s.env) {
            Some(v) if v.len() >= MIN_SECRET_BYTES => store.insert(s.name.clone(), v.into_bytes()),
            Some(_) => errors.push(
                path,
                &entry,
                "env",
                format!(
                    "environment variable `{}` holds fewer than {MIN_SECRET_BYTES} bytes; use a long random key",
                    s.env
                ),
            ),
            None if generate => {
                tracing::warn!(
                    secret = %s.name,
                    env = %s.env,
                    "secret not set: using a random key for this process only; tokens will differ after a restart and between replicas"
                );
                let key: [u8; 32] = rand_key();
                store.insert(s.name.clone(), key.to_vec());
            }
            None => errors.push(
                path,
                &entry,
                "env",
                format!(
                    "environment variable `{}` is not set; set it to a long random key (e.g. `openssl rand -hex 32`)",
                    s.env
                ),
            ),
        }
    }
    store
}

fn rand_key() -> [u8; 32] {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_checks_against_its_hash_with_the_threads_reused_memory() {
        let hash = hash_password("right horse");
        let parsed = PasswordHash::new(&hash).unwrap();
        for _ in 0..3 {
            assert!(verify(b"right horse", &parsed));
            assert!(!verify(b"wrong horse", &parsed));
        }
        // the example's hashes (`admin-demo`)
        let example = "$argon2id$v=19$m=19456,t=2,p=1$irK/NcF8GOs5qBTuVWG1Gg$nF2Kpgl8XKhL0VXAY/MVo6bu6CGXb968MbIJ9UCjo7o";
        assert!(verify(b"admin-demo", &PasswordHash::new(example).unwrap()));
        assert!(!verify(b"admin-dem0", &PasswordHash::new(example).unwrap()));
    }
}
