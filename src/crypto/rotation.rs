//! `rotate-keys`: re-seal every stored secret with the active key, in one transaction.

use anyhow::Context;
use sqlx::PgPool;

use crate::crypto::{Keyring, Sealed};

/// Every sealed column: where it lives, how its row is keyed, and the associated data it was sealed with.
struct SealedColumn {
    name: &'static str,
    select: &'static str,
    update: &'static str,
}

const COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        name: "BigCommerce access tokens",
        select: "SELECT id::text, 'stores.access_token:' || store_hash, access_token_sealed, access_token_key_id
                 FROM stores WHERE access_token_sealed IS NOT NULL FOR UPDATE",
        update: "UPDATE stores SET access_token_sealed = $1, access_token_key_id = $2 WHERE id = $3::bigint",
    },
    SealedColumn {
        name: "Klaviyo keys and access tokens",
        select: "SELECT st.store_id::text, 'store_settings.klaviyo_secret:' || s.store_hash, st.klaviyo_secret_sealed, st.klaviyo_secret_key_id
                 FROM store_settings st JOIN stores s ON s.id = st.store_id
                 WHERE st.klaviyo_secret_sealed IS NOT NULL FOR UPDATE OF st",
        update: "UPDATE store_settings SET klaviyo_secret_sealed = $1, klaviyo_secret_key_id = $2 WHERE store_id = $3::bigint",
    },
    SealedColumn {
        name: "Klaviyo refresh tokens",
        select: "SELECT st.store_id::text, 'store_settings.klaviyo_refresh:' || s.store_hash, st.klaviyo_refresh_sealed, st.klaviyo_refresh_key_id
                 FROM store_settings st JOIN stores s ON s.id = st.store_id
                 WHERE st.klaviyo_refresh_sealed IS NOT NULL FOR UPDATE OF st",
        update: "UPDATE store_settings SET klaviyo_refresh_sealed = $1, klaviyo_refresh_key_id = $2 WHERE store_id = $3::bigint",
    },
    SealedColumn {
        name: "Algolia search keys",
        select: "SELECT st.store_id::text, 'store_settings.algolia_key:' || s.store_hash, st.algolia_key_sealed, st.algolia_key_key_id
                 FROM store_settings st JOIN stores s ON s.id = st.store_id
                 WHERE st.algolia_key_sealed IS NOT NULL FOR UPDATE OF st",
        update: "UPDATE store_settings SET algolia_key_sealed = $1, algolia_key_key_id = $2 WHERE store_id = $3::bigint",
    },
    SealedColumn {
        name: "pending Klaviyo connections",
        select: "SELECT state, 'klaviyo_oauth_pending.verifier:' || state, verifier_sealed, verifier_key_id
                 FROM klaviyo_oauth_pending FOR UPDATE",
        update: "UPDATE klaviyo_oauth_pending SET verifier_sealed = $1, verifier_key_id = $2 WHERE state = $3",
    },
];

/// Returns how many values were re-sealed. Fails (changing nothing) if any value cannot be opened.
#[tracing::instrument(name = "Rotate encryption keys", skip_all)]
pub async fn reseal_all(pool: &PgPool, keyring: &Keyring) -> anyhow::Result<usize> {
    let mut tx = pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    let mut resealed = 0;
    for column in COLUMNS {
        let rows: Vec<(String, String, Vec<u8>, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(column.select))
                .fetch_all(&mut *tx)
                .await
                .with_context(|| format!("Failed to read {}", column.name))?;
        for (id, aad, bytes, key_id) in rows {
            let sealed = Sealed { key_id, bytes };
            if !keyring.is_stale(&sealed) {
                continue;
            }
            let plain = keyring
                .open(&sealed, &aad)
                .with_context(|| format!("Failed to open one of the {} ({aad})", column.name))?;
            let fresh = keyring.seal(&plain, &aad);
            sqlx::query(sqlx::AssertSqlSafe(column.update))
                .bind(&fresh.bytes)
                .bind(&fresh.key_id)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .with_context(|| {
                    format!("Failed to store a re-sealed value of the {}", column.name)
                })?;
            resealed += 1;
        }
    }
    tx.commit()
        .await
        .context("Failed to commit the re-sealed secrets")?;
    Ok(resealed)
}
