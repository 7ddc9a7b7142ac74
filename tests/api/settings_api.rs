//! The admin JSON API: live validation against wiremock Klaviyo and Algolia, sealing, audit, and what is stored
//! on failure (nothing).

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

pub const KEY: &str = "pk_0123456789abcdef0123456789abcdefa1b2";
pub const SEARCH_KEY: &str = "0123456789abcdef0123456789abcdef";

pub struct Setup {
    pub app: TestApp,
    pub platforms: MockServer,
    pub session: String,
}

pub async fn setup() -> Setup {
    let platforms = MockServer::start().await;
    let uri = platforms.uri();
    let app = spawn_app_with(|env| {
        env.insert("KLAVIYO_API_URL".into(), uri.clone());
        env.insert("ALGOLIA_API_URL".into(), uri);
    })
    .await;
    let session = app.install("abc123", "tok").await;
    Setup {
        app,
        platforms,
        session,
    }
}

pub fn klaviyo_ok() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/vnd.api+json")
        .set_body_json(json!({"data": [], "links": {}}))
}

pub async fn mount_klaviyo_ok(server: &MockServer) {
    for p in ["/api/profiles", "/api/segments", "/api/lists"] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(klaviyo_ok())
            .mount(server)
            .await;
    }
}

pub async fn mount_algolia_key(server: &MockServer, acl: Value, indexes: Value) {
    Mock::given(method("GET"))
        .and(path_regex("^/1/keys/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": SEARCH_KEY, "acl": acl, "indexes": indexes})),
        )
        .mount(server)
        .await;
}

impl Setup {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .app
            .http
            .request(method, format!("{}{path}", self.app.address))
            .bearer_auth(&self.session);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn put_klaviyo(&self, key: &str) -> (u16, Value) {
        self.send(
            reqwest::Method::PUT,
            "/api/v1/settings/klaviyo",
            Some(json!({"private_key": key})),
        )
        .await
    }

    pub async fn put_algolia(&self, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, "/api/v1/settings/algolia", Some(body))
            .await
    }

    pub async fn put_rules(&self, rules: Value) -> (u16, Value) {
        self.send(
            reqwest::Method::PUT,
            "/api/v1/settings/rules",
            Some(json!({"rules": rules})),
        )
        .await
    }

    pub async fn settings_row(&self) -> Value {
        sqlx::query_scalar::<_, Value>(
            "SELECT coalesce((SELECT to_jsonb(s) - 'updated_at' FROM store_settings s), 'null'::jsonb)",
        )
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn a_valid_private_key_is_checked_live_sealed_hinted_and_audited() {
    let s = setup().await;
    Mock::given(method("GET"))
        .and(path("/api/profiles"))
        .and(query_param("page[size]", "1"))
        .and(header(
            "Authorization",
            format!("Klaviyo-API-Key {KEY}").as_str(),
        ))
        .and(header("revision", "2026-10-15"))
        .and(header("Accept", "application/vnd.api+json"))
        .respond_with(klaviyo_ok())
        .expect(1)
        .mount(&s.platforms)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/segments"))
        .respond_with(klaviyo_ok())
        .mount(&s.platforms)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/lists"))
        .respond_with(ResponseTemplate::new(403).insert_header("content-type", "application/vnd.api+json").set_body_json(
            json!({"errors": [{"id": "x", "status": 403, "code": "permission_denied", "title": "You do not have permission", "detail": "missing lists:read"}]}),
        ))
        .mount(&s.platforms)
        .await;

    let (status, body) = s.put_klaviyo(KEY).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["klaviyo"],
        json!({"connected": true, "method": "private_key", "key_hint": "pk_…a1b2", "oauth_available": false})
    );
    let warnings = body["warnings"].as_array().unwrap();
    assert_eq!(
        warnings.len(),
        1,
        "a missing lists scope is a warning, not a failure"
    );
    assert!(warnings[0].as_str().unwrap().contains("lists:read"));
    assert!(
        !body.to_string().contains(&KEY[3..]),
        "the key never comes back"
    );

    let row = s.settings_row().await;
    assert!(!row.to_string().contains(&KEY[3..]), "sealed at rest");
    let sealed = profile_bridge::db::settings::klaviyo_secrets(&s.app.pool, 1)
        .await
        .unwrap()
        .unwrap();
    let opened = s
        .app
        .keyring
        .open(
            &sealed.secret,
            &profile_bridge::db::settings::aad(
                "klaviyo_secret",
                &profile_bridge::domain::StoreHash::parse("abc123").unwrap(),
            ),
        )
        .unwrap();
    assert_eq!(opened.expose_secret(), KEY);
    let audit: Value =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'settings_changed'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        json!({"setting": "klaviyo", "method": "private_key", "key_hint": "pk_…a1b2"})
    );
}

#[tokio::test]
async fn klaviyo_refusals_are_422_outages_are_502_and_nothing_is_stored() {
    let s = setup().await;
    let json_error = |status: u16| {
        ResponseTemplate::new(status)
            .insert_header("content-type", "application/vnd.api+json")
            .set_body_json(json!({"errors": [{"id": "e", "status": status, "code": "not_authenticated", "title": "Incorrect authentication credentials.", "detail": "Incorrect authentication credentials."}]}))
    };
    let cases: Vec<(ResponseTemplate, u16, &str)> = vec![
        (json_error(400), 422, "invalid_key"),
        (json_error(401), 422, "invalid_key"),
        (json_error(403), 422, "invalid_key"),
        (
            ResponseTemplate::new(403)
                .insert_header("content-type", "text/html")
                .insert_header("cf-mitigated", "challenge")
                .set_body_string("<html><title>Just a moment...</title></html>"),
            502,
            "klaviyo_unavailable",
        ),
        (
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .insert_header("content-type", "application/vnd.api+json")
                .set_body_json(json!({"errors": [{"status": 429, "code": "throttled", "title": "Request was throttled."}]})),
            502,
            "klaviyo_unavailable",
        ),
        (ResponseTemplate::new(503).set_body_string("Service Unavailable"), 502, "klaviyo_unavailable"),
        (klaviyo_ok().set_delay(Duration::from_secs(7)), 502, "klaviyo_unavailable"),
    ];
    for (template, expected, code) in cases {
        let guard = Mock::given(method("GET"))
            .and(path("/api/profiles"))
            .respond_with(template)
            .mount_as_scoped(&s.platforms)
            .await;
        let (status, body) = s.put_klaviyo(KEY).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["error"]["code"], code);
        if expected == 422 {
            assert_eq!(body["error"]["field"], "private_key");
        }
        assert_eq!(s.settings_row().await, Value::Null, "nothing stored");
        drop(guard);
    }
    let (status, body) = s.put_klaviyo("ABC123").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("private_key")),
        "a public site id is refused before any call"
    );
    let (status, _) = s
        .send(
            reqwest::Method::PUT,
            "/api/v1/settings/klaviyo",
            Some(json!({"private_key": KEY, "extra": 1})),
        )
        .await;
    assert_eq!(status, 400);
    let raw = s
        .app
        .http
        .put(format!("{}/api/v1/settings/klaviyo", s.app.address))
        .bearer_auth(&s.session)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(
        raw.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
}

#[tokio::test]
async fn deleting_klaviyo_forgets_the_key() {
    let s = setup().await;
    mount_klaviyo_ok(&s.platforms).await;
    assert_eq!(s.put_klaviyo(KEY).await.0, 200);
    let (status, body) = s
        .send(reqwest::Method::DELETE, "/api/v1/settings/klaviyo", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["klaviyo"]["connected"], false);
    assert_eq!(body["klaviyo"]["key_hint"], Value::Null);
    assert_eq!(s.settings_row().await["klaviyo_secret_sealed"], Value::Null);
}

#[tokio::test]
async fn a_search_only_key_for_the_index_is_accepted_and_sealed() {
    let s = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("/1/keys/{SEARCH_KEY}")))
        .and(header("x-algolia-application-id", "APPID123"))
        .and(header("x-algolia-api-key", SEARCH_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"value": SEARCH_KEY, "acl": ["search"], "indexes": ["prod*"], "validity": 0}),
        ))
        .expect(1)
        .mount(&s.platforms)
        .await;
    let (status, body) = s
        .put_algolia(json!({"app_id": "APPID123", "search_key": SEARCH_KEY, "index": "products"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["algolia"],
        json!({"app_id": "APPID123", "index": "products", "key_hint": "…cdef"})
    );
    assert!(!s.settings_row().await.to_string().contains(SEARCH_KEY));
    let (status, body) = s
        .send(reqwest::Method::DELETE, "/api/v1/settings/algolia", None)
        .await;
    assert_eq!((status, &body["algolia"]), (200, &Value::Null));
}

#[tokio::test]
async fn unfit_or_refused_algolia_keys_are_422_on_the_right_field_and_nothing_is_stored() {
    let s = setup().await;
    let good = json!({"app_id": "APPID123", "search_key": SEARCH_KEY, "index": "products"});
    let cases: Vec<(ResponseTemplate, &str, &str)> = vec![
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"acl": ["search", "addObject"], "indexes": []})),
            "search_key",
            "use a search-only key",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"acl": ["search", "editSettings"], "indexes": []})),
            "search_key",
            "use a search-only key",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"acl": ["browse"], "indexes": []})),
            "search_key",
            "search ACL",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"acl": ["search"], "indexes": ["orders"]})),
            "search_key",
            "restricted",
        ),
        (
            ResponseTemplate::new(403).set_body_json(
                json!({"message": "Invalid Application-ID or API key", "status": 403}),
            ),
            "search_key",
            "Invalid Application-ID",
        ),
        (
            ResponseTemplate::new(404)
                .set_body_json(json!({"message": "Key does not exist", "status": 404})),
            "search_key",
            "refused",
        ),
    ];
    for (template, field, words) in cases {
        let guard = Mock::given(method("GET"))
            .and(path_regex("^/1/keys/"))
            .respond_with(template)
            .mount_as_scoped(&s.platforms)
            .await;
        let (status, body) = s.put_algolia(good.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], field);
        assert!(
            body["error"]["message"].as_str().unwrap().contains(words),
            "{body}"
        );
        drop(guard);
    }
    for (bad, field) in [
        (
            json!({"app_id": "evil.example/x", "search_key": SEARCH_KEY, "index": "products"}),
            "app_id",
        ),
        (
            json!({"app_id": "APPID123", "search_key": SEARCH_KEY, "index": ""}),
            "index",
        ),
        (
            json!({"app_id": "APPID123", "search_key": "", "index": "products"}),
            "search_key",
        ),
    ] {
        let (status, body) = s.put_algolia(bad).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field))
        );
    }
    let guard = Mock::given(method("GET"))
        .and(path_regex("^/1/keys/"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(7)))
        .mount_as_scoped(&s.platforms)
        .await;
    let (status, body) = s.put_algolia(good).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("algolia_unavailable"))
    );
    drop(guard);
    assert_eq!(s.settings_row().await, Value::Null);
}

#[tokio::test]
async fn rules_are_validated_with_the_field_path_and_stored_canonically() {
    let s = setup().await;
    let (status, body) = s
        .put_rules(json!([
            {"context": "vip", "when": {"property": "vip", "equals": true}},
            {"context": "big-spender", "when": {"predictive": "historic_clv", "gte": 500}},
            {"context": "uk", "when": {"location": "country", "equals": "United Kingdom"}},
            {"context": "wholesale", "when": {"customer_group": 2}},
            {"context": "bad", "when": {"property": "x", "gte": "lots"}}
        ]))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "rules[4].when.gte");
    assert_eq!(body["error"]["code"], "invalid_rule");
    assert_eq!(
        s.settings_row().await,
        Value::Null,
        "nothing stored on failure"
    );

    let (status, body) = s
        .put_rules(json!([{"context": "seg", "when": {"segment": "XyZ12"}}]))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unsupported_rule"))
    );

    let (status, body) = s
        .put_rules(json!([
            {"context": "wholesale", "when": {"customer_group": 2}},
            {"context": "known", "when": {"profile": "exists"}}
        ]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rules"],
        json!([
            {"context": "wholesale", "when": {"customer_group": "2"}},
            {"context": "known", "when": {"profile": "exists"}}
        ])
    );
    let audit: Value =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'settings_changed'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert_eq!(audit, json!({"setting": "rules", "count": 2}));
}

#[tokio::test]
async fn credential_generations_are_never_reused_even_after_a_reinstall() {
    let s = setup().await;
    mount_klaviyo_ok(&s.platforms).await;
    assert_eq!(s.put_klaviyo(KEY).await.0, 200);
    let first = profile_bridge::db::settings::klaviyo_secrets(&s.app.pool, 1)
        .await
        .unwrap()
        .unwrap()
        .generation;
    s.app
        .uninstall(&signed(&callback_claims("abc123", 1, 1)))
        .await;
    let session = s.app.install("abc123", "tok").await;
    let response = s
        .app
        .http
        .put(format!("{}/api/v1/settings/klaviyo", s.app.address))
        .bearer_auth(&session)
        .json(&json!({"private_key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let second = profile_bridge::db::settings::klaviyo_secrets(&s.app.pool, 1)
        .await
        .unwrap()
        .unwrap()
        .generation;
    assert!(
        second > first,
        "the same key after a re-install is a new generation ({first} → {second})"
    );
}
