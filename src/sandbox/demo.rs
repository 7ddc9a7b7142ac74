//! `profile-bridge demo`: an embedded Postgres, the app and the sandbox emulators on loopback ports, configured
//! for each other. Needs no account and no variable; everything is fresh on each start.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use anyhow::Context;
use secrecy::SecretString;
use sqlx::postgres::PgConnectOptions;

use crate::crypto::generate_key_base64;
use crate::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use crate::sandbox::{Sandbox, SandboxOptions, demo_profiles};
use crate::settings::Settings;
use crate::startup::Application;

pub struct DemoOptions {
    /// A server to create the demo database on; None starts a throwaway embedded cluster.
    pub database: Option<PgConnectOptions>,
    pub pg_bin_dir: Option<std::path::PathBuf>,
}

pub struct Demo {
    pub app_url: String,
    pub sandbox: Sandbox,
    pub client_id: String,
    app: ServerHandle,
    cluster: Option<EmbeddedPostgres>,
}

impl Demo {
    pub async fn start(options: DemoOptions) -> anyhow::Result<Self> {
        let (server, cluster) = match options.database {
            Some(server) => (server, None),
            None => {
                let cluster = EmbeddedPostgres::start(EmbeddedOptions {
                    root: std::env::temp_dir().join(format!(
                        "profile-bridge-demo-{}",
                        uuid::Uuid::new_v4().simple()
                    )),
                    bin_dir: options.pg_bin_dir,
                    ephemeral: true,
                    allow_fallback: false,
                })
                .context("Failed to start the demo's Postgres")?;
                let url = SecretString::from(cluster.url("postgres"));
                (crate::db::connect_options(&url)?, Some(cluster))
            }
        };
        let db_name = format!("demo_{}", uuid::Uuid::new_v4().simple());
        crate::db::ensure_database(server.clone(), &db_name).await?;
        let pool = crate::db::lazy_pool(server.database(&db_name));
        crate::db::migrate(&pool).await?;

        let listener = TcpListener::bind("127.0.0.1:0").context("Failed to bind the app's port")?;
        let port = listener.local_addr()?.port();
        let app_url = format!("http://127.0.0.1:{port}");
        let client_id = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let client_secret = uuid::Uuid::new_v4().simple().to_string();
        let sandbox = Sandbox::start(SandboxOptions {
            app_url: app_url.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            klaviyo_profiles: demo_profiles(),
            klaviyo_latency: Duration::from_millis(40),
        })
        .await?;

        let env: HashMap<&str, String> = [
            ("BC_CLIENT_ID", client_id.clone()),
            ("BC_CLIENT_SECRET", client_secret),
            ("ENCRYPTION_KEY", generate_key_base64()),
            ("APP_URL", app_url.clone()),
            ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
            ("BC_LOGIN_URL", sandbox.control_panel_url.clone()),
            ("BC_API_URL", sandbox.control_panel_url.clone()),
            ("KLAVIYO_API_URL", sandbox.klaviyo_url.clone()),
            ("ALGOLIA_API_URL", sandbox.algolia_url.clone()),
            ("ADMIN_FRAME_ANCESTORS", sandbox.control_panel_url.clone()),
        ]
        .into_iter()
        .collect();
        let settings = Settings::from_lookup(|k| env.get(k).cloned()).context("demo settings")?;
        let app = Application::build_on(settings, pool, listener).await?;
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Ok(Self {
            app_url,
            sandbox,
            client_id,
            app: handle,
            cluster,
        })
    }

    pub async fn stop(mut self) {
        self.app.stop(true).await;
        self.sandbox.stop().await;
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.stop();
        }
    }
}
