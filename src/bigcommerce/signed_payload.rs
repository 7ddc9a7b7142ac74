//! Verification of the `signed_payload_jwt` that BigCommerce sends to `/load`, `/uninstall` and `/remove_user`.
//!
//! Rules (DESIGN.md, research/bigcommerce.md §2): HMAC with the client secret, HS256 or HS512 only;
//! `aud` = client id; `iss` = `bc`; `exp`/`nbf` with at most 60 s leeway; `sub` = `stores/{hash}`.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::domain::StoreHash;

pub const LEEWAY_SECONDS: u64 = 60;

#[derive(Debug, Clone, Deserialize)]
pub struct BcUser {
    pub id: i64,
    pub email: String,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    user: BcUser,
    owner: BcUser,
}

/// What a verified callback says; the tenant comes only from here.
#[derive(Debug, Clone)]
pub struct SignedCallback {
    pub store_hash: StoreHash,
    pub user: BcUser,
    pub owner: BcUser,
    pub jti: Option<String>,
    pub expires_at: OffsetDateTime,
}

impl SignedCallback {
    pub fn user_is_owner(&self) -> bool {
        self.user.id == self.owner.id
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvalidCallbackToken {
    #[error("the signed payload is missing")]
    Missing,
    #[error("the signed payload did not verify: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("the signed payload names no valid store")]
    BadSubject,
}

pub struct CallbackVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl CallbackVerifier {
    pub fn new(client_id: &str, client_secret: &SecretString) -> anyhow::Result<Self> {
        let key = DecodingKey::from_secret(client_secret.expose_secret().as_bytes())
            .map_err(|e| anyhow::anyhow!("BC_CLIENT_SECRET cannot key HMAC: {e}"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS512];
        validation.set_audience(&[client_id]);
        validation.set_issuer(&["bc"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        Ok(Self { key, validation })
    }

    #[tracing::instrument(name = "Verify signed callback", skip_all)]
    pub fn verify(&self, token: Option<&str>) -> Result<SignedCallback, InvalidCallbackToken> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(InvalidCallbackToken::Missing)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)?;
        let claims = data.claims;
        let store_hash =
            StoreHash::from_context(&claims.sub).map_err(|_| InvalidCallbackToken::BadSubject)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(claims.exp)
            .map_err(|_| InvalidCallbackToken::BadSubject)?;
        Ok(SignedCallback {
            store_hash,
            user: claims.user,
            owner: claims.owner,
            jti: claims.jti.filter(|j| !j.is_empty()),
            expires_at,
        })
    }
}
