//! Its own test binary because it installs a process-wide TRACE subscriber for every target (actix, reqwest,
//! hyper, sqlx included): the logs of an install and a load must hold neither the signed token, nor the code,
//! nor the access token, nor the client secret; and a resolve's logs hold neither the shopper's email, nor the
//! customer token, nor the Klaviyo key.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};

use helpers::*;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn install_and_load_logs_hold_no_secret_at_trace_level() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let klaviyo = wiremock::MockServer::start().await;
    let klaviyo_uri = klaviyo.uri();
    let app = spawn_app_with(|env| {
        env.insert("KLAVIYO_API_URL".into(), klaviyo_uri.clone());
    })
    .await;
    for p in ["/api/profiles", "/api/segments", "/api/lists"] {
        Mock::given(wiremock::matchers::path(p))
            .respond_with(ResponseTemplate::new(200).insert_header("content-type", "application/vnd.api+json").set_body_json(
                serde_json::json!({"data": [{"type": "profile", "id": "01GDDKASAP8TKDDA2GRZDSVP4H", "attributes": {"email": "secret.shopper@example.com"}}]}),
            ))
            .mount(&klaviyo)
            .await;
    }
    let code = "CODE-d41d8cd98f00b204";
    let access_token = "ACCESS-TOKEN-8f14e45fceea167a";
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_response(
            "abc123",
            access_token,
            1,
            1,
        )))
        .mount(&app.bc)
        .await;
    let install = app.get_auth(code, "abc123").await;
    assert_eq!(install.status(), 200);
    let session = session_from_page(&install.text().await.unwrap());
    let load_token = signed(&callback_claims("abc123", 1, 1));
    assert_eq!(app.load(&load_token).await.status(), 200);
    assert_eq!(
        app.load(&load_token).await.status(),
        401,
        "a replay is logged too"
    );
    assert_eq!(app.get_settings(Some(&session)).await.status(), 200);
    let private_key = "pk_LOGSECRET0123456789abcdefghij";
    let saved = app
        .http
        .put(format!("{}/api/v1/settings/klaviyo", app.address))
        .bearer_auth(&session)
        .json(&serde_json::json!({"private_key": private_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let now = now();
    let customer = serde_json::json!({"customer": {"id": 1, "email": "Secret.Shopper@example.com", "group_id": "1"},
        "iss": "bc/apps", "sub": "abc123", "iat": now, "exp": now + 900, "aud": CLIENT_ID, "store_hash": "abc123",
        "operation": "current_customer"});
    let customer_token = sign(&customer, jsonwebtoken::Algorithm::HS256, CLIENT_SECRET);
    let resolved: serde_json::Value = app
        .http
        .post(format!("{}/api/v1/resolve", app.address))
        .json(&serde_json::json!({"store_hash": "abc123", "customer_token": customer_token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["profile_id"], "01GDDKASAP8TKDDA2GRZDSVP4H");
    assert_eq!(
        app.uninstall(&signed(&callback_claims("abc123", 1, 1)))
            .await
            .status(),
        200
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("Install callback") && logs.contains("Load callback"),
        "spans were logged"
    );
    assert!(
        logs.contains("/oauth2/token") || logs.contains("hyper"),
        "outbound HTTP was traced"
    );
    assert!(
        logs.contains("INSERT INTO stores") || logs.contains("sqlx"),
        "sqlx was traced"
    );
    for (what, secret) in [
        ("install code", code),
        ("access token", access_token),
        ("client secret", CLIENT_SECRET),
        ("signed load token", load_token.as_str()),
        (
            "load token signature",
            load_token.rsplit('.').next().unwrap(),
        ),
        ("admin session", session.as_str()),
        ("encryption key", app.encryption_key.as_str()),
        ("Klaviyo private key", private_key),
        ("shopper email", "secret.shopper"),
        ("customer token", customer_token.as_str()),
    ] {
        assert!(!logs.contains(secret), "the logs contain the {what}");
    }
}
