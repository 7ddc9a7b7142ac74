use anyhow::Context;
use sqlx::{PgConnection, PgPool};

pub struct StoreUser<'a> {
    pub bc_user_id: i64,
    pub email: &'a str,
    pub is_owner: bool,
}

/// Inserts or refreshes a store user; true when the user is new to this store.
#[tracing::instrument(name = "Upsert store user", skip_all, fields(store_id, bc_user_id = user.bc_user_id))]
pub async fn upsert(
    conn: &mut PgConnection,
    store_id: i64,
    user: &StoreUser<'_>,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO store_users (store_id, bc_user_id, email, is_owner)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (store_id, bc_user_id)
           DO UPDATE SET email = EXCLUDED.email, is_owner = EXCLUDED.is_owner, last_seen_at = now()
           RETURNING (xmax = 0) AS "inserted!""#,
        store_id,
        user.bc_user_id,
        user.email,
        user.is_owner
    )
    .fetch_one(conn)
    .await
    .context("Failed to upsert the store user")?;
    Ok(inserted)
}

/// Removes one user's access; true when the user existed.
#[tracing::instrument(name = "Delete store user", skip(conn))]
pub async fn delete(
    conn: &mut PgConnection,
    store_id: i64,
    bc_user_id: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query!(
        "DELETE FROM store_users WHERE store_id = $1 AND bc_user_id = $2",
        store_id,
        bc_user_id
    )
    .execute(conn)
    .await
    .context("Failed to delete the store user")?;
    Ok(done.rows_affected() > 0)
}

#[tracing::instrument(name = "Delete all store users", skip(conn))]
pub async fn delete_all(conn: &mut PgConnection, store_id: i64) -> anyhow::Result<u64> {
    let done = sqlx::query!("DELETE FROM store_users WHERE store_id = $1", store_id)
        .execute(conn)
        .await
        .context("Failed to delete the store's users")?;
    Ok(done.rows_affected())
}

pub async fn count(pool: &PgPool, store_id: i64) -> anyhow::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM store_users WHERE store_id = $1"#,
        store_id
    )
    .fetch_one(pool)
    .await
    .context("Failed to count store users")
}
