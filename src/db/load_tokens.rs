use anyhow::Context;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// Records a `/load` token id; false when it was already used (a replay).
#[tracing::instrument(name = "Consume /load token id", skip_all)]
pub async fn consume(
    conn: &mut PgConnection,
    jti: &str,
    expires_at: OffsetDateTime,
) -> anyhow::Result<bool> {
    // Keep the table small: ids are only needed while their token could still verify.
    sqlx::query!("DELETE FROM consumed_load_tokens WHERE expires_at < now()")
        .execute(&mut *conn)
        .await
        .context("Failed to purge expired /load token ids")?;
    let inserted = sqlx::query!(
        "INSERT INTO consumed_load_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        jti,
        expires_at
    )
    .execute(&mut *conn)
    .await
    .context("Failed to record the /load token id")?;
    Ok(inserted.rows_affected() == 1)
}
