//! "Connect with Klaviyo": `POST /api/v1/klaviyo/oauth/start` (from the admin page) and
//! `GET /klaviyo/oauth/callback` (in the popup window Klaviyo redirects back to).

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::db::{self, audit::Actor};
use crate::domain::StoreHash;
use crate::klaviyo::credentials::revoke_if_oauth;
use crate::klaviyo::oauth::OAuthError;
use crate::routes::admin::AdminContext;
use crate::routes::errors::{ApiError, PageError};
use crate::startup::AppState;

const PENDING_LIFETIME: time::Duration = time::Duration::minutes(10);

fn verifier_aad(state: &str) -> String {
    format!("klaviyo_oauth_pending.verifier:{state}")
}

/// `POST /api/v1/klaviyo/oauth/start` → `{"authorize_url"}` for the popup.
#[tracing::instrument(name = "Start Klaviyo OAuth", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn start(
    admin: AdminContext,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let oauth = state.klaviyo_oauth.as_deref().ok_or(ApiError::NotFound {
        code: "oauth_not_configured",
        message: "Connect with Klaviyo is not enabled on this Profile Bridge; paste a private key instead".into(),
    })?;
    let (url, csrf, verifier) = oauth.authorize_url();
    let sealed = state.keyring.seal(
        &SecretString::from(verifier.secret().clone()),
        &verifier_aad(csrf.secret()),
    );
    db::settings::insert_pending_oauth(
        &state.pool,
        csrf.secret(),
        admin.store_id,
        admin.bc_user_id,
        &sealed,
        OffsetDateTime::now_utc() + PENDING_LIFETIME,
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "authorize_url": url.as_str() })))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<SecretString>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "oauth_done.html")]
struct DonePage;

/// `GET /klaviyo/oauth/callback?code&state`: a single-use state, the PKCE verifier, then the code exchange.
#[tracing::instrument(name = "Klaviyo OAuth callback", skip_all, fields(store_hash = tracing::field::Empty))]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    const STALE: &str =
        "This Klaviyo connection link is no longer valid. Start again from Profile Bridge.";
    let oauth = state
        .klaviyo_oauth
        .as_ref()
        .ok_or(PageError::BadRequest(STALE))?;
    let query = web::Query::<CallbackQuery>::from_query(req.query_string())
        .map_err(|_| PageError::BadRequest(STALE))?
        .into_inner();
    let csrf = query
        .state
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or(PageError::BadRequest(STALE))?;
    let pending = db::settings::take_pending_oauth(&state.pool, &csrf)
        .await?
        .ok_or(PageError::BadRequest(STALE))?;
    let store_hash =
        StoreHash::parse(&pending.store_hash).context("A stored store hash is malformed")?;
    tracing::Span::current().record("store_hash", store_hash.as_str());
    if query.error.is_some() {
        return Err(PageError::BadRequest(
            "The Klaviyo connection was cancelled; nothing changed. You can close this window.",
        ));
    }
    let code = query.code.ok_or(PageError::BadRequest(STALE))?;
    let verifier = state
        .keyring
        .open(&pending.verifier, &verifier_aad(&csrf))
        .context("Failed to unseal the PKCE verifier")?;
    let tokens = oauth.exchange(&code, &verifier).await.map_err(|error| {
        tracing::warn!(error = %error, "Klaviyo OAuth code exchange failed");
        match error {
            OAuthError::Refused(_) => PageError::BadGateway(
                "Klaviyo did not accept the connection. Start again from Profile Bridge.",
            ),
            OAuthError::Unavailable(_) => PageError::BadGateway(
                "Klaviyo could not be reached. Start again from Profile Bridge in a minute.",
            ),
        }
    })?;
    // A connection replaces whatever was there; the old grant is revoked first.
    revoke_if_oauth(
        &state.pool,
        &state.keyring,
        Some(oauth),
        pending.store_id,
        &store_hash,
    )
    .await;
    let access = state.keyring.seal(
        &tokens.access,
        &db::settings::aad("klaviyo_secret", &store_hash),
    );
    let refresh = tokens
        .refresh
        .as_ref()
        .filter(|r| !r.expose_secret().is_empty())
        .map(|r| {
            state
                .keyring
                .seal(r, &db::settings::aad("klaviyo_refresh", &store_hash))
        });
    let expires_at = tokens.expires_at();
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    db::settings::save_klaviyo(
        &mut tx,
        pending.store_id,
        &db::settings::NewKlaviyoCredentials {
            method: "oauth",
            secret: &access,
            refresh: refresh.as_ref(),
            expires_at: Some(expires_at),
            scope: tokens.scope.as_deref(),
            hint: None,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        pending.store_id,
        "settings_changed",
        Actor {
            user_id: Some(pending.bc_user_id),
            email: None,
        },
        serde_json::json!({ "setting": "klaviyo", "method": "oauth", "scope": tokens.scope }),
    )
    .await?;
    tx.commit()
        .await
        .context("Failed to save the Klaviyo connection")?;
    state
        .resolver
        .klaviyo_changed(&store_hash, pending.store_id)
        .await;
    let body = DonePage
        .render()
        .map_err(|e| anyhow::anyhow!("Failed to render: {e}"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}
