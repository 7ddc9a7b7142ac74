use profile_bridge::crypto::Sealed;
use profile_bridge::db;
use profile_bridge::domain::StoreHash;
use secrecy::ExposeSecret;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

async fn stored_token(app: &TestApp, hash: &str) -> String {
    let store_hash = StoreHash::parse(hash).unwrap();
    let sealed: Sealed = db::stores::sealed_access_token(&app.pool, &store_hash)
        .await
        .unwrap()
        .unwrap();
    app.keyring
        .open(&sealed, &db::stores::access_token_aad(&store_hash))
        .unwrap()
        .expose_secret()
        .to_string()
}

#[tokio::test]
async fn install_exchanges_the_code_with_all_seven_fields_and_answers_the_admin_page() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains(format!("client_id={CLIENT_ID}")))
        .and(body_string_contains(format!(
            "client_secret={CLIENT_SECRET}"
        )))
        .and(body_string_contains("code=qr6h3thvbvag2ffq"))
        .and(body_string_contains(
            "scope=store_v2_content+store_v2_information_read_only",
        ))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains(
            "redirect_uri=https%3A%2F%2Fpb.example.test%2Fauth",
        ))
        .and(body_string_contains("context=stores%2Fg5cd38"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_response(
            "g5cd38",
            "ACCESS-TOKEN-1",
            24654,
            12345,
        )))
        .expect(1)
        .mount(&app.bc)
        .await;

    let response = app.get_auth("qr6h3thvbvag2ffq", "g5cd38").await;

    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors https://*.mybigcommerce.com https://login.bigcommerce.com"),
        "{csp}"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers.get("x-frame-options").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("g5cd38"));
    assert!(!html.contains("ACCESS-TOKEN-1"));
    let session = session_from_page(&html);
    assert!(!session.is_empty());

    assert_eq!(stored_token(&app, "g5cd38").await, "ACCESS-TOKEN-1");
    let users: Vec<(i64, bool)> =
        sqlx::query_as("SELECT bc_user_id, is_owner FROM store_users ORDER BY bc_user_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(users, vec![(12345, true), (24654, false)]);
    let (scope, owner): (String, i64) =
        sqlx::query_as("SELECT scope, owner_bc_user_id FROM stores")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(scope.contains("store_v2_content"));
    assert_eq!(owner, 12345);
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actions, vec!["install"]);
}

#[tokio::test]
async fn the_owner_installing_is_flagged_owner() {
    let app = spawn_app().await;
    app.install_as("abc123", "tok", 7, 7).await;
    let owners: Vec<(i64, bool)> = sqlx::query_as("SELECT bc_user_id, is_owner FROM store_users")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(owners, vec![(7, true)]);
}

#[tokio::test]
async fn missing_or_malformed_parameters_are_a_400_page_and_nothing_happens() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&app.bc)
        .await;
    for query in [
        "",
        "?scope=a&context=stores%2Fabc",
        "?code=c&context=stores%2Fabc",
        "?code=c&scope=a",
        "?code=c&scope=a&context=abc",
        "?code=c&scope=a&context=stores%2FABC",
        "?code=c&scope=a&context=stores%2F",
        "?code=c&code=d&scope=a&context=stores%2Fabc",
    ] {
        let response = app.get(&format!("/auth{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("Profile Bridge"), "styled page for {query}");
    }
    assert_eq!(app.snapshot().await["stores"], serde_json::json!([]));
}

#[tokio::test]
async fn a_refused_code_is_a_502_page_and_nothing_is_stored() {
    let app = spawn_app().await;
    for (status, body) in [
        (
            400,
            r#"{"error":"invalid_grant","error_description":"code already used"}"#,
        ),
        (401, r#"{"error":{"message":"Invalid client"}}"#),
        (500, "<html>oops</html>"),
        (200, "not json"),
        (200, r#"{"access_token":"x"}"#),
    ] {
        let guard = Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .expect(1)
            .mount_as_scoped(&app.bc)
            .await;
        let response = app.get_auth("used-code", "abc123").await;
        assert_eq!(response.status(), 502, "{status} {body}");
        let html = response.text().await.unwrap();
        assert!(html.contains("nothing was saved"), "{html}");
        assert!(!html.contains("invalid_grant"));
        drop(guard);
    }
    let snapshot = app.snapshot().await;
    assert_eq!(snapshot["stores"], serde_json::json!([]));
    assert_eq!(snapshot["users"], serde_json::json!([]));
}

#[tokio::test]
async fn a_token_for_another_store_is_not_trusted() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(token_response("other1", "tok", 1, 1)),
        )
        .mount(&app.bc)
        .await;
    assert_eq!(app.get_auth("c", "abc123").await.status(), 502);
    assert_eq!(app.snapshot().await["stores"], serde_json::json!([]));
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_a_502() {
    let app = spawn_app_with(|env| {
        env.insert("BC_LOGIN_URL".into(), "http://127.0.0.1:9".into());
    })
    .await;
    assert_eq!(app.get_auth("c", "abc123").await.status(), 502);
    assert_eq!(app.snapshot().await["stores"], serde_json::json!([]));
}

#[tokio::test]
async fn reinstall_replaces_the_token() {
    let app = spawn_app().await;
    app.install("abc123", "FIRST-TOKEN").await;
    app.install("abc123", "SECOND-TOKEN").await;
    assert_eq!(stored_token(&app, "abc123").await, "SECOND-TOKEN");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM stores")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actions, vec!["install", "reinstall"]);
}

#[tokio::test]
async fn external_install_redirects_to_bigcommerce_success_or_failure() {
    let app = spawn_app().await;
    let guard = Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(token_response("abc123", "tok", 1, 1)),
        )
        .mount_as_scoped(&app.bc)
        .await;
    let ok = app
        .get("/auth?code=c&scope=s&context=stores%2Fabc123&external_install=1")
        .await;
    assert_eq!(ok.status(), 302);
    assert_eq!(
        ok.headers()["location"].to_str().unwrap(),
        format!("{}/app/{CLIENT_ID}/install/succeeded", app.bc.uri())
    );
    assert_eq!(stored_token(&app, "abc123").await, "tok");
    drop(guard);

    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(r#"{"error":"invalid_grant"}"#))
        .mount(&app.bc)
        .await;
    let failed = app
        .get("/auth?code=c2&scope=s&context=stores%2Fzzz999&external_install=1")
        .await;
    assert_eq!(failed.status(), 302);
    assert_eq!(
        failed.headers()["location"].to_str().unwrap(),
        format!("{}/app/{CLIENT_ID}/install/failed", app.bc.uri())
    );
    let stores: Vec<String> = sqlx::query_scalar("SELECT store_hash FROM stores")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stores, vec!["abc123"]);
}
