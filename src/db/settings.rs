//! The merchant's settings: sealed Klaviyo and Algolia credentials, and the rules.

use anyhow::Context;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::crypto::Sealed;
use crate::domain::StoreHash;

/// Associated data binding a sealed settings value to its column and store.
pub fn aad(column: &str, store_hash: &StoreHash) -> String {
    format!("store_settings.{column}:{store_hash}")
}

/// What the admin page may see: no secret, only hints.
#[derive(Debug, Default)]
pub struct SettingsSummary {
    pub klaviyo_method: Option<String>,
    pub klaviyo_hint: Option<String>,
    pub algolia_app_id: Option<String>,
    pub algolia_index: Option<String>,
    pub algolia_key_hint: Option<String>,
    pub rules: serde_json::Value,
}

pub async fn summary(pool: &PgPool, store_id: i64) -> anyhow::Result<SettingsSummary> {
    let row = sqlx::query_as!(
        SettingsSummary,
        r#"SELECT klaviyo_method, klaviyo_hint, algolia_app_id, algolia_index, algolia_key_hint, rules
           FROM store_settings WHERE store_id = $1"#,
        store_id
    )
    .fetch_optional(pool)
    .await
    .context("Failed to read the store settings")?;
    Ok(row.unwrap_or(SettingsSummary {
        rules: serde_json::json!([]),
        ..Default::default()
    }))
}

pub struct KlaviyoSecrets {
    pub method: String,
    pub secret: Sealed,
    pub refresh: Option<Sealed>,
    pub expires_at: Option<OffsetDateTime>,
    pub generation: i64,
}

pub async fn klaviyo_secrets(
    pool: &PgPool,
    store_id: i64,
) -> anyhow::Result<Option<KlaviyoSecrets>> {
    let row = sqlx::query!(
        r#"SELECT klaviyo_method AS "method!", klaviyo_secret_sealed AS "secret!", klaviyo_secret_key_id AS "secret_key_id!",
                  klaviyo_refresh_sealed, klaviyo_refresh_key_id, klaviyo_expires_at, klaviyo_generation
           FROM store_settings
           WHERE store_id = $1 AND klaviyo_method IS NOT NULL AND klaviyo_secret_sealed IS NOT NULL"#,
        store_id
    )
    .fetch_optional(pool)
    .await
    .context("Failed to read the Klaviyo credentials")?;
    Ok(row.map(|r| KlaviyoSecrets {
        method: r.method,
        secret: Sealed {
            key_id: r.secret_key_id,
            bytes: r.secret,
        },
        refresh: r
            .klaviyo_refresh_sealed
            .zip(r.klaviyo_refresh_key_id)
            .map(|(bytes, key_id)| Sealed { key_id, bytes }),
        expires_at: r.klaviyo_expires_at,
        generation: r.klaviyo_generation,
    }))
}

pub struct NewKlaviyoCredentials<'a> {
    pub method: &'a str,
    pub secret: &'a Sealed,
    pub refresh: Option<&'a Sealed>,
    pub expires_at: Option<OffsetDateTime>,
    pub scope: Option<&'a str>,
    pub hint: Option<&'a str>,
}

#[tracing::instrument(name = "Save Klaviyo credentials", skip_all, fields(store_id, method = credentials.method))]
pub async fn save_klaviyo(
    conn: &mut PgConnection,
    store_id: i64,
    credentials: &NewKlaviyoCredentials<'_>,
) -> anyhow::Result<()> {
    let (refresh, refresh_key) = credentials
        .refresh
        .map(|s| (Some(s.bytes.clone()), Some(s.key_id.clone())))
        .unwrap_or((None, None));
    sqlx::query!(
        r#"INSERT INTO store_settings (store_id, klaviyo_method, klaviyo_secret_sealed, klaviyo_secret_key_id,
                                      klaviyo_refresh_sealed, klaviyo_refresh_key_id, klaviyo_expires_at,
                                      klaviyo_scope, klaviyo_hint, klaviyo_generation)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nextval('klaviyo_generation_seq'))
           ON CONFLICT (store_id) DO UPDATE SET
               klaviyo_method = EXCLUDED.klaviyo_method,
               klaviyo_secret_sealed = EXCLUDED.klaviyo_secret_sealed,
               klaviyo_secret_key_id = EXCLUDED.klaviyo_secret_key_id,
               klaviyo_refresh_sealed = EXCLUDED.klaviyo_refresh_sealed,
               klaviyo_refresh_key_id = EXCLUDED.klaviyo_refresh_key_id,
               klaviyo_expires_at = EXCLUDED.klaviyo_expires_at,
               klaviyo_scope = EXCLUDED.klaviyo_scope,
               klaviyo_hint = EXCLUDED.klaviyo_hint,
               klaviyo_generation = nextval('klaviyo_generation_seq'),
               updated_at = now()"#,
        store_id,
        credentials.method,
        &credentials.secret.bytes,
        credentials.secret.key_id,
        refresh,
        refresh_key,
        credentials.expires_at,
        credentials.scope,
        credentials.hint
    )
    .execute(conn)
    .await
    .context("Failed to save the Klaviyo credentials")?;
    Ok(())
}

/// A refreshed OAuth token pair; the generation is kept (same account, same cache).
pub async fn update_klaviyo_tokens(
    pool: &PgPool,
    store_id: i64,
    access: &Sealed,
    refresh: &Sealed,
    expires_at: OffsetDateTime,
) -> anyhow::Result<()> {
    sqlx::query!(
        r#"UPDATE store_settings SET klaviyo_secret_sealed = $2, klaviyo_secret_key_id = $3,
               klaviyo_refresh_sealed = $4, klaviyo_refresh_key_id = $5, klaviyo_expires_at = $6, updated_at = now()
           WHERE store_id = $1 AND klaviyo_method = 'oauth'"#,
        store_id,
        &access.bytes,
        access.key_id,
        &refresh.bytes,
        refresh.key_id,
        expires_at
    )
    .execute(pool)
    .await
    .context("Failed to save refreshed Klaviyo tokens")?;
    Ok(())
}

pub async fn clear_klaviyo(conn: &mut PgConnection, store_id: i64) -> anyhow::Result<()> {
    sqlx::query!(
        r#"UPDATE store_settings SET klaviyo_method = NULL, klaviyo_secret_sealed = NULL, klaviyo_secret_key_id = NULL,
               klaviyo_refresh_sealed = NULL, klaviyo_refresh_key_id = NULL, klaviyo_expires_at = NULL,
               klaviyo_scope = NULL, klaviyo_hint = NULL, klaviyo_generation = nextval('klaviyo_generation_seq'), updated_at = now()
           WHERE store_id = $1"#,
        store_id
    )
    .execute(conn)
    .await
    .context("Failed to forget the Klaviyo credentials")?;
    Ok(())
}

pub struct AlgoliaSecrets {
    pub app_id: String,
    pub index: String,
    pub key: Sealed,
}

pub async fn algolia_secrets(
    pool: &PgPool,
    store_id: i64,
) -> anyhow::Result<Option<AlgoliaSecrets>> {
    let row = sqlx::query!(
        r#"SELECT algolia_app_id AS "app_id!", algolia_index AS "index!", algolia_key_sealed AS "key!",
                  algolia_key_key_id AS "key_id!"
           FROM store_settings WHERE store_id = $1 AND algolia_key_sealed IS NOT NULL"#,
        store_id
    )
    .fetch_optional(pool)
    .await
    .context("Failed to read the Algolia settings")?;
    Ok(row.map(|r| AlgoliaSecrets {
        app_id: r.app_id,
        index: r.index,
        key: Sealed {
            key_id: r.key_id,
            bytes: r.key,
        },
    }))
}

#[tracing::instrument(name = "Save Algolia settings", skip_all, fields(store_id))]
pub async fn save_algolia(
    conn: &mut PgConnection,
    store_id: i64,
    app_id: &str,
    index: &str,
    key: &Sealed,
    hint: &str,
) -> anyhow::Result<()> {
    sqlx::query!(
        r#"INSERT INTO store_settings (store_id, algolia_app_id, algolia_index, algolia_key_sealed, algolia_key_key_id, algolia_key_hint)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (store_id) DO UPDATE SET
               algolia_app_id = EXCLUDED.algolia_app_id, algolia_index = EXCLUDED.algolia_index,
               algolia_key_sealed = EXCLUDED.algolia_key_sealed, algolia_key_key_id = EXCLUDED.algolia_key_key_id,
               algolia_key_hint = EXCLUDED.algolia_key_hint, updated_at = now()"#,
        store_id,
        app_id,
        index,
        &key.bytes,
        key.key_id,
        hint
    )
    .execute(conn)
    .await
    .context("Failed to save the Algolia settings")?;
    Ok(())
}

pub async fn clear_algolia(conn: &mut PgConnection, store_id: i64) -> anyhow::Result<()> {
    sqlx::query!(
        r#"UPDATE store_settings SET algolia_app_id = NULL, algolia_index = NULL, algolia_key_sealed = NULL,
               algolia_key_key_id = NULL, algolia_key_hint = NULL, updated_at = now()
           WHERE store_id = $1"#,
        store_id
    )
    .execute(conn)
    .await
    .context("Failed to forget the Algolia settings")?;
    Ok(())
}

pub async fn save_rules(
    conn: &mut PgConnection,
    store_id: i64,
    rules: &serde_json::Value,
) -> anyhow::Result<()> {
    sqlx::query!(
        r#"INSERT INTO store_settings (store_id, rules) VALUES ($1, $2)
           ON CONFLICT (store_id) DO UPDATE SET rules = EXCLUDED.rules, updated_at = now()"#,
        store_id,
        rules
    )
    .execute(conn)
    .await
    .context("Failed to save the rules")?;
    Ok(())
}

/// Uninstall: credentials and rules go; pending OAuth attempts too.
pub async fn delete_all(conn: &mut PgConnection, store_id: i64) -> anyhow::Result<()> {
    sqlx::query!("DELETE FROM store_settings WHERE store_id = $1", store_id)
        .execute(&mut *conn)
        .await
        .context("Failed to delete the store settings")?;
    sqlx::query!(
        "DELETE FROM klaviyo_oauth_pending WHERE store_id = $1",
        store_id
    )
    .execute(&mut *conn)
    .await
    .context("Failed to delete pending Klaviyo connections")?;
    Ok(())
}

pub async fn insert_pending_oauth(
    pool: &PgPool,
    state: &str,
    store_id: i64,
    bc_user_id: i64,
    verifier: &Sealed,
    expires_at: OffsetDateTime,
) -> anyhow::Result<()> {
    sqlx::query!("DELETE FROM klaviyo_oauth_pending WHERE expires_at < now()")
        .execute(pool)
        .await
        .context("Failed to purge expired Klaviyo connections")?;
    sqlx::query!(
        r#"INSERT INTO klaviyo_oauth_pending (state, store_id, bc_user_id, verifier_sealed, verifier_key_id, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)"#,
        state,
        store_id,
        bc_user_id,
        &verifier.bytes,
        verifier.key_id,
        expires_at
    )
    .execute(pool)
    .await
    .context("Failed to record the Klaviyo connection attempt")?;
    Ok(())
}

pub struct PendingOAuth {
    pub store_id: i64,
    pub store_hash: String,
    pub bc_user_id: i64,
    pub verifier: Sealed,
}

/// Consumes a pending attempt: a state works once, and only before it expires.
pub async fn take_pending_oauth(
    pool: &PgPool,
    state: &str,
) -> anyhow::Result<Option<PendingOAuth>> {
    let row = sqlx::query!(
        r#"WITH taken AS (DELETE FROM klaviyo_oauth_pending WHERE state = $1 RETURNING *)
           SELECT t.store_id, s.store_hash, t.bc_user_id, t.verifier_sealed, t.verifier_key_id, t.expires_at
           FROM taken t JOIN stores s ON s.id = t.store_id WHERE s.uninstalled_at IS NULL"#,
        state
    )
    .fetch_optional(pool)
    .await
    .context("Failed to read the Klaviyo connection attempt")?;
    Ok(row
        .filter(|r| r.expires_at > OffsetDateTime::now_utc())
        .map(|r| PendingOAuth {
            store_id: r.store_id,
            store_hash: r.store_hash,
            bc_user_id: r.bc_user_id,
            verifier: Sealed {
                key_id: r.verifier_key_id,
                bytes: r.verifier_sealed,
            },
        }))
}
