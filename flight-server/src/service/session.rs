//! Who a request comes from: the handshake (HTTP Basic, checked on the login threads, and a
//! signed session token back), and, for every other RPC, the principal behind its
//! credentials, resolved once by [`BundService::serve`].

use std::sync::Arc;

use arrow_flight::HandshakeRequest;
use arrow_flight::HandshakeResponse;
use bund_catalogs::Principal;
use bund_planner::Engine;
use futures::StreamExt;
use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Streaming};

use super::{BundService, HandshakeStream};
use crate::audit;
use crate::error::{Error, Result};
use crate::logins::NotChecked;
use crate::tokens::{Kind, LENIENT_BASE64};
use base64::Engine as _;

/// Longest user name or password accepted at login.
const MAX_CREDENTIAL_BYTES: usize = 1024;

/// Splits `user:password` from an HTTP Basic credential (base64, padded or not).
fn parse_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = LENIENT_BASE64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl BundService {
    /// The principal behind the request: a bearer token from the handshake, an API key in
    /// `x-api-key`, or, without either, the anonymous principal where the security catalog
    /// grants it anything.
    ///
    /// Admits the request only while its source is within its audit budget and the audit
    /// log can be written.
    pub(super) fn principal(
        &self,
        engine: &Engine,
        metadata: &MetadataMap,
    ) -> Result<Arc<Principal>> {
        let principal = self.resolve_principal(engine, metadata)?;
        audit::note_principal(&principal.id, &principal.roles, true);
        self.admit()?;
        Ok(principal)
    }

    fn resolve_principal(&self, engine: &Engine, metadata: &MetadataMap) -> Result<Arc<Principal>> {
        if let Some(key) = metadata.get("x-api-key") {
            let key = key.to_str().map_err(|_| Error::BadCredentials)?;
            return engine
                .catalog()
                .security
                .authenticate_api_key(key.trim())
                .map_err(|_| Error::BadCredentials);
        }
        let Some(header) = metadata.get("authorization") else {
            return engine
                .catalog()
                .security
                .anonymous()
                .ok_or(Error::NoCredentials);
        };
        let value = header.to_str().map_err(|_| Error::BadToken)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(Error::NoCredentials)?;
        let claims = self
            .signer
            .verify_text(token.trim(), Kind::Session)
            .ok_or(Error::BadToken)?;
        // A principal removed from security.toml loses access at once.
        engine
            .catalog()
            .security
            .principal(&claims.sub)
            .ok_or(Error::BadToken)
    }

    async fn login(
        &self,
        engine: Arc<Engine>,
        user: String,
        password: String,
    ) -> Result<(Arc<Principal>, String)> {
        if user.len() > MAX_CREDENTIAL_BYTES || password.len() > MAX_CREDENTIAL_BYTES {
            return Err(Error::BadCredentials);
        }
        let busy = || Error::Busy {
            running: self.logins.threads(),
            whose: "logins",
            waited_secs: self.settings.queue_timeout.as_secs(),
        };
        let digest = self
            .verified
            .digest(&engine.catalog().version, &user, &password);
        let remembered = self
            .verified
            .contains(&digest)
            .then(|| engine.catalog().security.principal(&user))
            .flatten();
        let principal = match remembered {
            Some(principal) => principal,
            None => {
                let principal = self
                    .logins
                    .check(
                        move || engine.catalog().security.authenticate(&user, &password),
                        self.settings.queue_timeout,
                    )
                    .await
                    .map_err(|e| match e {
                        NotChecked::Busy => busy(),
                        NotChecked::Lost => Error::Internal("a login thread stopped".into()),
                    })?
                    .map_err(|_| Error::BadCredentials)?;
                self.verified.insert(digest);
                principal
            }
        };
        let token = self.signer.sign_text(&self.signer.claims(
            Kind::Session,
            &principal.id,
            self.settings.session_ttl,
        ));
        Ok((principal, token))
    }

    /// The handshake: credentials from an `authorization: Basic …` header or, from older
    /// clients, a BasicAuth payload; a session token back in the payload and as a bearer
    /// `authorization` header.
    pub(super) async fn handshake(
        &self,
        engine: Arc<Engine>,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (user, password) = match header.as_deref().and_then(|h| {
            h.strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))
        }) {
            Some(encoded) => parse_basic(encoded).ok_or(Error::BadCredentials)?,
            None => {
                // Older clients put BasicAuth in the handshake payload instead of a header.
                let mut stream = request.into_inner();
                let first = stream
                    .next()
                    .await
                    .ok_or(Error::NoCredentials)?
                    .map_err(|e| Error::BadRequest(e.message().to_string()))?;
                let basic = arrow_flight::BasicAuth::decode(first.payload)
                    .map_err(|_| Error::NoCredentials)?;
                if basic.username.is_empty() {
                    return Err(Error::NoCredentials);
                }
                (basic.username, basic.password)
            }
        };
        audit::note_principal(&user, &[], false);
        self.admit()?;
        let (principal, token) = self.login(engine, user, password).await?;
        audit::note_principal(&principal.id, &principal.roles, true);
        tracing::info!(principal = %principal.id, "logged in");
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into_bytes().into(),
        };
        let stream: HandshakeStream = Box::pin(futures::stream::iter([Ok(response)]));
        let mut resp = Response::new(stream);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Error::Internal("token is not a valid header".into()))?;
        resp.metadata_mut().insert("authorization", value);
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_with_and_without_padding() {
        assert_eq!(
            parse_basic("YWRtaW46YWRtaW4tZGVtbw=="),
            Some(("admin".into(), "admin-demo".into()))
        );
        assert_eq!(
            parse_basic("YWRtaW46YWRtaW4tZGVtbw"),
            Some(("admin".into(), "admin-demo".into()))
        );
        assert_eq!(parse_basic("!!"), None);
    }
}
