use serde_json::json;

use crate::helpers::*;
use crate::load::bad_token_corpus;

#[tokio::test]
async fn uninstall_purges_secrets_and_users_keeps_the_row_and_audit_and_is_idempotent() {
    let app = spawn_app().await;
    app.install_as("abc123", "tok", 2, 1).await;
    assert_eq!(
        app.load(&signed(&callback_claims("abc123", 3, 1)))
            .await
            .status(),
        200
    );

    let response = app
        .uninstall(&signed(&callback_claims("abc123", 1, 1)))
        .await;
    assert_eq!(response.status(), 200);

    let row: (Option<Vec<u8>>, Option<String>, Option<uuid::Uuid>, bool) = sqlx::query_as(
        "SELECT access_token_sealed, access_token_key_id, install_id, uninstalled_at IS NOT NULL FROM stores WHERE store_hash = 'abc123'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(row, (None, None, None, true));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM store_users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);

    let before = app.snapshot().await;
    let again = app
        .uninstall(&signed(&callback_claims("abc123", 1, 1)))
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        app.snapshot().await,
        before,
        "a second uninstall changes nothing"
    );

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actions, vec!["install", "user_added", "uninstall"]);
    assert_eq!(
        app.uninstall(&signed(&callback_claims("neverseen", 1, 1)))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn bad_uninstall_and_remove_user_tokens_are_refused_without_any_state_change() {
    let app = spawn_app().await;
    app.install("abc123", "tok").await;
    let before = app.snapshot().await;
    for (case, token) in bad_token_corpus("abc123") {
        let response = app.uninstall(&token).await;
        assert_eq!(response.status(), 401, "uninstall: {case}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signed_payload");
        assert_eq!(
            app.remove_user(&token).await.status(),
            401,
            "remove_user: {case}"
        );
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn sessions_issued_before_an_uninstall_are_refused_even_after_a_reinstall() {
    let app = spawn_app().await;
    let old_session = app.install("abc123", "tok").await;
    assert_eq!(app.get_settings(Some(&old_session)).await.status(), 200);

    app.uninstall(&signed(&callback_claims("abc123", 1, 1)))
        .await;
    assert_eq!(app.get_settings(Some(&old_session)).await.status(), 401);

    let new_session = app.install("abc123", "tok2").await;
    assert_eq!(app.get_settings(Some(&new_session)).await.status(), 200);
    assert_eq!(app.get_settings(Some(&old_session)).await.status(), 401);
}

#[tokio::test]
async fn remove_user_deletes_that_user_and_ends_their_sessions_only() {
    let app = spawn_app().await;
    let owner_session = app.install("abc123", "tok").await;
    let page = app.load(&signed(&callback_claims("abc123", 9, 1))).await;
    let staff_session = session_from_page(&page.text().await.unwrap());
    assert_eq!(app.get_settings(Some(&staff_session)).await.status(), 200);

    let response = app
        .remove_user(&signed(&callback_claims("abc123", 9, 1)))
        .await;
    assert_eq!(response.status(), 200);

    let remaining: Vec<i64> = sqlx::query_scalar("SELECT bc_user_id FROM store_users")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(remaining, vec![1]);
    assert_eq!(app.get_settings(Some(&staff_session)).await.status(), 401);
    assert_eq!(app.get_settings(Some(&owner_session)).await.status(), 200);
    let audit: (String, serde_json::Value) =
        sqlx::query_as("SELECT action, detail FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        (
            "user_removed".into(),
            json!({"bc_user_id": 9, "email": "user9@merchant.test"})
        )
    );
    // Idempotent.
    assert_eq!(
        app.remove_user(&signed(&callback_claims("abc123", 9, 1)))
            .await
            .status(),
        200
    );
}
