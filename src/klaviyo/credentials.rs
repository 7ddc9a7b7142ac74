//! A store's Klaviyo credentials, unsealed for one call: the private key, or an OAuth access token refreshed
//! shortly before it expires (or once after a 401).

use anyhow::Context;
use secrecy::SecretString;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::crypto::Keyring;
use crate::db;
use crate::domain::StoreHash;
use crate::klaviyo::client::KlaviyoAuth;
use crate::klaviyo::oauth::KlaviyoOAuth;

/// Refresh when less than this is left, so a call never starts with a token about to die.
const REFRESH_MARGIN: time::Duration = time::Duration::seconds(60);

pub struct StoreCredentials {
    pub auth: KlaviyoAuth,
    /// Changes whenever the store's Klaviyo credentials change (cache keys carry it).
    pub generation: i64,
    pub method: String,
}

pub fn seal_refreshed(
    keyring: &Keyring,
    store_hash: &StoreHash,
    access: &SecretString,
    refresh: &SecretString,
) -> (crate::crypto::Sealed, crate::crypto::Sealed) {
    (
        keyring.seal(access, &db::settings::aad("klaviyo_secret", store_hash)),
        keyring.seal(refresh, &db::settings::aad("klaviyo_refresh", store_hash)),
    )
}

/// The store's credentials; None when Klaviyo is not configured. `force_refresh` after a 401 on a Bearer token.
#[tracing::instrument(name = "Load Klaviyo credentials", skip_all, fields(store_hash = %store_hash))]
pub async fn load(
    pool: &PgPool,
    keyring: &Keyring,
    oauth: Option<&KlaviyoOAuth>,
    store_id: i64,
    store_hash: &StoreHash,
    force_refresh: bool,
) -> anyhow::Result<Option<StoreCredentials>> {
    let Some(secrets) = db::settings::klaviyo_secrets(pool, store_id).await? else {
        return Ok(None);
    };
    let secret = keyring
        .open(
            &secrets.secret,
            &db::settings::aad("klaviyo_secret", store_hash),
        )
        .context("Failed to unseal the Klaviyo credential")?;
    if secrets.method != "oauth" {
        return Ok(Some(StoreCredentials {
            auth: KlaviyoAuth::PrivateKey(secret),
            generation: secrets.generation,
            method: secrets.method,
        }));
    }
    let due = secrets
        .expires_at
        .is_some_and(|at| at - OffsetDateTime::now_utc() < REFRESH_MARGIN);
    if !(due || force_refresh) {
        return Ok(Some(StoreCredentials {
            auth: KlaviyoAuth::OAuth(secret),
            generation: secrets.generation,
            method: secrets.method,
        }));
    }
    let oauth = oauth
        .context("This store connected with Klaviyo OAuth, but KLAVIYO_CLIENT_ID is not set")?;
    let sealed_refresh = secrets
        .refresh
        .context("No Klaviyo refresh token is stored")?;
    let refresh = keyring
        .open(
            &sealed_refresh,
            &db::settings::aad("klaviyo_refresh", store_hash),
        )
        .context("Failed to unseal the Klaviyo refresh token")?;
    let tokens = oauth
        .refresh(&refresh)
        .await
        .context("Klaviyo refused to refresh the token")?;
    let expires_at = tokens.expires_at();
    let new_refresh = tokens.refresh.unwrap_or(refresh);
    let (access_sealed, refresh_sealed) =
        seal_refreshed(keyring, store_hash, &tokens.access, &new_refresh);
    db::settings::update_klaviyo_tokens(
        pool,
        store_id,
        &access_sealed,
        &refresh_sealed,
        expires_at,
    )
    .await?;
    Ok(Some(StoreCredentials {
        auth: KlaviyoAuth::OAuth(tokens.access),
        generation: secrets.generation,
        method: secrets.method,
    }))
}

/// Best effort: revoke a store's OAuth grant (disconnect, uninstall, replaced by another connection).
pub async fn revoke_if_oauth(
    pool: &PgPool,
    keyring: &Keyring,
    oauth: Option<&KlaviyoOAuth>,
    store_id: i64,
    store_hash: &StoreHash,
) {
    let revoked = async {
        let Some(secrets) = db::settings::klaviyo_secrets(pool, store_id).await? else {
            return Ok(());
        };
        let (Some(oauth), Some(sealed)) =
            (oauth, secrets.refresh.filter(|_| secrets.method == "oauth"))
        else {
            return Ok(());
        };
        let refresh = keyring.open(&sealed, &db::settings::aad("klaviyo_refresh", store_hash))?;
        oauth.revoke(&refresh).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = revoked {
        tracing::warn!(error = %error, "could not revoke the Klaviyo OAuth grant");
    }
}
