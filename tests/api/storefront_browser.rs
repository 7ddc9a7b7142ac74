//! The storefront script in a real headless Chromium: a page served by the test includes it, answers
//! `/customer/current.jwt`, and a test double of the resolve endpoint answers.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use profile_bridge::routes::storefront::StorefrontScript;
use serde_json::{Value, json};

use crate::browser;
use crate::helpers::CLIENT_ID;

const PAGE: &str = r#"<!doctype html><html><head><title>Test storefront</title></head><body>
<h1>Test storefront</h1><pre id="out">waiting</pre>
<script>
document.addEventListener("profilebridge:ready", function (e) {
  document.getElementById("out").textContent = JSON.stringify({ event: e.detail, global: window.ProfileBridge,
    same: e.detail === window.ProfileBridge, cached: Object.keys(sessionStorage) });
});
</script>
<script src="/storefront.js?v=1&store=abc123" defer></script>
</body></html>"#;

#[derive(Default)]
struct Storefront {
    logged_in: bool,
    jwt_requests: Vec<String>,
    resolve_bodies: Vec<Value>,
}

type Shared = web::Data<Mutex<Storefront>>;

const CUSTOMER_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjdXN0b21lciI6eyJpZCI6NDkyNywiZW1haWwiOiJqb2huQGV4YW1wbGUuY29tIiwiZ3JvdXBfaWQiOiI2In19.c2ln";

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

async fn script(script: web::Data<Arc<StorefrontScript>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript")
        .body(script.body.clone())
}

async fn current_jwt(req: HttpRequest, state: Shared) -> HttpResponse {
    let mut state = state.lock().unwrap();
    state.jwt_requests.push(req.query_string().to_string());
    if state.logged_in {
        HttpResponse::Ok()
            .content_type("text/plain")
            .body(CUSTOMER_JWT)
    } else {
        HttpResponse::NotFound().body("Not Found")
    }
}

async fn resolve(body: web::Json<Value>, state: Shared) -> HttpResponse {
    let body = body.into_inner();
    let source = if body.get("customer_token").is_some() {
        "customer"
    } else if body.get("exchange_id").is_some() {
        "exchange_id"
    } else {
        "none"
    };
    state.lock().unwrap().resolve_bodies.push(body);
    HttpResponse::Ok().json(json!({
        "profile_id": if source == "none" { Value::Null } else { json!("01GDDKASAP8TKDDA2GRZDSVP4H") },
        "source": source,
        "rule_contexts": if source == "customer" { json!(["vip", "wholesale"]) } else { json!(["guest"]) },
        "user_token": if source == "none" { Value::Null } else { json!("01GDDKASAP8TKDDA2GRZDSVP4H") },
        "algolia": {"app_id": "APPID", "index": "products", "api_key": "secured-key", "valid_until": 1767225600},
        "ttl": 900, "degraded": false
    }))
}

async fn start(logged_in: bool) -> (String, Shared) {
    let state: Shared = web::Data::new(Mutex::new(Storefront {
        logged_in,
        ..Default::default()
    }));
    let script_body = web::Data::new(Arc::new(StorefrontScript::new(CLIENT_ID)));
    let shared = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .app_data(script_body.clone())
            .route("/", web::get().to(page))
            .route("/storefront.js", web::get().to(script))
            .route("/customer/current.jwt", web::get().to(current_jwt))
            .route("/api/v1/resolve", web::post().to(resolve))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    tokio::spawn(server.run());
    (address, state)
}

#[tokio::test]
async fn a_logged_in_shopper_gets_window_profile_bridge_and_the_ready_event_in_chromium() {
    let (address, state) = start(true).await;
    let dom = browser::dump_dom(&format!("{address}/")).await;
    let out: Value = serde_json::from_str(&browser::out_text(&dom))
        .unwrap_or_else(|_| panic!("no result in DOM:\n{dom}"));

    assert_eq!(out["same"], true);
    assert_eq!(out["global"]["profileId"], "01GDDKASAP8TKDDA2GRZDSVP4H");
    assert_eq!(out["global"]["ruleContexts"], json!(["vip", "wholesale"]));
    assert_eq!(out["global"]["userToken"], "01GDDKASAP8TKDDA2GRZDSVP4H");
    assert_eq!(out["global"]["algolia"]["api_key"], "secured-key");
    assert_eq!(out["global"]["error"], false);
    assert_eq!(out["cached"], json!(["pb:abc123:c:4927"]));
    let state = state.lock().unwrap();
    assert_eq!(
        state.jwt_requests,
        vec![format!("app_client_id={CLIENT_ID}")]
    );
    assert_eq!(
        state.resolve_bodies,
        vec![json!({"customer_token": CUSTOMER_JWT, "store_hash": "abc123"})]
    );
}

#[tokio::test]
async fn a_guest_from_a_klaviyo_link_sends_the_exchange_id_in_chromium() {
    let (address, state) = start(false).await;
    let dom = browser::dump_dom(&format!("{address}/?_kx=Kx.Ab12_-%3D")).await;
    let out: Value = serde_json::from_str(&browser::out_text(&dom))
        .unwrap_or_else(|_| panic!("no result in DOM:\n{dom}"));
    assert_eq!(out["global"]["source"], "exchange_id");
    assert_eq!(out["global"]["ruleContexts"], json!(["guest"]));
    assert_eq!(
        state.lock().unwrap().resolve_bodies,
        vec![json!({"exchange_id": "Kx.Ab12_-=", "store_hash": "abc123"})]
    );
}
