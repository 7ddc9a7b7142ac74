//! Builds the HTTP server: binding is separate from running, so tests can bind port 0 and read the port back.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sqlx::PgPool;
use tracing_actix_web::TracingLogger;

use crate::algolia::keys::AlgoliaClient;
use crate::bigcommerce::client::BigCommerceClient;
use crate::bigcommerce::oauth::TokenExchanger;
use crate::bigcommerce::scripts::ScriptReconciler;
use crate::bigcommerce::signed_payload::CallbackVerifier;
use crate::crypto::Keyring;
use crate::domain::StoreHash;
use crate::klaviyo::client::KlaviyoClient;
use crate::klaviyo::oauth::KlaviyoOAuth;
use crate::personalization::budget::{Budgets, Limits, SystemClock};
use crate::personalization::identity::CustomerTokenVerifier;
use crate::personalization::lookup::ProfileLookups;
use crate::personalization::resolver::Resolver;
use crate::routes::errors::{self, json_error_handler};
use crate::routes::resolve::{self, ResolveLimits};
use crate::routes::storefront::StorefrontScript;
use crate::routes::{admin, assets, callbacks, ops, storefront};
use crate::session::SessionSigner;
use crate::settings::{Settings, join};
use crate::telemetry::RedactingRootSpan;

/// Shared by every handler.
pub struct AppState {
    pub settings: Settings,
    pub pool: PgPool,
    pub keyring: Arc<Keyring>,
    pub sessions: SessionSigner,
    pub callbacks: CallbackVerifier,
    pub exchanger: TokenExchanger,
    pub reconciler: ScriptReconciler,
    pub storefront_script: StorefrontScript,
    pub klaviyo: KlaviyoClient,
    /// Present when `KLAVIYO_CLIENT_ID`/`KLAVIYO_CLIENT_SECRET` enable "Connect with Klaviyo".
    pub klaviyo_oauth: Option<Arc<KlaviyoOAuth>>,
    pub algolia: AlgoliaClient,
    pub resolver: Resolver,
    pub customer_tokens: CustomerTokenVerifier,
    pub resolve_limits: ResolveLimits,
}

impl AppState {
    /// The installed store's BigCommerce token, unsealed for one use.
    pub async fn store_access_token(
        &self,
        store_hash: &StoreHash,
    ) -> anyhow::Result<Option<secrecy::SecretString>> {
        let Some(sealed) = crate::db::stores::sealed_access_token(&self.pool, store_hash).await?
        else {
            return Ok(None);
        };
        let token = self
            .keyring
            .open(&sealed, &crate::db::stores::access_token_aad(store_hash))
            .context("Failed to unseal the store's access token")?;
        Ok(Some(token))
    }
}

pub struct Application {
    port: u16,
    server: Server,
}

/// The admin page may only be framed by the BigCommerce control panel (plus `ADMIN_FRAME_ANCESTORS`).
pub fn admin_content_security_policy(settings: &Settings) -> String {
    let mut ancestors = vec![
        "https://*.mybigcommerce.com".to_string(),
        "https://login.bigcommerce.com".to_string(),
    ];
    ancestors.extend(settings.admin_frame_ancestors.iter().cloned());
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {}",
        ancestors.join(" ")
    )
}

fn admin_headers(csp: &str) -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", csp.to_string()))
        .add(("Cache-Control", "no-store"))
}

impl Application {
    pub async fn build(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen_addr)
            .with_context(|| format!("Failed to bind {}", settings.listen_addr))?;
        Self::build_on(settings, pool, listener).await
    }

    /// Serves on a listener bound by the caller (the demo must know the app's URL before building it).
    pub async fn build_on(
        settings: Settings,
        pool: PgPool,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let port = listener
            .local_addr()
            .context("Failed to read the bound port")?
            .port();
        let storefront_script = StorefrontScript::new(&settings.bigcommerce.client_id);
        let reconciler = ScriptReconciler {
            client: BigCommerceClient::new(settings.bigcommerce.api_url.clone())?,
            pool: pool.clone(),
            script_url: join(&settings.app_url, "/storefront.js"),
            script_version: storefront_script.version.clone(),
        };
        let klaviyo = KlaviyoClient::new(&settings.klaviyo)?;
        let klaviyo_oauth = KlaviyoOAuth::from_settings(&settings)?.map(Arc::new);
        let budgets = Arc::new(Budgets::new(
            Arc::new(SystemClock::default()),
            Limits {
                per_sec: settings.klaviyo.budget_per_sec,
                per_min: settings.klaviyo.budget_per_min,
            },
            Limits {
                per_sec: settings.klaviyo.predictive_budget_per_sec,
                per_min: settings.klaviyo.predictive_budget_per_min,
            },
        ));
        let resolver = Resolver::new(
            pool.clone(),
            settings.keyring.clone(),
            klaviyo_oauth.clone(),
            ProfileLookups::new(klaviyo.clone(), budgets),
            std::time::Duration::from_millis(settings.resolve.klaviyo_wait_ms),
        );
        let state = web::Data::new(AppState {
            customer_tokens: CustomerTokenVerifier::new(
                &settings.bigcommerce.client_id,
                &settings.bigcommerce.client_secret,
            )?,
            resolve_limits: ResolveLimits::new(&settings.resolve),
            resolver,
            klaviyo,
            klaviyo_oauth,
            algolia: AlgoliaClient::new(settings.algolia_api_url.clone())?,
            reconciler,
            storefront_script,
            keyring: settings.keyring.clone(),
            sessions: SessionSigner::new(&settings.keyring)?,
            callbacks: CallbackVerifier::new(
                &settings.bigcommerce.client_id,
                &settings.bigcommerce.client_secret,
            )?,
            exchanger: TokenExchanger::new(&settings.bigcommerce)?,
            settings,
            pool,
        });
        let csp = admin_content_security_policy(&state.settings);
        let metrics = web::Data::new(ops::prometheus_handle());
        let housekeeping = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                housekeeping.resolve_limits.shrink();
            }
        });

        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(ops::track_requests))
                .wrap(TracingLogger::<RedactingRootSpan>::new())
                .wrap(
                    DefaultHeaders::new()
                        .add(("Referrer-Policy", "no-referrer"))
                        .add(("X-Content-Type-Options", "nosniff")),
                )
                .app_data(state.clone())
                .app_data(metrics.clone())
                .service(
                    web::resource("/auth")
                        .wrap(admin_headers(&csp))
                        .route(web::get().to(callbacks::auth)),
                )
                .service(
                    web::resource("/load")
                        .wrap(admin_headers(&csp))
                        .route(web::get().to(callbacks::load)),
                )
                .route("/uninstall", web::get().to(callbacks::uninstall))
                .route("/remove_user", web::get().to(callbacks::remove_user))
                .service(
                    web::resource("/api/v1/resolve")
                        .route(web::post().to(resolve::resolve))
                        .route(web::method(actix_web::http::Method::OPTIONS).to(resolve::preflight))
                        .default_service(web::to(errors::api_method_not_allowed)),
                )
                .service(
                    web::scope("/api/v1")
                        .wrap(admin_headers(&csp))
                        .default_service(web::to(errors::api_not_found))
                        .app_data(
                            web::JsonConfig::default()
                                .limit(8192)
                                .error_handler(json_error_handler),
                        )
                        .route("/settings", web::get().to(admin::settings::get_settings))
                        .route(
                            "/settings/script",
                            web::put().to(admin::settings::put_script_settings),
                        )
                        .route(
                            "/script/repair",
                            web::post().to(admin::settings::repair_script),
                        )
                        .route(
                            "/settings/klaviyo",
                            web::put().to(admin::credentials::put_klaviyo),
                        )
                        .route(
                            "/settings/klaviyo",
                            web::delete().to(admin::credentials::delete_klaviyo),
                        )
                        .route(
                            "/settings/algolia",
                            web::put().to(admin::credentials::put_algolia),
                        )
                        .route(
                            "/settings/algolia",
                            web::delete().to(admin::credentials::delete_algolia),
                        )
                        .route(
                            "/settings/rules",
                            web::put().to(admin::credentials::put_rules),
                        )
                        .route(
                            "/klaviyo/oauth/start",
                            web::post().to(admin::klaviyo_oauth::start),
                        )
                        .route("/preview", web::post().to(admin::preview::preview)),
                )
                .service(
                    web::resource("/klaviyo/oauth/callback")
                        .wrap(admin_headers(&csp))
                        .route(web::get().to(admin::klaviyo_oauth::callback)),
                )
                .route("/storefront.js", web::get().to(storefront::storefront_js))
                .route("/static/{name}", web::get().to(assets::static_asset))
                .route("/healthz", web::get().to(ops::healthz))
                .route("/readyz", web::get().to(ops::readyz))
                .route("/metrics", web::get().to(ops::metrics))
                .default_service(web::to(errors::page_not_found))
        })
        .listen(listener)
        .context("Failed to listen")?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
