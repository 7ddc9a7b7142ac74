//! The admin page (inside the control-panel iframe) and the admin JSON API behind its session token.

pub mod credentials;
pub mod klaviyo_oauth;
pub mod preview;
pub mod settings;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use crate::db;
use crate::domain::StoreHash;
use crate::routes::errors::{ApiError, PageError};
use crate::startup::AppState;

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage<'a> {
    store_hash: &'a str,
    user_email: &'a str,
    session_token: &'a str,
    asset_version: &'a str,
    consent_category: &'a str,
    consent_categories: &'a [&'a str],
    channels: &'a [db::storefront::ChannelRow],
    sync_error: Option<&'a str>,
}

/// The page `/auth` and `/load` answer with, carrying a fresh session for this user and install.
pub async fn render_admin_page(
    state: &AppState,
    store_id: i64,
    store_hash: &StoreHash,
    bc_user_id: i64,
    user_email: &str,
    install_id: Uuid,
) -> Result<HttpResponse, PageError> {
    let token = state.sessions.issue(store_hash, bc_user_id, install_id)?;
    let channels = db::storefront::channels(&state.pool, store_id).await?;
    let consent_category = db::storefront::consent_category(&state.pool, store_id).await?;
    let sync_error = db::storefront::sync_error(&state.pool, store_id).await?;
    let body = AdminPage {
        store_hash: store_hash.as_str(),
        user_email,
        session_token: &token,
        asset_version: crate::routes::assets::ASSET_VERSION.as_str(),
        consent_category: &consent_category,
        consent_categories: &crate::bigcommerce::scripts::CONSENT_CATEGORIES,
        channels: &channels,
        sync_error: sync_error.as_deref(),
    }
    .render()
    .map_err(|e| anyhow::anyhow!("Failed to render the admin page: {e}"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// An admin request whose Bearer session verified and whose user and install are still live.
pub struct AdminContext {
    pub store_id: i64,
    pub store_hash: StoreHash,
    pub bc_user_id: i64,
}

impl FromRequest for AdminContext {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        Box::pin(async move {
            let state = state.ok_or_else(|| anyhow::anyhow!("application state is missing"))?;
            let session = bearer
                .and_then(|token| state.sessions.verify(&token))
                .ok_or(ApiError::SessionExpired)?;
            let store_id = db::stores::live_session_store(
                &state.pool,
                &session.store_hash,
                session.install_id,
                session.bc_user_id,
            )
            .await?
            .ok_or(ApiError::SessionExpired)?;
            Ok(AdminContext {
                store_id,
                store_hash: session.store_hash,
                bc_user_id: session.bc_user_id,
            })
        })
    }
}
