//! A stateful stand-in for BigCommerce's REST API (Scripts API, channels, sites, store information), mounted
//! on the test's wiremock server. It behaves as research/bigcommerce.md §3–§5 documents: X-Auth-Token checked,
//! `{data, meta}` envelopes, 200 on create, 204 on delete, 404 for unknown scripts, the 10-script cap, and
//! switchable failure modes (429 with reset headers, 5xx, 403).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
pub struct FakeState {
    pub token: String,
    pub scripts: Vec<Value>,
    pub channels: Vec<Value>,
    pub sites: Vec<Value>,
    pub store: Value,
    next_id: u32,
    /// Answer this many requests with 429 (reset header `throttle_reset_ms`) before serving.
    pub throttle: u32,
    pub throttle_reset_ms: u64,
    /// Scripts endpoints answer this status while set.
    pub scripts_fail_with: Option<u16>,
    /// Only script creation answers this status (a 5xx after which the script may or may not exist).
    pub create_fails_with: Option<u16>,
    pub requests: Vec<String>,
}

#[derive(Clone)]
pub struct FakeBigCommerce(pub Arc<Mutex<FakeState>>);

pub fn channel(id: i64, name: &str, kind: &str, status: &str) -> Value {
    json!({"id": id, "name": name, "type": kind, "status": status, "platform": "bigcommerce", "is_listable_from_ui": true})
}

impl FakeBigCommerce {
    pub async fn mount(server: &MockServer, token: &str) -> Self {
        let fake = Self(Arc::new(Mutex::new(FakeState {
            token: token.into(),
            channels: vec![
                channel(1, "Main store", "storefront", "active"),
                channel(2, "Outlet", "storefront", "prelaunch"),
                channel(3, "Old store", "storefront", "inactive"),
                channel(4, "Amazon", "marketplace", "active"),
            ],
            sites: vec![
                json!({"id": 1000, "channel_id": 1, "url": "https://shop.example.com",
                       "urls": [{"url": "https://shop.example.com", "type": "primary"},
                                {"url": "https://store-abc123.mybigcommerce.com", "type": "canonical"}]}),
                json!({"id": 1001, "channel_id": 2, "url": "https://outlet.example.com", "urls": []}),
                json!({"id": 1002, "channel_id": 4, "url": "https://amazon.example.com", "urls": []}),
            ],
            store: json!({"id": "abc123", "domain": "shop.example.com", "secure_url": "https://shop.example.com",
                          "control_panel_base_url": "https://store-abc123.mybigcommerce.com", "name": "Test shop"}),
            throttle_reset_ms: 200,
            ..Default::default()
        })));
        Mock::given(path_regex(r"^/stores/[a-z0-9]+/v[23]/"))
            .respond_with(fake.clone())
            .mount(server)
            .await;
        fake
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }

    pub fn scripts(&self) -> Vec<Value> {
        self.with(|s| s.scripts.clone())
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.with(|s| s.requests.iter().filter(|r| r.starts_with(prefix)).count())
    }
}

fn data(value: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": value, "meta": {}}))
}

fn problem(status: u16, title: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"status": status, "title": title, "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes", "errors": {}}))
}

impl Respond for FakeBigCommerce {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let method = request.method.as_str().to_string();
        let path = request.url.path().to_string();
        let rest = path.splitn(4, '/').nth(3).unwrap_or("").to_string(); // after /stores/{hash}/
        state.requests.push(format!("{method} /{rest}"));
        if request
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            != Some(state.token.as_str())
        {
            return problem(401, "Unauthorized");
        }
        if state.throttle > 0 {
            state.throttle -= 1;
            return ResponseTemplate::new(429)
                .insert_header(
                    "X-Rate-Limit-Time-Reset-Ms",
                    state.throttle_reset_ms.to_string().as_str(),
                )
                .insert_header("X-Rate-Limit-Requests-Left", "0");
        }
        match (method.as_str(), rest.as_str()) {
            ("GET", "v2/store") => ResponseTemplate::new(200).set_body_json(state.store.clone()),
            ("GET", "v3/channels") => data(Value::Array(state.channels.clone())),
            ("GET", "v3/sites") => data(Value::Array(state.sites.clone())),
            (_, r) if r.starts_with("v3/content/scripts") => {
                if let Some(status) = state.scripts_fail_with {
                    return if status >= 500 {
                        ResponseTemplate::new(status)
                            .set_body_string("<html><body>upstream error</body></html>")
                    } else {
                        problem(
                            status,
                            "You don't have a required scope to access the endpoint",
                        )
                    };
                }
                let uuid = r.strip_prefix("v3/content/scripts/").map(str::to_string);
                scripts_endpoint(&mut state, &method, uuid, request)
            }
            _ => problem(404, "Not found"),
        }
    }
}

fn scripts_endpoint(
    state: &mut FakeState,
    method: &str,
    uuid: Option<String>,
    request: &Request,
) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let position = uuid
        .as_ref()
        .and_then(|u| state.scripts.iter().position(|s| s["uuid"] == u.as_str()));
    match (method, uuid.is_some(), position) {
        ("GET", false, _) => data(Value::Array(state.scripts.clone())),
        ("POST", false, _) if state.create_fails_with.is_some() => {
            ResponseTemplate::new(state.create_fails_with.unwrap_or(500))
                .set_body_string("Internal Server Error")
        }
        ("POST", false, _) => {
            if state.scripts.len() >= 10 {
                return problem(422, "An app may create at most 10 scripts");
            }
            if body["kind"] == "src" && body.get("html").is_some() {
                return problem(422, "src scripts must not send html");
            }
            state.next_id += 1;
            let mut script = body.clone();
            script["uuid"] = json!(format!("00000000-0000-4000-8000-{:012}", state.next_id));
            script["date_created"] = json!("2026-12-04T00:00:00Z");
            state.scripts.push(script.clone());
            data(script)
        }
        ("GET", true, Some(i)) => data(state.scripts[i].clone()),
        ("PUT", true, Some(i)) => {
            let script = &mut state.scripts[i];
            for (k, v) in body.as_object().cloned().unwrap_or_default() {
                script[k] = v;
            }
            data(script.clone())
        }
        ("DELETE", true, Some(i)) => {
            state.scripts.remove(i);
            ResponseTemplate::new(204)
        }
        (_, true, None) => problem(404, "Script not found"),
        _ => problem(405, "Method not allowed"),
    }
}
