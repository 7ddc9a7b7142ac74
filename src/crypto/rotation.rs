//! `rotate-keys`: re-seal every stored secret with the active key, in one transaction.

use anyhow::Context;
use sqlx::PgPool;

use crate::crypto::Keyring;
use crate::db;
use crate::domain::StoreHash;

/// Returns how many values were re-sealed. Fails (changing nothing) if any value cannot be opened.
#[tracing::instrument(name = "Rotate encryption keys", skip_all)]
pub async fn reseal_all(pool: &PgPool, keyring: &Keyring) -> anyhow::Result<usize> {
    let mut tx = pool
        .begin()
        .await
        .context("Failed to start a transaction")?;
    let mut resealed = 0;
    for row in db::stores::all_sealed_tokens(&mut tx).await? {
        if !keyring.is_stale(&row.sealed) {
            continue;
        }
        let hash = StoreHash::parse(&row.store_hash).context("A stored store hash is malformed")?;
        let aad = db::stores::access_token_aad(&hash);
        let plain = keyring
            .open(&row.sealed, &aad)
            .with_context(|| format!("Failed to open the access token of store {hash}"))?;
        db::stores::replace_sealed_token(&mut tx, row.id, &keyring.seal(&plain, &aad)).await?;
        resealed += 1;
    }
    tx.commit()
        .await
        .context("Failed to commit the re-sealed secrets")?;
    Ok(resealed)
}
