//! Session tokens, statement tickets and prepared-statement handles: self-contained, signed
//! with HMAC-SHA256 under the server's key, bound to one principal and an expiry, so any
//! replica that shares the key can serve them and nobody else can use or alter them.
//! Expiries are read from a [`Clock`], which tests set.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};

const MAC_LEN: usize = 32;
const BINARY_PREFIX: &[u8] = b"BND1";

/// What a signed blob is for; a blob of one kind is refused where another is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Session,
    Ticket,
    Prepared,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) kind: Kind,
    /// The principal id.
    pub(crate) sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub(crate) exp: u64,
    /// The statement, for tickets and prepared handles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sql: Option<String>,
    /// Bound parameters as an Arrow IPC stream (base64), for tickets and prepared handles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) params: Option<String>,
    /// A query id, so that a ticket can be cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) qid: Option<String>,
    /// The configuration version the ticket or handle was issued under; refused under
    /// another, so that a new policy applies at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pv: Option<String>,
}

/// Where the server reads the time that tokens, tickets and handles expire by. The server
/// uses [`SystemClock`]; a test that needs time to pass sets its own.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Signs and verifies blobs under one key.
pub(crate) struct Signer {
    key: Vec<u8>,
    clock: Arc<dyn Clock>,
    /// The configuration versions this process issued or checked handles under, newest
    /// last: a handle of a version not among them was issued by another replica, under a
    /// configuration this one has not loaded yet.
    seen: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// Configuration versions a process remembers having served under.
const SEEN_VERSIONS: usize = 64;

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

/// Base64 that accepts input with or without padding (the ADBC driver omits it).
pub(crate) const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Signer {
    pub(crate) fn new(key: Vec<u8>) -> Self {
        Self {
            key,
            clock: Arc::new(SystemClock),
            seen: std::sync::Mutex::default(),
        }
    }

    /// Notes that this process serves under configuration `version`.
    fn saw(&self, version: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.back().is_some_and(|v| v == version) {
            return;
        }
        seen.retain(|v| v != version);
        seen.push_back(version.to_string());
        if seen.len() > SEEN_VERSIONS {
            seen.pop_front();
        }
    }

    fn has_seen(&self, version: &str) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter().any(|v| v == version)
    }

    /// The same key, with expiries read from `clock`.
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now_secs(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Claims of `kind` for principal `sub`, valid for `ttl` from now.
    pub(crate) fn claims(&self, kind: Kind, sub: &str, ttl: Duration) -> Claims {
        Claims {
            kind,
            sub: sub.to_string(),
            exp: self.now_secs() + ttl.as_secs(),
            sql: None,
            params: None,
            qid: None,
            pv: None,
        }
    }

    /// The key from `BUND_SIGNING_KEY` (base64 or text, at least 32 bytes), or a random one.
    /// Replicas that should honour each other's tickets must share the variable.
    pub(crate) fn from_env() -> Self {
        match std::env::var("BUND_SIGNING_KEY") {
            Ok(v) if v.len() >= 32 => {
                let key = general_purpose::STANDARD
                    .decode(v.trim())
                    .unwrap_or_else(|_| v.into_bytes());
                Self::new(key)
            }
            Ok(_) => {
                tracing::warn!(
                    "BUND_SIGNING_KEY is shorter than 32 characters; using a random key instead"
                );
                Self::new(rand::random::<[u8; 32]>().to_vec())
            }
            Err(_) => {
                tracing::warn!(
                    "BUND_SIGNING_KEY is not set: tokens and tickets are signed with a random key and are valid on this process only"
                );
                Self::new(rand::random::<[u8; 32]>().to_vec())
            }
        }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    fn payload(claims: &Claims) -> Vec<u8> {
        serde_json::to_vec(claims).unwrap_or_default()
    }

    /// A binary blob for tickets and prepared-statement handles.
    pub(crate) fn sign_binary(&self, claims: &Claims) -> Vec<u8> {
        if let Some(version) = &claims.pv {
            self.saw(version);
        }
        let payload = Self::payload(claims);
        let tag = self.mac(&payload).finalize().into_bytes();
        let mut out = Vec::with_capacity(BINARY_PREFIX.len() + payload.len() + MAC_LEN);
        out.extend_from_slice(BINARY_PREFIX);
        out.extend_from_slice(&payload);
        out.extend_from_slice(&tag);
        out
    }

    /// A header-safe text token for sessions.
    pub(crate) fn sign_text(&self, claims: &Claims) -> String {
        let payload = Self::payload(claims);
        let tag = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    fn verify_payload(&self, payload: &[u8], tag: &[u8], kind: Kind) -> Option<Claims> {
        self.mac(payload).verify_slice(tag).ok()?;
        let claims: Claims = serde_json::from_slice(payload).ok()?;
        (claims.kind == kind && claims.exp > self.now_secs()).then_some(claims)
    }

    pub(crate) fn verify_binary(&self, blob: &[u8], kind: Kind) -> Option<Claims> {
        let rest = blob.strip_prefix(BINARY_PREFIX)?;
        let split = rest.len().checked_sub(MAC_LEN)?;
        let (payload, tag) = rest.split_at(split);
        self.verify_payload(payload, tag, kind)
    }

    pub(crate) fn verify_text(&self, token: &str, kind: Kind) -> Option<Claims> {
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.verify_payload(&payload, &tag, kind)
    }

    /// Verifies a ticket or handle, that it belongs to `principal` and that it was issued
    /// under configuration `version`.
    pub(crate) fn open(
        &self,
        blob: &[u8],
        kind: Kind,
        principal: &str,
        version: &str,
    ) -> Result<Claims> {
        let what = match kind {
            Kind::Session => "session token",
            Kind::Ticket => "ticket",
            Kind::Prepared => "prepared statement handle",
        };
        match self.verify_binary(blob, kind) {
            Some(c) if c.sub == principal && c.pv.as_deref() == Some(version) => {
                self.saw(version);
                Ok(c)
            }
            Some(c) if c.sub == principal => {
                self.saw(version);
                match c.pv.as_deref() {
                    Some(issued) if !self.has_seen(issued) => Err(Error::OtherVersion { what }),
                    _ => Err(Error::BadHandle {
                        what,
                        hint: "the security catalog changed since it was issued; run or prepare the statement again",
                    }),
                }
            }
            _ => Err(Error::BadHandle {
                what,
                hint: "run the statement again to get a new one",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn ticket_round_trips_for_its_principal_only() {
        let s = signer();
        let mut c = s.claims(Kind::Ticket, "alice", Duration::from_secs(60));
        c.pv = Some("v1".into());
        c.sql = Some("SELECT 1".into());
        let blob = s.sign_binary(&c);
        assert_eq!(s.open(&blob, Kind::Ticket, "alice", "v1").unwrap(), c);
        assert!(s.open(&blob, Kind::Ticket, "bob", "v1").is_err());
        assert!(s.open(&blob, Kind::Prepared, "alice", "v1").is_err());
        assert!(s.open(&blob, Kind::Ticket, "alice", "v2").is_err());
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let s = signer();
        let blob = s.sign_binary(&s.claims(Kind::Ticket, "alice", Duration::from_secs(60)));
        for i in 0..blob.len() {
            let mut altered = blob.clone();
            altered[i] ^= 0x01;
            assert!(
                s.verify_binary(&altered, Kind::Ticket).is_none(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn expired_and_foreign_key_tokens_are_refused() {
        let s = signer();
        let mut c = s.claims(Kind::Session, "alice", Duration::from_secs(60));
        c.exp = s.now_secs() - 1;
        assert!(s.verify_text(&s.sign_text(&c), Kind::Session).is_none());
        let other = Signer::new(b"another key another key another k".to_vec());
        let token = other.sign_text(&other.claims(Kind::Session, "alice", Duration::from_secs(60)));
        assert!(s.verify_text(&token, Kind::Session).is_none());
    }

    /// A clock a test moves by hand.
    #[derive(Debug)]
    struct SetClock(std::sync::Mutex<SystemTime>);

    impl Clock for SetClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    #[test]
    fn a_ticket_expires_when_its_time_has_passed_and_not_before() {
        let clock = Arc::new(SetClock(std::sync::Mutex::new(SystemTime::now())));
        let s = signer().with_clock(Arc::clone(&clock) as Arc<dyn Clock>);
        let mut c = s.claims(Kind::Ticket, "alice", Duration::from_secs(60));
        c.pv = Some("v1".into());
        let blob = s.sign_binary(&c);
        *clock.0.lock().unwrap() += Duration::from_secs(59);
        assert!(s.open(&blob, Kind::Ticket, "alice", "v1").is_ok());
        *clock.0.lock().unwrap() += Duration::from_secs(1);
        assert!(s.open(&blob, Kind::Ticket, "alice", "v1").is_err());
    }

    #[test]
    fn a_handle_of_a_version_this_process_never_served_is_to_be_retried() {
        let issuer = signer();
        let replica = signer();
        let mut c = issuer.claims(Kind::Ticket, "alice", Duration::from_secs(60));
        c.pv = Some("v1".into());
        let old = issuer.sign_binary(&c);
        c.pv = Some("v2".into());
        let new = issuer.sign_binary(&c);
        // the replica serves v1 and has not loaded v2: retry
        assert!(replica.open(&old, Kind::Ticket, "alice", "v1").is_ok());
        assert!(matches!(
            replica.open(&new, Kind::Ticket, "alice", "v1"),
            Err(Error::OtherVersion { .. })
        ));
        // once it serves v2, a handle of v1, which it served before, is stale for good
        assert!(replica.open(&new, Kind::Ticket, "alice", "v2").is_ok());
        assert!(matches!(
            replica.open(&old, Kind::Ticket, "alice", "v2"),
            Err(Error::BadHandle { .. })
        ));
        // a handle of another principal says nothing of versions
        assert!(matches!(
            replica.open(&new, Kind::Ticket, "bob", "v1"),
            Err(Error::BadHandle { .. })
        ));
    }
}
