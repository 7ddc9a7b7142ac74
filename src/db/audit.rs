use anyhow::Context;
use sqlx::PgConnection;

/// Who did it: a BigCommerce user, or BigCommerce itself (server-to-server callbacks name the user too).
pub struct Actor<'a> {
    pub user_id: Option<i64>,
    pub email: Option<&'a str>,
}

/// Appends one audit entry. `detail` must never hold a secret value (hints and names only).
#[tracing::instrument(name = "Write audit entry", skip(conn, actor, detail))]
pub async fn record(
    conn: &mut PgConnection,
    store_id: i64,
    action: &str,
    actor: Actor<'_>,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO audit_log (store_id, action, actor_user_id, actor_email, detail) VALUES ($1, $2, $3, $4, $5)",
        store_id,
        action,
        actor.user_id,
        actor.email,
        detail
    )
    .execute(conn)
    .await
    .context("Failed to write the audit log")?;
    Ok(())
}
