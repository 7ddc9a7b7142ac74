//! Klaviyo and Algolia credentials and the rules: validated live, sealed at rest, audited (never the value).

use actix_web::{HttpResponse, web};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::algolia::keys::{self, AlgoliaError};
use crate::db;
use crate::klaviyo::client::{KlaviyoAuth, KlaviyoError, looks_like_private_key};
use crate::klaviyo::credentials::revoke_if_oauth;
use crate::personalization::rules;
use crate::routes::admin::AdminContext;
use crate::routes::admin::settings::settings_view;
use crate::routes::errors::ApiError;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlaviyoKey {
    private_key: Option<SecretString>,
}

/// `PUT /api/v1/settings/klaviyo` `{"private_key"}`
#[tracing::instrument(name = "Save Klaviyo key", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn put_klaviyo(
    admin: AdminContext,
    state: web::Data<AppState>,
    body: web::Json<KlaviyoKey>,
) -> Result<HttpResponse, ApiError> {
    let key = body
        .into_inner()
        .private_key
        .map(|k| SecretString::from(k.expose_secret().trim().to_string()))
        .filter(|k| !k.expose_secret().is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_key",
                "private_key",
                "Paste your Klaviyo private API key (it starts with pk_)",
            )
        })?;
    if !looks_like_private_key(key.expose_secret()) {
        return Err(ApiError::invalid(
            "invalid_key",
            "private_key",
            "That is not a Klaviyo private API key: it starts with pk_ (public 6-character site IDs do not work here)",
        ));
    }
    let warnings = match state
        .klaviyo
        .validate(&KlaviyoAuth::PrivateKey(key.clone()))
        .await
    {
        Ok(warnings) => warnings,
        Err(KlaviyoError::Rejected { status, detail }) => {
            return Err(ApiError::invalid(
                "invalid_key",
                "private_key",
                format!(
                    "Klaviyo refused this key ({status}{}). Check that it is a private key with profiles:read.",
                    detail.map(|d| format!(": {d}")).unwrap_or_default()
                ),
            ));
        }
        Err(error) => {
            tracing::warn!(error = %error, "Klaviyo unavailable while validating a key");
            return Err(ApiError::Upstream {
                code: "klaviyo_unavailable",
                message: "Klaviyo did not answer the check just now; nothing was saved. Try again in a minute.".into(),
            });
        }
    };
    let hint = crate::crypto::hint("pk_", key.expose_secret());
    revoke_if_oauth(
        &state.pool,
        &state.keyring,
        state.klaviyo_oauth.as_deref(),
        admin.store_id,
        &admin.store_hash,
    )
    .await;
    let sealed = state.keyring.seal(
        &key,
        &db::settings::aad("klaviyo_secret", &admin.store_hash),
    );
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    db::settings::save_klaviyo(
        &mut tx,
        admin.store_id,
        &db::settings::NewKlaviyoCredentials {
            method: "private_key",
            secret: &sealed,
            refresh: None,
            expires_at: None,
            scope: None,
            hint: Some(&hint),
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        admin.store_id,
        "settings_changed",
        admin.actor(),
        serde_json::json!({ "setting": "klaviyo", "method": "private_key", "key_hint": hint }),
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to save the Klaviyo key")?;
    state
        .resolver
        .klaviyo_changed(&admin.store_hash, admin.store_id)
        .await;
    settings_view(&state, &admin, Some(warnings)).await
}

/// `DELETE /api/v1/settings/klaviyo`
#[tracing::instrument(name = "Forget Klaviyo credentials", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn delete_klaviyo(
    admin: AdminContext,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    revoke_if_oauth(
        &state.pool,
        &state.keyring,
        state.klaviyo_oauth.as_deref(),
        admin.store_id,
        &admin.store_hash,
    )
    .await;
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    db::settings::clear_klaviyo(&mut tx, admin.store_id).await?;
    db::audit::record(
        &mut tx,
        admin.store_id,
        "settings_changed",
        admin.actor(),
        serde_json::json!({ "setting": "klaviyo", "removed": true }),
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to forget the Klaviyo credentials")?;
    state
        .resolver
        .klaviyo_changed(&admin.store_hash, admin.store_id)
        .await;
    settings_view(&state, &admin, Some(vec![])).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlgoliaSettings {
    app_id: Option<String>,
    search_key: Option<SecretString>,
    index: Option<String>,
}

/// `PUT /api/v1/settings/algolia` `{"app_id","search_key","index"}`
#[tracing::instrument(name = "Save Algolia settings", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn put_algolia(
    admin: AdminContext,
    state: web::Data<AppState>,
    body: web::Json<AlgoliaSettings>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let app_id = body
        .app_id
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if !keys::valid_app_id(&app_id) {
        return Err(ApiError::invalid(
            "invalid_app_id",
            "app_id",
            "The Application ID is letters and digits, as shown in Algolia's API Keys page",
        ));
    }
    let index = body.index.map(|s| s.trim().to_string()).unwrap_or_default();
    if !keys::valid_index(&index) {
        return Err(ApiError::invalid(
            "invalid_index",
            "index",
            "Give the name of the index the storefront searches",
        ));
    }
    let key = body
        .search_key
        .map(|k| SecretString::from(k.expose_secret().trim().to_string()))
        .filter(|k| {
            (1..=512).contains(&k.expose_secret().len())
                && !k.expose_secret().contains(char::is_whitespace)
        })
        .ok_or_else(|| {
            ApiError::invalid("invalid_key", "search_key", "Paste a search-only API key")
        })?;
    let info = match state.algolia.key_info(&app_id, &key).await {
        Ok(info) => info,
        Err(AlgoliaError::Rejected { status, message }) => {
            return Err(ApiError::invalid(
                "invalid_key",
                "search_key",
                format!(
                    "Algolia refused this key for application {app_id} ({status}{})",
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ),
            ));
        }
        Err(error) => {
            tracing::warn!(error = %error, "Algolia unavailable while validating a key");
            return Err(ApiError::Upstream {
                code: "algolia_unavailable",
                message: "Algolia did not answer the check just now; nothing was saved. Try again in a minute.".into(),
            });
        }
    };
    if let Some(why) = keys::unfit_for_storefront(&info, &index) {
        return Err(ApiError::invalid("unsuitable_key", "search_key", why));
    }
    let hint = crate::crypto::hint("", key.expose_secret());
    let sealed = state
        .keyring
        .seal(&key, &db::settings::aad("algolia_key", &admin.store_hash));
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    db::settings::save_algolia(&mut tx, admin.store_id, &app_id, &index, &sealed, &hint).await?;
    db::audit::record(
        &mut tx,
        admin.store_id,
        "settings_changed",
        admin.actor(),
        serde_json::json!({ "setting": "algolia", "app_id": app_id, "index": index, "key_hint": hint }),
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to save the Algolia settings")?;
    state.resolver.store_changed(&admin.store_hash).await;
    settings_view(&state, &admin, Some(vec![])).await
}

/// `DELETE /api/v1/settings/algolia`
#[tracing::instrument(name = "Forget Algolia settings", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn delete_algolia(
    admin: AdminContext,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    db::settings::clear_algolia(&mut tx, admin.store_id).await?;
    db::audit::record(
        &mut tx,
        admin.store_id,
        "settings_changed",
        admin.actor(),
        serde_json::json!({ "setting": "algolia", "removed": true }),
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to forget the Algolia settings")?;
    state.resolver.store_changed(&admin.store_hash).await;
    settings_view(&state, &admin, Some(vec![])).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    rules: serde_json::Value,
}

/// `PUT /api/v1/settings/rules` `{"rules":[…]}`
#[tracing::instrument(name = "Save rules", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn put_rules(
    admin: AdminContext,
    state: web::Data<AppState>,
    body: web::Json<RulesBody>,
) -> Result<HttpResponse, ApiError> {
    let parsed = rules::parse_rules(&body.rules).map_err(|e| ApiError::Invalid {
        code: e.code,
        message: e.message,
        field: e.field,
    })?;
    let canonical = rules::rules_json(&parsed);
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    db::settings::save_rules(&mut tx, admin.store_id, &canonical).await?;
    db::audit::record(
        &mut tx,
        admin.store_id,
        "settings_changed",
        admin.actor(),
        serde_json::json!({ "setting": "rules", "count": parsed.len() }),
    )
    .await?;
    tx.commit().await.context("Failed to save the rules")?;
    state.resolver.store_changed(&admin.store_hash).await;
    settings_view(&state, &admin, Some(vec![])).await
}
