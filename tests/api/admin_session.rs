use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::*;

fn decode_payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn encode_payload(claims: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
}

fn sign_with_app_key(app: &TestApp, claims: &Value) -> String {
    let key = app.keyring.derive_key("admin-session-v1");
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.expose_secret()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_session_reads_its_own_store_only() {
    let app = spawn_app().await;
    let session = app.install("abc123", "tok").await;
    let response = app.get_settings(Some(&session)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["store_hash"], "abc123");

    let claims = decode_payload(&session);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 3600);
}

#[tokio::test]
async fn forged_edited_expired_and_unsigned_sessions_are_refused() {
    let app = spawn_app().await;
    let session = app.install("abc123", "tok").await;
    app.install("other9", "tok").await;
    let claims = decode_payload(&session);
    let parts: Vec<&str> = session.split('.').collect();

    let mut other_store = claims.clone();
    other_store["sub"] = json!("other9");
    let mut other_user = claims.clone();
    other_user["uid"] = json!(2);
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 60);
    expired["iat"] = json!(now() - 3700);

    let cases = vec![
        ("no header", None),
        ("garbage", Some("garbage".to_string())),
        (
            "re-signed with another key",
            Some(sign(&claims, Algorithm::HS256, "not-the-app-key")),
        ),
        (
            "store claim edited",
            Some(format!(
                "{}.{}.{}",
                parts[0],
                encode_payload(&other_store),
                parts[2]
            )),
        ),
        (
            "user claim edited",
            Some(format!(
                "{}.{}.{}",
                parts[0],
                encode_payload(&other_user),
                parts[2]
            )),
        ),
        ("expired", Some(sign_with_app_key(&app, &expired))),
        ("alg none", Some(unsigned(&claims))),
        (
            "a BigCommerce load token",
            Some(signed(&callback_claims("abc123", 1, 1))),
        ),
    ];
    for (case, token) in cases {
        let response = app.get_settings(token.as_deref()).await;
        assert_eq!(response.status(), 401, "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "session_expired", "{case}");
        assert_eq!(
            body["error"]["message"],
            "Session expired — reopen Profile Bridge from the Apps menu"
        );
    }
    // The genuine token still works; a correctly signed token naming a user without access does not.
    assert_eq!(app.get_settings(Some(&session)).await.status(), 200);
    assert_eq!(
        app.get_settings(Some(&sign_with_app_key(&app, &other_user)))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn the_admin_page_script_and_styles_are_served() {
    let app = spawn_app().await;
    let js = app.get("/static/admin.js?v=1").await;
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        js.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    let etag = js.headers()["etag"].to_str().unwrap().to_string();
    let cached = app
        .http
        .get(format!("{}/static/admin.js", app.address))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(app.get("/static/admin.css").await.status(), 200);
    assert_eq!(app.get("/static/nope.js").await.status(), 404);
}
