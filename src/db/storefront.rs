//! Storefront channels (one script each), the consent category, and storefront origins.

use anyhow::Context;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    pub channel_id: i64,
    pub name: String,
    pub script_uuid: Option<String>,
    pub drift: bool,
    pub last_error: Option<String>,
}

pub async fn channels(pool: &PgPool, store_id: i64) -> anyhow::Result<Vec<ChannelRow>> {
    sqlx::query_as!(
        ChannelRow,
        "SELECT channel_id, name, script_uuid, drift, last_error FROM storefront_channels
         WHERE store_id = $1 ORDER BY channel_id",
        store_id
    )
    .fetch_all(pool)
    .await
    .context("Failed to read storefront channels")
}

#[tracing::instrument(name = "Save storefront channel state", skip(pool, row), fields(channel_id = row.channel_id))]
pub async fn save_channel(pool: &PgPool, store_id: i64, row: &ChannelRow) -> anyhow::Result<()> {
    sqlx::query!(
        r#"INSERT INTO storefront_channels (store_id, channel_id, name, script_uuid, drift, last_error, last_error_at)
           VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6::text IS NULL THEN NULL ELSE now() END)
           ON CONFLICT (store_id, channel_id) DO UPDATE SET
               name = EXCLUDED.name, script_uuid = EXCLUDED.script_uuid, drift = EXCLUDED.drift,
               last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at, updated_at = now()"#,
        store_id,
        row.channel_id,
        row.name,
        row.script_uuid,
        row.drift,
        row.last_error
    )
    .execute(pool)
    .await
    .context("Failed to save the storefront channel")?;
    Ok(())
}

pub async fn consent_category(pool: &PgPool, store_id: i64) -> anyhow::Result<String> {
    sqlx::query_scalar!(
        "SELECT script_consent_category FROM stores WHERE id = $1",
        store_id
    )
    .fetch_one(pool)
    .await
    .context("Failed to read the consent category")
}

pub async fn set_consent_category(
    conn: &mut PgConnection,
    store_id: i64,
    category: &str,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE stores SET script_consent_category = $2, updated_at = now() WHERE id = $1",
        store_id,
        category
    )
    .execute(conn)
    .await
    .context("Failed to save the consent category")?;
    Ok(())
}

pub async fn sync_error(pool: &PgPool, store_id: i64) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT storefront_sync_error FROM stores WHERE id = $1",
        store_id
    )
    .fetch_one(pool)
    .await
    .context("Failed to read the storefront sync state")
}

pub async fn set_sync_error(
    pool: &PgPool,
    store_id: i64,
    error: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE stores SET storefront_sync_error = $2 WHERE id = $1",
        store_id,
        error
    )
    .execute(pool)
    .await
    .context("Failed to record the storefront sync state")?;
    Ok(())
}

/// Replaces the store's storefront origins with a freshly fetched set.
#[tracing::instrument(name = "Replace storefront origins", skip(pool, origins), fields(count = origins.len()))]
pub async fn replace_origins(
    pool: &PgPool,
    store_id: i64,
    origins: &[(String, Option<i64>)],
) -> anyhow::Result<()> {
    let mut tx = pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    sqlx::query!("DELETE FROM store_origins WHERE store_id = $1", store_id)
        .execute(&mut *tx)
        .await
        .context("Failed to clear storefront origins")?;
    for (origin, channel_id) in origins {
        sqlx::query!(
            "INSERT INTO store_origins (store_id, origin, channel_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            store_id,
            origin,
            *channel_id
        )
        .execute(&mut *tx)
        .await
        .context("Failed to save a storefront origin")?;
    }
    tx.commit()
        .await
        .context("Failed to commit storefront origins")
}

pub async fn origins(pool: &PgPool, store_id: i64) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT origin FROM store_origins WHERE store_id = $1 ORDER BY origin",
        store_id
    )
    .fetch_all(pool)
    .await
    .context("Failed to read storefront origins")
}

/// Uninstall: BigCommerce removes `auto_uninstall` scripts itself; forget our view of them and the origins.
pub async fn forget_store(conn: &mut PgConnection, store_id: i64) -> anyhow::Result<()> {
    sqlx::query!(
        "DELETE FROM storefront_channels WHERE store_id = $1",
        store_id
    )
    .execute(&mut *conn)
    .await
    .context("Failed to forget storefront channels")?;
    sqlx::query!("DELETE FROM store_origins WHERE store_id = $1", store_id)
        .execute(&mut *conn)
        .await
        .context("Failed to forget storefront origins")?;
    sqlx::query!(
        "UPDATE stores SET storefront_sync_error = NULL WHERE id = $1",
        store_id
    )
    .execute(&mut *conn)
    .await
    .context("Failed to clear the storefront sync state")?;
    Ok(())
}

/// Every storefront origin of every installed store (the resolve endpoint's CORS preflight allow-list).
pub async fn all_installed_origins(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT o.origin FROM store_origins o JOIN stores s ON s.id = o.store_id
           WHERE s.uninstalled_at IS NULL AND s.install_id IS NOT NULL"#
    )
    .fetch_all(pool)
    .await
    .context("Failed to read storefront origins")
}
