//! "Connect with Klaviyo": PKCE and state, the code exchange, refresh before expiry, revoke on disconnect and
//! on uninstall — against a wiremock Klaviyo that checks what Klaviyo's docs require.

use base64::Engine;
use profile_bridge::domain::StoreHash;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const KLAVIYO_ID: &str = "kl-client";
const KLAVIYO_SECRET: &str = "kl-secret-xyz";

struct OAuthSetup {
    app: TestApp,
    klaviyo: MockServer,
    session: String,
}

async fn setup() -> OAuthSetup {
    let klaviyo = MockServer::start().await;
    let uri = klaviyo.uri();
    let app = spawn_app_with(|env| {
        env.insert("KLAVIYO_API_URL".into(), uri.clone());
        env.insert(
            "KLAVIYO_OAUTH_AUTHORIZE_URL".into(),
            format!("{uri}/oauth/authorize"),
        );
        env.insert("KLAVIYO_CLIENT_ID".into(), KLAVIYO_ID.into());
        env.insert("KLAVIYO_CLIENT_SECRET".into(), KLAVIYO_SECRET.into());
    })
    .await;
    let session = app.install("abc123", "tok").await;
    OAuthSetup {
        app,
        klaviyo,
        session,
    }
}

fn basic_auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{KLAVIYO_ID}:{KLAVIYO_SECRET}"))
    )
}

fn token_body(access: &str, refresh: &str) -> Value {
    json!({"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 3600,
           "scope": "accounts:read profiles:read segments:read lists:read"})
}

impl OAuthSetup {
    async fn start(&self) -> url::Url {
        let response = self
            .app
            .http
            .post(format!("{}/api/v1/klaviyo/oauth/start", self.app.address))
            .bearer_auth(&self.session)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        url::Url::parse(body["authorize_url"].as_str().unwrap()).unwrap()
    }

    async fn callback(&self, query: &str) -> reqwest::Response {
        self.app
            .get(&format!("/klaviyo/oauth/callback?{query}"))
            .await
    }

    async fn connect(&self, access: &str, refresh: &str) {
        let guard = Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body(access, refresh)))
            .mount_as_scoped(&self.klaviyo)
            .await;
        let url = self.start().await;
        let state = param(&url, "state");
        assert_eq!(
            self.callback(&format!("code=c0de&state={state}"))
                .await
                .status(),
            200
        );
        drop(guard);
    }

    async fn settings(&self) -> Value {
        self.app
            .get_settings(Some(&self.session))
            .await
            .json()
            .await
            .unwrap()
    }
}

fn param(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_authorize_url_carries_pkce_s256_and_state() {
    let s = setup().await;
    let url = s.start().await;
    assert_eq!(url.path(), "/oauth/authorize");
    assert_eq!(param(&url, "response_type"), "code");
    assert_eq!(param(&url, "client_id"), KLAVIYO_ID);
    assert_eq!(
        param(&url, "redirect_uri"),
        "https://pb.example.test/klaviyo/oauth/callback"
    );
    assert_eq!(param(&url, "code_challenge_method"), "S256");
    assert!(param(&url, "code_challenge").len() >= 43);
    assert!(param(&url, "state").len() >= 16);
    assert!(param(&url, "scope").contains("profiles:read"));
    let second = s.start().await;
    assert_ne!(param(&url, "state"), param(&second, "state"));
    assert_ne!(
        param(&url, "code_challenge"),
        param(&second, "code_challenge")
    );
    let settings = s.settings().await;
    assert_eq!(settings["klaviyo"]["oauth_available"], true);
}

#[tokio::test]
async fn the_callback_exchanges_the_code_with_the_pkce_verifier_and_basic_auth() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("Authorization", basic_auth().as_str()))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("code_verifier="))
        .and(body_string_contains(
            "redirect_uri=https%3A%2F%2Fpb.example.test%2Fklaviyo%2Foauth%2Fcallback",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("ACCESS-1", "REFRESH-1")))
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    let url = s.start().await;
    let (state, challenge) = (param(&url, "state"), param(&url, "code_challenge"));

    let response = s.callback(&format!("code=the-code&state={state}")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Klaviyo is connected")
    );

    let request = &s.klaviyo.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let verifier = &form.iter().find(|(k, _)| k == "code_verifier").unwrap().1;
    let derived = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    assert_eq!(
        derived, challenge,
        "the verifier sent matches the S256 challenge"
    );

    let settings = s.settings().await;
    assert_eq!(settings["klaviyo"]["method"], "oauth");
    assert_eq!(settings["klaviyo"]["key_hint"], Value::Null);
    let row: Value = sqlx::query_scalar("SELECT to_jsonb(s) FROM store_settings s")
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert!(
        !row.to_string().contains("ACCESS-1") && !row.to_string().contains("REFRESH-1"),
        "tokens sealed"
    );
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM klaviyo_oauth_pending")
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(pending, 0, "the state is used up");
    assert_eq!(
        s.callback(&format!("code=the-code&state={state}"))
            .await
            .status(),
        400,
        "a state works once"
    );
}

#[tokio::test]
async fn a_mismatched_or_missing_state_is_refused_and_nothing_is_stored() {
    let s = setup().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("A", "R")))
        .expect(0)
        .mount(&s.klaviyo)
        .await;
    s.start().await;
    for query in [
        "code=x&state=forged-state",
        "code=x",
        "code=x&state=",
        "state=&code=",
    ] {
        let response = s.callback(query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.text().await.unwrap().contains("no longer valid"));
    }
    assert_eq!(s.settings().await["klaviyo"]["connected"], false);
}

#[tokio::test]
async fn a_cancelled_or_refused_connection_stores_nothing() {
    let s = setup().await;
    let url = s.start().await;
    let response = s
        .callback(&format!(
            "error=access_denied&state={}",
            param(&url, "state")
        ))
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("cancelled"));

    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": "bad code"})),
        )
        .mount(&s.klaviyo)
        .await;
    let url = s.start().await;
    assert_eq!(
        s.callback(&format!("code=x&state={}", param(&url, "state")))
            .await
            .status(),
        502
    );
    assert_eq!(s.settings().await["klaviyo"]["connected"], false);
}

#[tokio::test]
async fn tokens_are_refreshed_shortly_before_expiry_and_when_forced() {
    let s = setup().await;
    s.connect("ACCESS-1", "REFRESH-1").await;
    let hash = StoreHash::parse("abc123").unwrap();
    let mut env = base_env(
        "http://127.0.0.1:9",
        &profile_bridge::crypto::generate_key_base64(),
    );
    env.insert("KLAVIYO_API_URL".into(), s.klaviyo.uri());
    env.insert("KLAVIYO_CLIENT_ID".into(), KLAVIYO_ID.into());
    env.insert("KLAVIYO_CLIENT_SECRET".into(), KLAVIYO_SECRET.into());
    let settings =
        profile_bridge::settings::Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
    let oauth = profile_bridge::klaviyo::oauth::KlaviyoOAuth::from_settings(&settings)
        .unwrap()
        .unwrap();
    let (pool, keyring) = (s.app.pool.clone(), s.app.keyring.clone());
    let load = |force: bool| {
        let (pool, keyring, hash, oauth) = (&pool, &keyring, &hash, &oauth);
        async move {
            profile_bridge::klaviyo::credentials::load(pool, keyring, Some(oauth), 1, hash, force)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let bearer = |c: &profile_bridge::klaviyo::credentials::StoreCredentials| match &c.auth {
        profile_bridge::klaviyo::client::KlaviyoAuth::OAuth(t) => t.expose_secret().to_string(),
        _ => panic!("not OAuth"),
    };
    assert_eq!(
        bearer(&load(false).await),
        "ACCESS-1",
        "fresh token used as is"
    );

    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("Authorization", basic_auth().as_str()))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=REFRESH-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("ACCESS-2", "REFRESH-2")))
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    sqlx::query("UPDATE store_settings SET klaviyo_expires_at = now() + interval '30 seconds'")
        .execute(&s.app.pool)
        .await
        .unwrap();
    let refreshed = load(false).await;
    assert_eq!(bearer(&refreshed), "ACCESS-2");
    assert_eq!(
        bearer(&load(false).await),
        "ACCESS-2",
        "the new token is stored and reused"
    );

    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("refresh_token=REFRESH-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("ACCESS-3", "REFRESH-3")))
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    assert_eq!(
        bearer(&load(true).await),
        "ACCESS-3",
        "a forced refresh (after a 401) rotates the pair"
    );
}

#[tokio::test]
async fn disconnect_revokes_the_grant() {
    let s = setup().await;
    s.connect("ACCESS-1", "REFRESH-1").await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(header("Authorization", basic_auth().as_str()))
        .and(body_string_contains("token=REFRESH-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    let response = s
        .app
        .http
        .delete(format!("{}/api/v1/settings/klaviyo", s.app.address))
        .bearer_auth(&s.session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(s.settings().await["klaviyo"]["connected"], false);
}

#[tokio::test]
async fn uninstall_revokes_the_grant_and_deletes_every_credential_and_rule() {
    let s = setup().await;
    s.connect("ACCESS-1", "REFRESH-1").await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(body_string_contains("token=REFRESH-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    assert_eq!(
        s.app
            .uninstall(&signed(&callback_claims("abc123", 1, 1)))
            .await
            .status(),
        200
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM store_settings")
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn without_klaviyo_oauth_settings_the_flow_is_not_offered() {
    let app = spawn_app().await;
    let session = app.install("abc123", "tok").await;
    let response = app
        .http
        .post(format!("{}/api/v1/klaviyo/oauth/start", app.address))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = app.get_settings(Some(&session)).await.json().await.unwrap();
    assert_eq!(body["klaviyo"]["oauth_available"], false);
}

#[tokio::test]
async fn a_401_on_an_oauth_token_refreshes_once_and_the_resolve_succeeds() {
    let s = setup().await;
    s.connect("ACCESS-OLD", "REFRESH-1").await;
    Mock::given(method("GET"))
        .and(path("/api/profiles"))
        .and(header("Authorization", "Bearer ACCESS-OLD"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("content-type", "application/vnd.api+json")
                .set_body_json(json!({"errors": [{"status": 401, "code": "not_authenticated", "title": "Token expired", "detail": "expired"}]})),
        )
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(token_body("ACCESS-NEW", "REFRESH-2")),
        )
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/profiles"))
        .and(header("Authorization", "Bearer ACCESS-NEW"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/vnd.api+json")
                .set_body_json(json!({"data": [{"type": "profile", "id": "01GDDKASAP8TKDDA2GRZDSVP4H", "attributes": {"email": "john@example.com"}}]})),
        )
        .expect(1)
        .mount(&s.klaviyo)
        .await;
    let token = crate::resolve_helpers::customer_token("abc123", "john@example.com");
    let answer: Value = s
        .app
        .http
        .post(format!("{}/api/v1/resolve", s.app.address))
        .json(&json!({"store_hash": "abc123", "customer_token": token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["profile_id"], "01GDDKASAP8TKDDA2GRZDSVP4H",
        "{answer}"
    );
    assert_eq!(answer["degraded"], false);
}
