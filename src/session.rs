//! Admin session tokens: a short JWT (≤ 1 h) bound to store, user and install, signed with a key derived from
//! `ENCRYPTION_KEY`. The page carries it in `<meta name="pb-session">` and sends it as a Bearer token, so no
//! cookie is needed inside the control-panel iframe.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crypto::Keyring;
use crate::domain::StoreHash;

pub const SESSION_TTL_SECONDS: i64 = 3600;
const ISSUER: &str = "profile-bridge";
const AUDIENCE: &str = "profile-bridge-admin";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    uid: i64,
    iid: Uuid,
    iat: i64,
    exp: i64,
}

/// A verified session token. Whether the user and install are still live is checked against the database.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub store_hash: StoreHash,
    pub bc_user_id: i64,
    pub install_id: Uuid,
}

pub struct SessionSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl SessionSigner {
    pub fn new(keyring: &Keyring) -> anyhow::Result<Self> {
        let key = keyring.derive_key("admin-session-v1");
        let encoding = EncodingKey::from_secret(key.expose_secret())
            .map_err(|e| anyhow::anyhow!("Failed to build the session signing key: {e}"))?;
        let decoding = DecodingKey::from_secret(key.expose_secret())
            .map_err(|e| anyhow::anyhow!("Failed to build the session verifying key: {e}"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        Ok(Self {
            encoding,
            decoding,
            validation,
        })
    }

    #[tracing::instrument(name = "Issue admin session", skip_all, fields(store_hash = %store_hash, bc_user_id))]
    pub fn issue(
        &self,
        store_hash: &StoreHash,
        bc_user_id: i64,
        install_id: Uuid,
    ) -> anyhow::Result<String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: store_hash.to_string(),
            uid: bc_user_id,
            iid: install_id,
            iat: now,
            exp: now + SESSION_TTL_SECONDS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| anyhow::anyhow!("Failed to sign the admin session: {e}"))
    }

    #[tracing::instrument(name = "Verify admin session", skip_all)]
    pub fn verify(&self, token: &str) -> Option<AdminSession> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        Some(AdminSession {
            store_hash: StoreHash::parse(&claims.sub).ok()?,
            bc_user_id: claims.uid,
            install_id: claims.iid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{EncryptionKey, generate_key_base64};

    fn signer() -> SessionSigner {
        SessionSigner::new(&Keyring::new(
            EncryptionKey::parse(&generate_key_base64()).unwrap(),
            vec![],
        ))
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let s = signer();
        let hash = StoreHash::parse("abc123").unwrap();
        let iid = Uuid::new_v4();
        let token = s.issue(&hash, 7, iid).unwrap();
        let session = s.verify(&token).unwrap();
        assert_eq!(
            (session.store_hash, session.bc_user_id, session.install_id),
            (hash, 7, iid)
        );
    }

    #[test]
    fn another_keys_token_is_refused() {
        let token = signer()
            .issue(&StoreHash::parse("abc").unwrap(), 1, Uuid::new_v4())
            .unwrap();
        assert!(signer().verify(&token).is_none());
    }
}
