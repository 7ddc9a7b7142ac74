//! Shared set-up for the resolve tests: an installed store with Klaviyo, Algolia and rules configured against
//! wiremock, and BigCommerce current-customer tokens minted as research/bigcommerce.md §4 describes them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::fake_bigcommerce::FakeBigCommerce;
use crate::helpers::*;
use crate::settings_api::{KEY, SEARCH_KEY, klaviyo_ok};

pub const STOREFRONT: &str = "https://shop.example.com";

pub struct Store {
    pub app: TestApp,
    pub klaviyo: MockServer,
    pub session: String,
}

pub fn customer_claims(store: &str, email: &str, group: Option<&str>) -> Value {
    let now = now();
    json!({
        "customer": {"id": 4927, "email": email, "group_id": group},
        "iss": "bc/apps", "sub": store, "iat": now, "exp": now + 900, "version": 1,
        "aud": CLIENT_ID, "application_id": "some-other-id", "store_hash": store, "operation": "current_customer"
    })
}

pub fn customer_token(store: &str, email: &str) -> String {
    sign(
        &customer_claims(store, email, None),
        Algorithm::HS256,
        CLIENT_SECRET,
    )
}

pub fn profile(id: &str, email: &str, properties: Value) -> Value {
    json!({"type": "profile", "id": id, "attributes": {"email": email, "properties": properties,
           "location": {"country": "United Kingdom"}, "predictive_analytics": {"historic_clv": 750.0}}})
}

/// A Klaviyo stand-in for Get Profiles that answers `equals(email|_kx,…)` and `any(email,[…])` from a table,
/// records when each call arrived, and can be slowed down or switched to an error.
#[derive(Clone, Default)]
pub struct ProfileDirectory {
    pub by_email: Arc<Mutex<HashMap<String, Value>>>,
    pub by_kx: Arc<Mutex<HashMap<String, Value>>>,
    pub calls: Arc<Mutex<Vec<(Instant, String)>>>,
    pub delay_ms: Arc<Mutex<u64>>,
    /// While set, every call gets this answer instead (429, 5xx, HTML…).
    pub failure: Arc<Mutex<Option<ResponseTemplate>>>,
}

fn quoted_values(list: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let (mut inside, mut escaped) = (false, false);
    for c in list.chars() {
        match (inside, escaped, c) {
            (true, true, _) => {
                current.push(c);
                escaped = false;
            }
            (true, false, '\\') => escaped = true,
            (true, false, '"') => {
                values.push(std::mem::take(&mut current));
                inside = false;
            }
            (true, false, _) => current.push(c),
            (false, _, '"') => inside = true,
            _ => {}
        }
    }
    values
}

impl Respond for ProfileDirectory {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let filter = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "filter")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        self.calls
            .lock()
            .unwrap()
            .push((Instant::now(), filter.clone()));
        if let Some(failure) = self.failure.lock().unwrap().clone() {
            return failure;
        }
        let values = quoted_values(&filter);
        let data: Vec<Value> = if filter.starts_with("equals(_kx,") {
            values
                .iter()
                .filter_map(|v| self.by_kx.lock().unwrap().get(v).cloned())
                .collect()
        } else {
            values
                .iter()
                .filter_map(|v| self.by_email.lock().unwrap().get(v).cloned())
                .collect()
        };
        let delay = *self.delay_ms.lock().unwrap();
        klaviyo_ok()
            .set_body_json(json!({"data": data, "links": {}}))
            .set_delay(std::time::Duration::from_millis(delay))
    }
}

impl ProfileDirectory {
    pub fn add_email(&self, email: &str, profile: Value) {
        self.by_email
            .lock()
            .unwrap()
            .insert(email.to_string(), profile);
    }

    pub fn add_kx(&self, kx: &str, profile: Value) {
        self.by_kx.lock().unwrap().insert(kx.to_string(), profile);
    }

    pub fn fail_with(&self, answer: Option<ResponseTemplate>) {
        *self.failure.lock().unwrap() = answer;
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, f)| f.clone())
            .collect()
    }

    pub fn times(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
}

pub const RULES: &str = r#"[
    {"context":"vip","when":{"property":"vip","equals":true}},
    {"context":"wholesale","when":{"customer_group":"2"}},
    {"context":"known","when":{"profile":"exists"}},
    {"context":"guest","when":{"profile":"missing"}}
]"#;

/// Installs `abc123`, connects Klaviyo and Algolia through the admin API, saves RULES, and leaves Get Profiles
/// to `directory` (validation calls are answered separately).
pub async fn store_with(directory: &ProfileDirectory, env: &[(&str, &str)]) -> Store {
    let klaviyo = MockServer::start().await;
    let uri = klaviyo.uri();
    let extra: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let app = spawn_app_with(|e| {
        e.insert("KLAVIYO_API_URL".into(), uri.clone());
        e.insert("ALGOLIA_API_URL".into(), uri.clone());
        for (k, v) in extra {
            e.insert(k, v);
        }
    })
    .await;
    FakeBigCommerce::mount(&app.bc, "tok").await;
    let session = app.install("abc123", "tok").await;
    for p in ["/api/segments", "/api/lists"] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(klaviyo_ok())
            .mount(&klaviyo)
            .await;
    }
    Mock::given(method("GET"))
        .and(path_regex("^/1/keys/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"acl": ["search"], "indexes": []})),
        )
        .mount(&klaviyo)
        .await;
    // Key validation reads one profile; later calls go to the directory.
    Mock::given(method("GET"))
        .and(path("/api/profiles"))
        .respond_with(klaviyo_ok())
        .up_to_n_times(1)
        .mount(&klaviyo)
        .await;
    let put = |p: &str, body: Value| {
        app.http
            .put(format!("{}{p}", app.address))
            .bearer_auth(&session)
            .json(&body)
            .send()
    };
    assert_eq!(
        put("/api/v1/settings/klaviyo", json!({"private_key": KEY}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        put(
            "/api/v1/settings/algolia",
            json!({"app_id": "APPID1", "search_key": SEARCH_KEY, "index": "products"})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    let rules: Value = serde_json::from_str(RULES).unwrap();
    assert_eq!(
        put("/api/v1/settings/rules", json!({"rules": rules}))
            .await
            .unwrap()
            .status(),
        200
    );
    Mock::given(method("GET"))
        .and(path("/api/profiles"))
        .respond_with(directory.clone())
        .mount(&klaviyo)
        .await;
    Store {
        app,
        klaviyo,
        session,
    }
}

impl Store {
    pub async fn resolve(&self, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        self.resolve_from(body, Some(STOREFRONT)).await
    }

    pub async fn resolve_from(
        &self,
        body: Value,
        origin: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .app
            .http
            .post(format!("{}/api/v1/resolve", self.app.address))
            .json(&body);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }
}

pub fn decode_key(answer: &Value) -> String {
    use base64::Engine;
    let key = answer["algolia"]["api_key"].as_str().unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap(),
    )
    .unwrap()
}
