//! `POST /api/v1/preview` `{"email"}`: what a shopper with this email would get, through the same resolver as
//! the storefront (fresh settings; the secured key itself is not shown).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::domain::Email;
use crate::personalization::identity::Identity;
use crate::routes::admin::AdminContext;
use crate::routes::errors::ApiError;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    email: Option<String>,
}

#[tracing::instrument(name = "Preview a shopper", skip_all, fields(store_hash = %admin.store_hash))]
pub async fn preview(
    admin: AdminContext,
    state: web::Data<AppState>,
    body: web::Json<PreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = body
        .into_inner()
        .email
        .as_deref()
        .map(Email::parse)
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::invalid("invalid_email", "email", "Enter a shopper's email address")
        })?;
    state.resolver.store_changed(&admin.store_hash).await;
    let config = state
        .resolver
        .store(&admin.store_hash)
        .await?
        .ok_or(ApiError::SessionExpired)?;
    let mut warnings = Vec::new();
    if config.klaviyo.is_none() {
        warnings.push("Klaviyo is not connected: only customer-group rules can apply".to_string());
    }
    if config.algolia.is_none() {
        warnings
            .push("Algolia is not connected: the storefront gets no search key yet".to_string());
    }
    let answer = state
        .resolver
        .resolve(
            &config,
            Identity::Customer {
                email,
                customer_group: None,
            },
        )
        .await;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "profile_id": answer.profile_id,
        "rule_contexts": answer.rule_contexts,
        "degraded": answer.degraded,
        "algolia_index": answer.algolia.as_ref().map(|a| a.index.clone()),
        "warnings": warnings,
    })))
}
