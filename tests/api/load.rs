use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn load_answers_the_admin_page_and_records_a_new_user() {
    let app = spawn_app().await;
    app.install("abc123", "tok").await;

    let response = app.load(&signed(&callback_claims("abc123", 42, 1))).await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors")
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let session = session_from_page(&response.text().await.unwrap());
    let settings = app.get_settings(Some(&session)).await;
    assert_eq!(settings.status(), 200);
    let user: (String, bool) =
        sqlx::query_as("SELECT email, is_owner FROM store_users WHERE bc_user_id = 42")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(user, ("user42@merchant.test".into(), false));
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actions, vec!["install", "user_added"]);
}

#[tokio::test]
async fn hs512_is_accepted_and_nbf_within_the_leeway_is_tolerated() {
    let app = spawn_app().await;
    app.install("abc123", "tok").await;
    let response = app
        .load(&sign(
            &callback_claims("abc123", 1, 1),
            Algorithm::HS512,
            CLIENT_SECRET,
        ))
        .await;
    assert_eq!(response.status(), 200);

    let mut skewed = callback_claims("abc123", 1, 1);
    skewed["nbf"] = json!(now() + 30);
    skewed["iat"] = json!(now() + 30);
    assert_eq!(app.load(&signed(&skewed)).await.status(), 200);

    let mut just_expired = callback_claims("abc123", 1, 1);
    just_expired["exp"] = json!(now() - 30);
    assert_eq!(app.load(&signed(&just_expired)).await.status(), 200);
}

/// Every token BigCommerce would never send: each is a 401 and changes nothing.
pub fn bad_token_corpus(store_hash: &str) -> Vec<(&'static str, String)> {
    let good = callback_claims(store_hash, 1, 1);
    let with = |key: &str, value: serde_json::Value| {
        let mut c = good.clone();
        c[key] = value;
        signed(&c)
    };
    let without = |key: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(key);
        signed(&c)
    };
    vec![
        (
            "wrong secret",
            sign(&good, Algorithm::HS256, "another-secret"),
        ),
        ("expired", with("exp", json!(now() - 120))),
        ("nbf beyond leeway", with("nbf", json!(now() + 300))),
        ("wrong aud", with("aud", json!("someone-else"))),
        ("wrong iss", with("iss", json!("bc/apps"))),
        ("alg none", unsigned(&good)),
        ("HS384", sign(&good, Algorithm::HS384, CLIENT_SECRET)),
        ("garbage", "not.a.jwt".to_string()),
        ("empty", String::new()),
        ("sub not a store", with("sub", json!(store_hash))),
        ("sub malformed hash", with("sub", json!("stores/ABC!"))),
        ("missing exp", without("exp")),
        ("missing aud", without("aud")),
        ("missing user", without("user")),
    ]
}

#[tokio::test]
async fn bad_load_tokens_are_refused_without_any_state_change() {
    let app = spawn_app().await;
    app.install("abc123", "tok").await;
    let before = app.snapshot().await;

    for (case, token) in bad_token_corpus("abc123") {
        let response = app.load(&token).await;
        assert_eq!(response.status(), 401, "{case}");
        assert!(
            response.text().await.unwrap().contains("Session expired"),
            "{case}"
        );
    }
    let missing = app.get("/load").await;
    assert_eq!(missing.status(), 401);

    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_replayed_load_token_is_refused() {
    let app = spawn_app().await;
    app.install("abc123", "tok").await;
    let token = signed(&callback_claims("abc123", 1, 1));
    assert_eq!(app.load(&token).await.status(), 200);

    let replay = app.load(&token).await;
    assert_eq!(replay.status(), 401);
    let html = replay.text().await.unwrap();
    assert!(
        html.contains("Session expired — reopen Profile Bridge from the Apps menu"),
        "{html}"
    );

    let mut no_jti = callback_claims("abc123", 1, 1);
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_eq!(app.load(&signed(&no_jti)).await.status(), 401);
}

#[tokio::test]
async fn expired_token_ids_are_purged_so_the_table_stays_small() {
    let app = spawn_app().await;
    app.install("abc123", "tok").await;
    sqlx::query("INSERT INTO consumed_load_tokens (jti, expires_at) VALUES ('old', now() - interval '1 minute')")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.load(&signed(&callback_claims("abc123", 1, 1)))
            .await
            .status(),
        200
    );
    let jtis: Vec<String> = sqlx::query_scalar("SELECT jti FROM consumed_load_tokens")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(jtis.len(), 1);
    assert_ne!(jtis[0], "old");
}

#[tokio::test]
async fn unknown_or_uninstalled_stores_get_a_403_page() {
    let app = spawn_app().await;
    let unknown = app.load(&signed(&callback_claims("nosuch1", 1, 1))).await;
    assert_eq!(unknown.status(), 403);
    assert!(unknown.text().await.unwrap().contains("not installed"));

    app.install("abc123", "tok").await;
    assert_eq!(
        app.uninstall(&signed(&callback_claims("abc123", 1, 1)))
            .await
            .status(),
        200
    );
    let before = app.snapshot().await;
    let after_uninstall = app.load(&signed(&callback_claims("abc123", 1, 1))).await;
    assert_eq!(after_uninstall.status(), 403);
    assert_eq!(app.snapshot().await, before);
}
