//! Subcommands: `serve` (default), `migrate`, `rotate-keys`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use sqlx::postgres::PgConnectOptions;

use crate::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use crate::settings::Settings;
use crate::startup::Application;
use crate::{db, telemetry};

#[derive(Parser)]
#[command(
    name = "profile-bridge",
    version,
    about = "BigCommerce app: Klaviyo profiles to Algolia rule contexts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the app (default). Runs pending migrations first.
    Serve,
    /// Run database migrations and exit.
    Migrate,
    /// Re-seal every stored secret with the active ENCRYPTION_KEY (old keys go in ENCRYPTION_KEYS_OLD).
    RotateKeys,
    /// The whole system on this machine: embedded Postgres, the app, and emulated BigCommerce, Klaviyo and
    /// Algolia. Needs no account and no variable.
    Demo,
}

pub async fn run(cli: Cli) -> ExitCode {
    if matches!(cli.command, Some(Command::Demo)) {
        telemetry::init(
            crate::settings::LogFormat::Pretty,
            "warn,profile_bridge=info",
            std::io::stderr,
        );
        return match demo().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format, "info,sqlx=warn", std::io::stdout);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::RotateKeys => rotate_keys(settings).await,
        Command::Demo => unreachable!("handled above: the demo needs no settings"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configured database, or the embedded one under `./.data/` (kept alive by the returned guard).
pub fn open_database(
    settings: &Settings,
) -> anyhow::Result<(PgConnectOptions, Option<EmbeddedPostgres>)> {
    if let Some(url) = &settings.database_url {
        return Ok((db::connect_options(url)?, None));
    }
    let cluster = EmbeddedPostgres::start(EmbeddedOptions {
        root: ".data".into(),
        bin_dir: settings.pg_bin_dir.clone(),
        ephemeral: false,
        allow_fallback: true,
    })
    .context("Failed to start the embedded Postgres (set DATABASE_URL to use your own server)")?;
    tracing::info!(
        data = %cluster.root().display(),
        port = cluster.port(),
        "embedded Postgres started (stopped again on exit)"
    );
    let server = db::connect_options(&SecretString::from(cluster.url("postgres")))?;
    Ok((server.database("profile_bridge"), Some(cluster)))
}

async fn connect_and_migrate(
    settings: &Settings,
) -> anyhow::Result<(sqlx::PgPool, Option<EmbeddedPostgres>)> {
    let (options, cluster) = open_database(settings)?;
    if cluster.is_some() {
        db::ensure_database(options.clone(), "profile_bridge").await?;
    }
    let pool = db::lazy_pool(options);
    db::migrate(&pool).await?;
    Ok((pool, cluster))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let (pool, mut cluster) = connect_and_migrate(&settings).await?;
    let app_url = settings.app_url.clone();
    let app = Application::build(settings, pool).await?;
    tracing::info!(port = app.port(), app_url = %app_url, "Profile Bridge is listening");
    let served = app.run_until_stopped().await;
    if let Some(cluster) = cluster.as_mut() {
        cluster.stop();
        tracing::info!("embedded Postgres stopped");
    }
    served.context("The HTTP server failed")
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let (_pool, _cluster) = connect_and_migrate(&settings).await?;
    println!("migrations are up to date");
    Ok(())
}

async fn rotate_keys(settings: Settings) -> anyhow::Result<()> {
    let (pool, _cluster) = connect_and_migrate(&settings).await?;
    let resealed = crate::crypto::rotation::reseal_all(&pool, &settings.keyring).await?;
    println!(
        "re-sealed {resealed} stored secret(s) with key {}",
        settings.keyring.active_key_id()
    );
    Ok(())
}

async fn demo() -> anyhow::Result<()> {
    let demo = crate::sandbox::demo::Demo::start(crate::sandbox::demo::DemoOptions {
        database: None,
        pg_bin_dir: std::env::var_os("PG_BIN_DIR").map(Into::into),
    })
    .await?;
    println!();
    println!("  Profile Bridge demo is running. Open the control panel to start:");
    println!();
    println!("      {}/", demo.sandbox.control_panel_url);
    println!();
    println!(
        "  Storefront: {}/   App: {}/",
        demo.sandbox.storefront_url, demo.app_url
    );
    println!(
        "  Install the app, paste the demo credentials shown there, add a rule, then browse the storefront."
    );
    println!("  Press Ctrl-C to stop (the demo's Postgres goes with it).");
    let _ = tokio::signal::ctrl_c().await;
    println!("  Stopping…");
    demo.stop().await;
    Ok(())
}
