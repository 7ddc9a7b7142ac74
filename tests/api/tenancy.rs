//! Tenant isolation: a store-A session never reads or changes store B's rows, forged sessions change nothing,
//! and removed users or uninstalled stores cannot write.

use base64::Engine;
use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

use crate::fake_bigcommerce::FakeBigCommerce;
use crate::helpers::*;
use crate::settings_api::{KEY, SEARCH_KEY, mount_algolia_key, mount_klaviyo_ok};

async fn rows_of(app: &TestApp, store_hash: &str) -> Value {
    sqlx::query_scalar::<_, Value>(
        "SELECT json_build_object(
            'store', (SELECT to_jsonb(s) - 'updated_at' FROM stores s WHERE store_hash = $1),
            'settings', (SELECT to_jsonb(t) - 'updated_at' FROM store_settings t JOIN stores s ON s.id = t.store_id WHERE s.store_hash = $1),
            'users', (SELECT coalesce(json_agg(u ORDER BY bc_user_id), '[]') FROM store_users u JOIN stores s ON s.id = u.store_id WHERE s.store_hash = $1),
            'channels', (SELECT coalesce(json_agg(c ORDER BY channel_id), '[]') FROM storefront_channels c JOIN stores s ON s.id = c.store_id WHERE s.store_hash = $1),
            'audit', (SELECT coalesce(json_agg(a ORDER BY a.id), '[]') FROM audit_log a JOIN stores s ON s.id = a.store_id WHERE s.store_hash = $1),
            'pending', (SELECT count(*) FROM klaviyo_oauth_pending p JOIN stores s ON s.id = p.store_id WHERE s.store_hash = $1))",
    )
    .bind(store_hash)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn call(
    app: &TestApp,
    session: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> u16 {
    let mut request = app
        .http
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(session);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

fn writes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::PUT,
            "/api/v1/settings/klaviyo",
            Some(json!({"private_key": KEY})),
        ),
        (
            Method::PUT,
            "/api/v1/settings/algolia",
            Some(json!({"app_id": "APPA", "search_key": SEARCH_KEY, "index": "products"})),
        ),
        (
            Method::PUT,
            "/api/v1/settings/rules",
            Some(json!({"rules": [{"context": "a-only", "when": {"profile": "exists"}}]})),
        ),
        (
            Method::PUT,
            "/api/v1/settings/script",
            Some(json!({"consent_category": "functional"})),
        ),
        (Method::POST, "/api/v1/script/repair", None),
        (Method::DELETE, "/api/v1/settings/klaviyo", None),
        (Method::DELETE, "/api/v1/settings/algolia", None),
    ]
}

#[tokio::test]
async fn every_write_with_store_a_leaves_store_b_untouched() {
    let platforms = wiremock::MockServer::start().await;
    mount_klaviyo_ok(&platforms).await;
    mount_algolia_key(&platforms, json!(["search"]), json!([])).await;
    let uri = platforms.uri();
    let app = spawn_app_with(|env| {
        env.insert("KLAVIYO_API_URL".into(), uri.clone());
        env.insert("ALGOLIA_API_URL".into(), uri);
    })
    .await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    let session_a = app.install("aaa111", "tok").await;
    let session_b = app.install("bbb222", "tok").await;
    for (method, path, body) in writes().into_iter().take(3) {
        assert_eq!(
            call(&app, &session_b, method, path, body).await,
            200,
            "{path}"
        );
    }
    let scripts_before = bc.scripts().len();
    let b_before = rows_of(&app, "bbb222").await;

    for (method, path, body) in writes() {
        assert_eq!(
            call(&app, &session_a, method.clone(), path, body).await,
            200,
            "{method} {path}"
        );
        assert_eq!(
            rows_of(&app, "bbb222").await,
            b_before,
            "store B changed after {method} {path}"
        );
    }
    let settings_b: Value = app
        .http
        .get(format!("{}/api/v1/settings", app.address))
        .bearer_auth(&session_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings_b["store_hash"], "bbb222");
    assert_eq!(
        settings_b["rules"][0]["context"], "a-only",
        "B set the same rule as A's first write"
    );
    assert_eq!(
        settings_b["klaviyo"]["connected"], true,
        "A's DELETE did not reach B"
    );
    assert!(bc.scripts().len() >= scripts_before);
}

#[tokio::test]
async fn forged_sessions_cannot_write_and_change_nothing() {
    let app = spawn_app().await;
    let session_a = app.install("aaa111", "tok").await;
    app.install("bbb222", "tok").await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = session_a.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("bbb222");
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(claims.to_string()),
        parts[2]
    );
    let resigned = sign(&claims, Algorithm::HS256, "guessed-key");
    let before = app.snapshot().await;
    for token in [
        edited.as_str(),
        resigned.as_str(),
        unsigned(&claims).as_str(),
        "",
        "garbage",
    ] {
        for (method, path, body) in writes() {
            assert_eq!(
                call(&app, token, method.clone(), path, body).await,
                401,
                "{method} {path} with {token:.20}"
            );
        }
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn removed_users_and_uninstalled_stores_cannot_write() {
    let app = spawn_app().await;
    let owner = app.install("aaa111", "tok").await;
    let staff = session_from_page(
        &app.load(&signed(&callback_claims("aaa111", 5, 1)))
            .await
            .text()
            .await
            .unwrap(),
    );
    app.remove_user(&signed(&callback_claims("aaa111", 5, 1)))
        .await;
    let before = app.snapshot().await;
    for (method, path, body) in writes() {
        assert_eq!(
            call(&app, &staff, method, path, body).await,
            401,
            "removed user: {path}"
        );
    }
    assert_eq!(app.snapshot().await, before);

    app.uninstall(&signed(&callback_claims("aaa111", 1, 1)))
        .await;
    let before = app.snapshot().await;
    for (method, path, body) in writes() {
        assert_eq!(
            call(&app, &owner, method, path, body).await,
            401,
            "uninstalled store: {path}"
        );
    }
    assert_eq!(app.snapshot().await, before);
}
