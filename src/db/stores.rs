use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::crypto::Sealed;
use crate::domain::StoreHash;

/// The associated data that binds a sealed access token to its store's row.
pub fn access_token_aad(store_hash: &StoreHash) -> String {
    format!("stores.access_token:{store_hash}")
}

pub struct NewInstall<'a> {
    pub store_hash: &'a StoreHash,
    pub access_token: &'a Sealed,
    pub scope: &'a str,
    pub account_uuid: Option<&'a str>,
    pub owner_bc_user_id: i64,
    pub owner_email: &'a str,
    pub install_id: Uuid,
}

pub struct InstalledStore {
    pub id: i64,
    pub install_id: Uuid,
}

/// Inserts the store or, on re-install, replaces its token, scope, owner and install id.
#[tracing::instrument(name = "Upsert installed store", skip_all, fields(store_hash = %install.store_hash))]
pub async fn upsert_install(
    conn: &mut PgConnection,
    install: &NewInstall<'_>,
) -> anyhow::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO stores (store_hash, install_id, access_token_sealed, access_token_key_id, scope,
                               account_uuid, owner_bc_user_id, owner_email, installed_at, uninstalled_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), NULL)
           ON CONFLICT (store_hash) DO UPDATE SET
               install_id = EXCLUDED.install_id,
               access_token_sealed = EXCLUDED.access_token_sealed,
               access_token_key_id = EXCLUDED.access_token_key_id,
               scope = EXCLUDED.scope,
               account_uuid = EXCLUDED.account_uuid,
               owner_bc_user_id = EXCLUDED.owner_bc_user_id,
               owner_email = EXCLUDED.owner_email,
               installed_at = now(),
               uninstalled_at = NULL,
               updated_at = now()
           RETURNING id"#,
        install.store_hash.as_str(),
        install.install_id,
        &install.access_token.bytes,
        install.access_token.key_id,
        install.scope,
        install.account_uuid,
        install.owner_bc_user_id,
        install.owner_email,
    )
    .fetch_one(conn)
    .await
    .context("Failed to upsert the store")
}

/// The store, if it is installed now.
#[tracing::instrument(name = "Find installed store", skip(conn))]
pub async fn find_installed(
    conn: &mut PgConnection,
    store_hash: &StoreHash,
) -> anyhow::Result<Option<InstalledStore>> {
    let row = sqlx::query!(
        r#"SELECT id, install_id AS "install_id!" FROM stores
           WHERE store_hash = $1 AND install_id IS NOT NULL AND uninstalled_at IS NULL"#,
        store_hash.as_str()
    )
    .fetch_optional(conn)
    .await
    .context("Failed to look up the store")?;
    Ok(row.map(|r| InstalledStore {
        id: r.id,
        install_id: r.install_id,
    }))
}

/// The store's id whatever its state (uninstall keeps the row for the audit log).
pub async fn find_id(
    conn: &mut PgConnection,
    store_hash: &StoreHash,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT id FROM stores WHERE store_hash = $1",
        store_hash.as_str()
    )
    .fetch_optional(conn)
    .await
    .context("Failed to look up the store")
}

/// Forgets the token and ends the install; keeps the row (hash, uninstall time) for the audit log.
#[tracing::instrument(name = "Mark store uninstalled", skip(conn))]
pub async fn mark_uninstalled(conn: &mut PgConnection, store_id: i64) -> anyhow::Result<bool> {
    let done = sqlx::query!(
        r#"UPDATE stores SET install_id = NULL, access_token_sealed = NULL, access_token_key_id = NULL,
                  scope = NULL, uninstalled_at = now(), updated_at = now()
           WHERE id = $1 AND uninstalled_at IS NULL"#,
        store_id
    )
    .execute(conn)
    .await
    .context("Failed to mark the store uninstalled")?;
    Ok(done.rows_affected() > 0)
}

/// The store id behind a live admin session: same install, store installed, user still has access.
#[tracing::instrument(name = "Check admin session subject", skip(pool))]
pub async fn live_session_store(
    pool: &PgPool,
    store_hash: &StoreHash,
    install_id: Uuid,
    bc_user_id: i64,
) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar!(
        r#"SELECT s.id FROM stores s
           JOIN store_users u ON u.store_id = s.id AND u.bc_user_id = $3
           WHERE s.store_hash = $1 AND s.install_id = $2 AND s.uninstalled_at IS NULL"#,
        store_hash.as_str(),
        install_id,
        bc_user_id
    )
    .fetch_optional(pool)
    .await
    .context("Failed to check the admin session")
}

/// The sealed BigCommerce token of an installed store.
pub async fn sealed_access_token(
    pool: &PgPool,
    store_hash: &StoreHash,
) -> anyhow::Result<Option<Sealed>> {
    let row = sqlx::query!(
        r#"SELECT access_token_sealed AS "bytes!", access_token_key_id AS "key_id!" FROM stores
           WHERE store_hash = $1 AND access_token_sealed IS NOT NULL AND uninstalled_at IS NULL"#,
        store_hash.as_str()
    )
    .fetch_optional(pool)
    .await
    .context("Failed to read the store's access token")?;
    Ok(row.map(|r| Sealed {
        key_id: r.key_id,
        bytes: r.bytes,
    }))
}
