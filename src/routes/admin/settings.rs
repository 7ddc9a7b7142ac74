//! `GET /api/v1/settings` and the storefront-script actions. Every write answers with the same view plus
//! `warnings`.

use actix_web::{HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::bigcommerce::scripts::{CONSENT_CATEGORIES, Mode};
use crate::db::{self, audit::Actor};
use crate::routes::admin::AdminContext;
use crate::routes::errors::ApiError;
use crate::startup::AppState;

#[derive(Serialize)]
struct KlaviyoView {
    connected: bool,
    method: Option<String>,
    key_hint: Option<String>,
    oauth_available: bool,
}

#[derive(Serialize)]
struct AlgoliaView {
    app_id: String,
    index: String,
    key_hint: Option<String>,
}

#[derive(Serialize)]
struct ChannelView {
    channel_id: i64,
    name: String,
    installed: bool,
    drift: bool,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct ScriptView {
    consent_category: String,
    channels: Vec<ChannelView>,
    sync_error: Option<String>,
}

#[derive(Serialize)]
struct SettingsView {
    store_hash: String,
    klaviyo: KlaviyoView,
    algolia: Option<AlgoliaView>,
    rules: serde_json::Value,
    script: ScriptView,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

/// The settings as the admin page sees them: secrets only as hints.
pub async fn settings_view(
    state: &AppState,
    admin: &AdminContext,
    warnings: Option<Vec<String>>,
) -> Result<HttpResponse, ApiError> {
    let summary = db::settings::summary(&state.pool, admin.store_id).await?;
    let channels = db::storefront::channels(&state.pool, admin.store_id)
        .await?
        .into_iter()
        .map(|row| ChannelView {
            channel_id: row.channel_id,
            name: row.name,
            installed: row.script_uuid.is_some() && !row.drift,
            drift: row.drift,
            last_error: row.last_error,
        })
        .collect();
    let algolia = match (summary.algolia_app_id, summary.algolia_index) {
        (Some(app_id), Some(index)) => Some(AlgoliaView {
            app_id,
            index,
            key_hint: summary.algolia_key_hint,
        }),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(SettingsView {
        store_hash: admin.store_hash.to_string(),
        klaviyo: KlaviyoView {
            connected: summary.klaviyo_method.is_some(),
            method: summary.klaviyo_method,
            key_hint: summary.klaviyo_hint,
            oauth_available: state.klaviyo_oauth.is_some(),
        },
        algolia,
        rules: summary.rules,
        script: ScriptView {
            consent_category: db::storefront::consent_category(&state.pool, admin.store_id).await?,
            channels,
            sync_error: db::storefront::sync_error(&state.pool, admin.store_id).await?,
        },
        warnings,
    }))
}

/// `GET /api/v1/settings`
#[tracing::instrument(name = "Read settings", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn get_settings(
    admin: AdminContext,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    settings_view(&state, &admin, None).await
}

async fn reconcile_now(state: &AppState, admin: &AdminContext) -> Result<Vec<String>, ApiError> {
    let token = state
        .store_access_token(&admin.store_hash)
        .await?
        .ok_or(ApiError::SessionExpired)?;
    let warnings = state
        .reconciler
        .reconcile(admin.store_id, &admin.store_hash, &token, Mode::Repair)
        .await?;
    state.resolver.store_changed(&admin.store_hash).await;
    Ok(warnings)
}

/// `POST /api/v1/script/repair`: re-run reconciliation now, restoring drifted scripts.
#[tracing::instrument(name = "Repair storefront scripts", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn repair_script(
    admin: AdminContext,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let warnings = reconcile_now(&state, &admin).await?;
    let mut conn = state
        .pool
        .acquire()
        .await
        .context("Failed to get a connection")?;
    db::audit::record(
        &mut conn,
        admin.store_id,
        "script_repaired",
        admin.actor(),
        serde_json::json!({ "warnings": warnings.len() }),
    )
    .await?;
    settings_view(&state, &admin, Some(warnings)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSettings {
    consent_category: Option<String>,
}

/// `PUT /api/v1/settings/script` `{"consent_category"}`: change the category and reconcile.
#[tracing::instrument(name = "Update script settings", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn put_script_settings(
    admin: AdminContext,
    state: web::Data<AppState>,
    body: web::Json<ScriptSettings>,
) -> Result<HttpResponse, ApiError> {
    let category = body.into_inner().consent_category.unwrap_or_default();
    if !CONSENT_CATEGORIES.contains(&category.as_str()) {
        return Err(ApiError::invalid(
            "invalid_consent_category",
            "consent_category",
            format!("Choose one of: {}", CONSENT_CATEGORIES.join(", ")),
        ));
    }
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    let previous = db::storefront::consent_category(&state.pool, admin.store_id).await?;
    db::storefront::set_consent_category(&mut tx, admin.store_id, &category).await?;
    db::audit::record(
        &mut tx,
        admin.store_id,
        "settings_changed",
        admin.actor(),
        serde_json::json!({ "setting": "script.consent_category", "from": previous, "to": category }),
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to save the consent category")?;
    let warnings = reconcile_now(&state, &admin).await?;
    settings_view(&state, &admin, Some(warnings)).await
}

impl AdminContext {
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            user_id: Some(self.bc_user_id),
            email: None,
        }
    }
}
