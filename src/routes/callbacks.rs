//! BigCommerce callbacks: `/auth` (install), `/load` (open the app), `/uninstall`, `/remove_user`.

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use crate::bigcommerce::oauth::{AuthorizationRequest, ExchangeError};
use crate::bigcommerce::scripts::Mode;
use crate::bigcommerce::signed_payload::SignedCallback;
use crate::db::{self, audit::Actor, users::StoreUser};
use crate::domain::StoreHash;
use crate::routes::admin::render_admin_page;
use crate::routes::errors::{ApiError, PageError};
use crate::settings::join;
use crate::startup::AppState;

#[derive(Deserialize)]
struct AuthQuery {
    code: Option<SecretString>,
    scope: Option<String>,
    context: Option<String>,
    external_install: Option<String>,
}

#[derive(Deserialize)]
struct SignedQuery {
    signed_payload_jwt: Option<String>,
}

fn signed_payload(req: &HttpRequest) -> Option<String> {
    web::Query::<SignedQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().signed_payload_jwt)
}

fn external_install_redirect(state: &AppState, outcome: &str) -> HttpResponse {
    let location = join(
        &state.settings.bigcommerce.login_url,
        &format!(
            "/app/{}/install/{outcome}",
            state.settings.bigcommerce.client_id
        ),
    );
    HttpResponse::Found()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

/// `GET /auth`: exchange the code, store the install, answer with the admin page (or the external-install redirect).
#[tracing::instrument(name = "Install callback", skip_all, fields(store_hash = tracing::field::Empty))]
pub async fn auth(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    const INCOMPLETE: &str = "The install request from BigCommerce is missing its code, scope or store. Start the install again from the BigCommerce control panel.";
    let query = web::Query::<AuthQuery>::from_query(req.query_string())
        .map_err(|_| PageError::BadRequest(INCOMPLETE))?
        .into_inner();
    let external = query.external_install.is_some();
    let (Some(code), Some(scope), Some(context)) = (query.code, query.scope, query.context) else {
        return Err(PageError::BadRequest(INCOMPLETE));
    };
    let store_hash =
        StoreHash::from_context(&context).map_err(|_| PageError::BadRequest(INCOMPLETE))?;
    tracing::Span::current().record("store_hash", store_hash.as_str());

    let redirect_uri = state.settings.auth_callback_url();
    let exchanged = state
        .exchanger
        .exchange(&AuthorizationRequest {
            code: &code,
            scope: &scope,
            context: &context,
            redirect_uri: &redirect_uri,
        })
        .await
        .and_then(|token| {
            // The token must be for the store the browser named; anything else is not an install we can trust.
            if token.context == context {
                Ok(token)
            } else {
                Err(ExchangeError::Unavailable(anyhow::anyhow!(
                    "token response names another store"
                )))
            }
        });
    let token = match exchanged {
        Ok(token) => token,
        Err(error) => {
            tracing::warn!(error = ?error, "install code exchange failed");
            if external {
                return Ok(external_install_redirect(&state, "failed"));
            }
            return Err(PageError::BadGateway(
                "BigCommerce did not confirm this install, so nothing was saved. Please try installing again.",
            ));
        }
    };

    let owner = token.owner.clone().unwrap_or_else(|| token.user.clone());
    let install_id = Uuid::new_v4();
    let sealed = state.keyring.seal(
        &token.access_token,
        &db::stores::access_token_aad(&store_hash),
    );
    let granted_scope = token.scope.clone().unwrap_or(scope);

    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    let reinstall = db::stores::find_id(&mut tx, &store_hash).await?.is_some();
    let store_id = db::stores::upsert_install(
        &mut tx,
        &db::stores::NewInstall {
            store_hash: &store_hash,
            access_token: &sealed,
            scope: &granted_scope,
            account_uuid: token.account_uuid.as_deref(),
            owner_bc_user_id: owner.id,
            owner_email: &owner.email,
            install_id,
        },
    )
    .await?;
    db::users::upsert(
        &mut tx,
        store_id,
        &StoreUser {
            bc_user_id: owner.id,
            email: &owner.email,
            is_owner: true,
        },
    )
    .await?;
    db::users::upsert(
        &mut tx,
        store_id,
        &StoreUser {
            bc_user_id: token.user.id,
            email: &token.user.email,
            is_owner: token.user.id == owner.id,
        },
    )
    .await?;
    db::audit::record(
        &mut tx,
        store_id,
        if reinstall { "reinstall" } else { "install" },
        Actor {
            user_id: Some(token.user.id),
            email: Some(&token.user.email),
        },
        serde_json::json!({ "scope": granted_scope }),
    )
    .await?;
    tx.commit().await.context("Failed to commit the install")?;
    tracing::info!(reinstall, "store installed");

    // Storefront scripts: a failure is recorded for the admin page and retried at /load, never fails the install.
    if let Err(error) = state
        .reconciler
        .reconcile(store_id, &store_hash, &token.access_token, Mode::Install)
        .await
    {
        tracing::error!(error = ?error, "storefront-script reconciliation failed");
    }
    state.resolver.klaviyo_changed(&store_hash, store_id).await;

    if external {
        return Ok(external_install_redirect(&state, "succeeded"));
    }
    render_admin_page(
        &state,
        store_id,
        &store_hash,
        token.user.id,
        &token.user.email,
        install_id,
    )
    .await
}

/// `GET /load`: the merchant opens the app; verify, record the user, answer with the admin page.
#[tracing::instrument(name = "Load callback", skip_all, fields(store_hash = tracing::field::Empty))]
pub async fn load(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let callback = state
        .callbacks
        .verify(signed_payload(&req).as_deref())
        .map_err(|e| {
            tracing::info!(reason = %e, "refused /load token");
            PageError::SessionExpired
        })?;
    tracing::Span::current().record("store_hash", callback.store_hash.as_str());

    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    let store = db::stores::find_installed(&mut tx, &callback.store_hash)
        .await?
        .ok_or(PageError::Forbidden(
            "Profile Bridge is not installed on this store. Install it from the Apps marketplace, then open it again.",
        ))?;
    // BigCommerce always sends a jti; without one a token could be replayed for its whole 24 h life.
    let jti = callback.jti.as_deref().ok_or(PageError::SessionExpired)?;
    let replay_window_end = callback.expires_at
        + time::Duration::seconds(crate::bigcommerce::signed_payload::LEEWAY_SECONDS as i64);
    if !db::load_tokens::consume(&mut tx, jti, replay_window_end).await? {
        tracing::info!("refused a replayed /load token");
        return Err(PageError::SessionExpired);
    }
    let added = db::users::upsert(
        &mut tx,
        store.id,
        &StoreUser {
            bc_user_id: callback.user.id,
            email: &callback.user.email,
            is_owner: callback.user_is_owner(),
        },
    )
    .await?;
    if added {
        db::audit::record(
            &mut tx,
            store.id,
            "user_added",
            Actor {
                user_id: Some(callback.user.id),
                email: Some(&callback.user.email),
            },
            serde_json::json!({ "bc_user_id": callback.user.id }),
        )
        .await?;
    }
    tx.commit().await.context("Failed to commit the load")?;

    // Creates scripts for channels that never had one (or whose creation failed) and reports drift.
    match state.store_access_token(&callback.store_hash).await {
        Ok(Some(token)) => {
            if let Err(error) = state
                .reconciler
                .reconcile(store.id, &callback.store_hash, &token, Mode::Load)
                .await
            {
                tracing::error!(error = ?error, "storefront-script check failed");
            }
            state.resolver.store_changed(&callback.store_hash).await;
        }
        Ok(None) => tracing::warn!("installed store without a token"),
        Err(error) => tracing::error!(error = ?error, "could not unseal the store token"),
    }
    render_admin_page(
        &state,
        store.id,
        &callback.store_hash,
        callback.user.id,
        &callback.user.email,
        store.install_id,
    )
    .await
}

fn verify_server_callback(req: &HttpRequest, state: &AppState) -> Result<SignedCallback, ApiError> {
    state
        .callbacks
        .verify(signed_payload(req).as_deref())
        .map_err(|e| {
            tracing::info!(reason = %e, "refused callback token");
            ApiError::InvalidSignedPayload
        })
}

/// `GET /uninstall` (server to server): forget the store's secrets and users; keep the row and the audit log.
#[tracing::instrument(name = "Uninstall callback", skip_all, fields(store_hash = tracing::field::Empty))]
pub async fn uninstall(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let callback = verify_server_callback(&req, &state)?;
    tracing::Span::current().record("store_hash", callback.store_hash.as_str());

    // Revoke a Klaviyo OAuth grant before its tokens are deleted (best effort, short timeouts).
    let mut conn = state
        .pool
        .acquire()
        .await
        .context("Failed to get a connection")?;
    if let Some(store_id) = db::stores::find_id(&mut conn, &callback.store_hash).await? {
        crate::klaviyo::credentials::revoke_if_oauth(
            &state.pool,
            &state.keyring,
            state.klaviyo_oauth.as_deref(),
            store_id,
            &callback.store_hash,
        )
        .await;
    }
    drop(conn);
    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    let uninstalled_store = db::stores::find_id(&mut tx, &callback.store_hash).await?;
    if let Some(store_id) = uninstalled_store {
        db::settings::delete_all(&mut tx, store_id).await?;
        let was_installed = db::stores::mark_uninstalled(&mut tx, store_id).await?;
        let users_removed = db::users::delete_all(&mut tx, store_id).await?;
        db::storefront::forget_store(&mut tx, store_id).await?;
        if was_installed {
            db::audit::record(
                &mut tx,
                store_id,
                "uninstall",
                Actor {
                    user_id: Some(callback.user.id),
                    email: Some(&callback.user.email),
                },
                serde_json::json!({ "users_removed": users_removed }),
            )
            .await?;
        }
    }
    tx.commit()
        .await
        .context("Failed to commit the uninstall")?;
    if let Some(store_id) = uninstalled_store {
        state
            .resolver
            .klaviyo_changed(&callback.store_hash, store_id)
            .await;
    }
    tracing::info!("store uninstalled");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "uninstalled" })))
}

/// `GET /remove_user` (server to server): that user's access and live sessions end.
#[tracing::instrument(name = "Remove-user callback", skip_all, fields(store_hash = tracing::field::Empty))]
pub async fn remove_user(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let callback = verify_server_callback(&req, &state)?;
    tracing::Span::current().record("store_hash", callback.store_hash.as_str());

    let mut tx = state
        .pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    if let Some(store_id) = db::stores::find_id(&mut tx, &callback.store_hash).await?
        && db::users::delete(&mut tx, store_id, callback.user.id).await?
    {
        db::audit::record(
            &mut tx,
            store_id,
            "user_removed",
            Actor {
                user_id: None,
                email: None,
            },
            serde_json::json!({ "bc_user_id": callback.user.id, "email": callback.user.email }),
        )
        .await?;
    }
    tx.commit()
        .await
        .context("Failed to commit the user removal")?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "user_removed" })))
}
