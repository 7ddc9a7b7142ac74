//! Emulated BigCommerce (research/bigcommerce.md): a control panel (install → the browser goes to `/auth` with a
//! fresh one-time code; open → `/load` with a freshly signed JWT inside an iframe; uninstall and remove user →
//! server-to-server callbacks), the token endpoint (one-time codes, `invalid_grant`), the REST API the app uses
//! (store information, channels, sites, the Scripts API with `X-Auth-Token`, the 10-script cap and a `429`
//! mode), and a storefront that renders the scripts the app registered and serves `/customer/current.jwt`.
//! Its own wire types; it imports nothing from the production BigCommerce client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::sandbox::pages;

#[derive(Debug, Clone)]
pub struct DemoShopper {
    pub key: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub customer_id: i64,
    pub group_id: &'static str,
    pub blurb: &'static str,
}

pub const SHOPPERS: &[DemoShopper] = &[
    DemoShopper {
        key: "alice",
        name: "Alice (VIP, UK)",
        email: "alice@demo.test",
        customer_id: 101,
        group_id: "1",
        blurb: "a VIP in Klaviyo",
    },
    DemoShopper {
        key: "bob",
        name: "Bob (regular)",
        email: "bob@demo.test",
        customer_id: 102,
        group_id: "0",
        blurb: "a regular customer",
    },
];

pub struct BcState {
    pub store_hash: String,
    pub store_name: String,
    pub client_id: String,
    pub client_secret: String,
    pub app_url: String,
    pub control_panel_url: String,
    pub storefront_url: String,
    pub klaviyo_link_kx: String,
    pub inner: Mutex<Inner>,
}

#[derive(Default)]
pub struct Inner {
    codes: HashMap<String, bool>,
    tokens: Vec<String>,
    pub installed: bool,
    pub scripts: Vec<Value>,
    next_script: u32,
    pub throttle_scripts: bool,
    pub removed_users: Vec<i64>,
    pub log: Vec<String>,
}

impl BcState {
    fn note(&self, line: String) {
        let mut inner = self.inner.lock().expect("lock");
        inner.log.push(line);
        let excess = inner.log.len().saturating_sub(12);
        inner.log.drain(..excess);
    }

    fn user(id: i64) -> Value {
        match id {
            1 => json!({"id": 1, "username": "owner@demo.test", "email": "owner@demo.test"}),
            _ => json!({"id": id, "username": "staff@demo.test", "email": "staff@demo.test"}),
        }
    }

    /// A `signed_payload_jwt` as BigCommerce signs them (research §2).
    pub fn signed_payload(&self, user_id: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({
            "aud": self.client_id, "iss": "bc", "iat": now, "nbf": now, "exp": now + 86400,
            "jti": uuid::Uuid::new_v4().to_string(), "sub": format!("stores/{}", self.store_hash),
            "user": {"id": user_id, "email": Self::user(user_id)["email"], "locale": "en-US"},
            "owner": {"id": 1, "email": "owner@demo.test"}, "url": "/", "channel_id": null
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.client_secret.as_bytes()).expect("key"),
        )
        .expect("sign")
    }

    /// The current-customer JWT (research §4), HS256 with the app's client secret.
    fn customer_jwt(&self, shopper: &DemoShopper) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({
            "customer": {"id": shopper.customer_id, "email": shopper.email, "group_id": shopper.group_id},
            "iss": "bc/apps", "sub": self.store_hash, "iat": now, "exp": now + 900, "version": 1,
            "aud": self.client_id, "application_id": self.client_id, "store_hash": self.store_hash, "operation": "current_customer"
        });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.client_secret.as_bytes()).expect("key"),
        )
        .expect("sign")
    }
}

type State = web::Data<Arc<BcState>>;

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

// ---- control panel ---------------------------------------------------------------------------------------

pub async fn control_panel(state: State) -> HttpResponse {
    html(pages::control_panel(&state, None))
}

/// Install: a fresh one-time code, and the app's auth callback loaded in the control panel's iframe.
pub async fn install(state: State) -> HttpResponse {
    let code = uuid::Uuid::new_v4().simple().to_string();
    state
        .inner
        .lock()
        .expect("lock")
        .codes
        .insert(code.clone(), false);
    state.note("Install: a one-time code was issued; the browser goes to the app's /auth".into());
    let src = format!(
        "{}/auth?code={code}&scope=store_v2_content%20store_v2_information_read_only%20store_sites_read_only%20store_channel_settings_read_only&context=stores%2F{}&account_uuid=00000000-0000-4000-8000-000000000001",
        state.app_url, state.store_hash
    );
    html(pages::control_panel(&state, Some(&src)))
}

#[derive(serde::Deserialize)]
pub struct OpenQuery {
    user: Option<i64>,
}

/// Open the app: `/load` with a freshly signed JWT, framed.
pub async fn open(state: State, query: web::Query<OpenQuery>) -> HttpResponse {
    let user = query.user.unwrap_or(1);
    let src = format!(
        "{}/load?signed_payload_jwt={}",
        state.app_url,
        state.signed_payload(user)
    );
    html(pages::control_panel(&state, Some(&src)))
}

async fn server_callback(state: &BcState, path: &str, user: i64) -> String {
    let url = format!(
        "{}{path}?signed_payload_jwt={}",
        state.app_url,
        state.signed_payload(user)
    );
    match reqwest::get(url).await {
        Ok(r) => format!("{path} answered {}", r.status().as_u16()),
        Err(e) => format!("{path} failed: {}", e.without_url()),
    }
}

pub async fn uninstall(state: State) -> HttpResponse {
    let outcome = server_callback(&state, "/uninstall", 1).await;
    {
        let mut inner = state.inner.lock().expect("lock");
        inner.installed = false;
        inner.tokens.clear();
        // `auto_uninstall: true` scripts go with the app.
        inner.scripts.retain(|s| s["auto_uninstall"] != true);
    }
    state.note(format!(
        "Uninstall: {outcome}; auto-uninstall scripts removed"
    ));
    redirect("/")
}

pub async fn remove_user(state: State) -> HttpResponse {
    let outcome = server_callback(&state, "/remove_user", 2).await;
    state.inner.lock().expect("lock").removed_users.push(2);
    state.note(format!("Remove user staff@demo.test: {outcome}"));
    redirect("/")
}

pub async fn toggle_throttle(state: State) -> HttpResponse {
    let on = {
        let mut inner = state.inner.lock().expect("lock");
        inner.throttle_scripts = !inner.throttle_scripts;
        inner.throttle_scripts
    };
    state.note(format!(
        "Scripts API 429 mode {}",
        if on { "on" } else { "off" }
    ));
    redirect("/")
}

// ---- login host: the token endpoint ------------------------------------------------------------------------

pub async fn token(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let fields: HashMap<String, String> = if json_body {
        serde_json::from_slice::<HashMap<String, Value>>(&body)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect()
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let refuse = |error: &str, description: &str| {
        HttpResponse::BadRequest().json(json!({"error": error, "error_description": description}))
    };
    if get("client_id") != state.client_id || get("client_secret") != state.client_secret {
        return HttpResponse::Unauthorized().json(
            json!({"error": "invalid_client", "error_description": "Invalid client id or secret"}),
        );
    }
    if get("grant_type") != "authorization_code" {
        return refuse(
            "unsupported_grant_type",
            "grant_type must be authorization_code",
        );
    }
    if get("redirect_uri") != format!("{}/auth", state.app_url) {
        return refuse(
            "invalid_request",
            "Parameter redirect_uri does not match registered URI",
        );
    }
    if get("context") != format!("stores/{}", state.store_hash) {
        return refuse("invalid_request", "Invalid context");
    }
    let access_token = {
        let mut inner = state.inner.lock().expect("lock");
        match inner.codes.get_mut(get("code")) {
            Some(used) if !*used => *used = true,
            _ => {
                return refuse(
                    "invalid_grant",
                    "The authorization code is invalid or has already been used",
                );
            }
        }
        let token = format!("bc_{}", uuid::Uuid::new_v4().simple());
        inner.tokens = vec![token.clone()];
        inner.installed = true;
        token
    };
    state.note("Token endpoint: code exchanged; a new access token replaces any older one".into());
    HttpResponse::Ok().json(json!({
        "access_token": access_token, "scope": get("scope"), "user": BcState::user(1), "owner": BcState::user(1),
        "context": format!("stores/{}", state.store_hash), "account_uuid": "00000000-0000-4000-8000-000000000001"
    }))
}

// ---- REST API ------------------------------------------------------------------------------------------------

fn problem(status: u16, title: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST))
        .json(json!({"status": status, "title": title, "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes", "errors": {}}))
}

fn authorized(req: &HttpRequest, state: &BcState, hash: &str) -> Result<(), (u16, &'static str)> {
    if hash != state.store_hash {
        return Err((404, "Store not found"));
    }
    let token = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !state
        .inner
        .lock()
        .expect("lock")
        .tokens
        .iter()
        .any(|t| t == token)
    {
        return Err((401, "Unauthorized"));
    }
    Ok(())
}

pub async fn api(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: State,
) -> HttpResponse {
    let (hash, rest) = path.into_inner();
    if let Err((status, title)) = authorized(&req, &state, &hash) {
        return problem(status, title);
    }
    let method = req.method().as_str().to_string();
    let data = |v: Value| HttpResponse::Ok().json(json!({"data": v, "meta": {}}));
    match (method.as_str(), rest.as_str()) {
        ("GET", "v2/store") => HttpResponse::Ok().json(json!({
            "id": state.store_hash, "name": state.store_name, "domain": state.storefront_url.trim_start_matches("http://"),
            "secure_url": state.storefront_url, "control_panel_base_url": state.control_panel_url, "status": "live",
            "default_channel_id": 1, "default_site_id": 1000, "features": {"stencil_enabled": true, "multi_storefront_enabled": false}
        })),
        ("GET", "v3/channels") => data(json!([
            {"id": 1, "name": "Demo storefront", "type": "storefront", "platform": "bigcommerce", "status": "active"},
            {"id": 2, "name": "Marketplace feed", "type": "marketplace", "platform": "amazon", "status": "active"}
        ])),
        ("GET", "v3/sites") => data(json!([{"id": 1000, "channel_id": 1, "url": state.storefront_url,
            "urls": [{"url": state.storefront_url, "type": "primary"}]}])),
        (_, r) if r.starts_with("v3/content/scripts") => scripts(&state, &method, r.strip_prefix("v3/content/scripts/"), &body),
        _ => problem(404, "Not found"),
    }
}

fn scripts(state: &BcState, method: &str, uuid: Option<&str>, body: &[u8]) -> HttpResponse {
    let mut inner = state.inner.lock().expect("lock");
    if inner.throttle_scripts {
        return HttpResponse::TooManyRequests()
            .insert_header(("X-Rate-Limit-Time-Reset-Ms", "15000"))
            .insert_header(("X-Rate-Limit-Requests-Left", "0"))
            .insert_header(("X-Rate-Limit-Time-Window-Ms", "30000"))
            .finish();
    }
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let position = uuid.and_then(|u| inner.scripts.iter().position(|s| s["uuid"] == u));
    let data = |v: Value| HttpResponse::Ok().json(json!({"data": v, "meta": {}}));
    match (method, uuid, position) {
        ("GET", None, _) => data(Value::Array(inner.scripts.clone())),
        ("POST", None, _) => {
            if inner.scripts.len() >= 10 {
                return problem(422, "An app may create at most 10 scripts");
            }
            if body["kind"] == "src"
                && (body.get("html").is_some() || body["src"].as_str().is_none())
            {
                return problem(422, "A src script needs src and no html");
            }
            inner.next_script += 1;
            let mut script = body;
            script["uuid"] = json!(format!("5c0a0000-0000-4000-8000-{:012}", inner.next_script));
            script["date_created"] = json!(time::OffsetDateTime::now_utc().unix_timestamp());
            inner.scripts.push(script.clone());
            drop(inner);
            state.note(format!(
                "Scripts API: created a script for channel {}",
                script["channel_id"]
            ));
            data(script)
        }
        ("GET", Some(_), Some(i)) => data(inner.scripts[i].clone()),
        ("PUT", Some(_), Some(i)) => {
            for (k, v) in body.as_object().cloned().unwrap_or_default() {
                inner.scripts[i][k] = v;
            }
            data(inner.scripts[i].clone())
        }
        ("DELETE", Some(_), Some(i)) => {
            inner.scripts.remove(i);
            HttpResponse::NoContent().finish()
        }
        (_, Some(_), None) => problem(404, "Script not found"),
        _ => problem(405, "Method not allowed"),
    }
}

/// The merchant edits a script in Script Manager (demo buttons): delete it, or change its consent category.
pub async fn script_manager(state: State, action: web::Path<String>) -> HttpResponse {
    {
        let mut inner = state.inner.lock().expect("lock");
        match action.as_str() {
            "delete" => inner.scripts.clear(),
            _ => inner
                .scripts
                .iter_mut()
                .for_each(|s| s["consent_category"] = json!("analytics")),
        }
    }
    state.note(format!(
        "Script Manager: the merchant chose '{action}' on the app's scripts"
    ));
    redirect("/")
}

// ---- storefront ---------------------------------------------------------------------------------------------

/// The storefront's own first-party session cookie (plain header handling: the app itself needs no cookies).
pub fn shopper(req: &HttpRequest) -> Option<&'static DemoShopper> {
    let cookies = req.headers().get(header::COOKIE)?.to_str().ok()?;
    let key = cookies
        .split(';')
        .filter_map(|c| c.trim().strip_prefix("sb_shopper="))
        .next()?;
    SHOPPERS.iter().find(|s| s.key == key)
}

fn session_cookie(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("sb_shopper={v}; Path=/; SameSite=Lax"),
        None => "sb_shopper=; Path=/; Max-Age=0; SameSite=Lax".into(),
    }
}

fn footer_scripts(state: &BcState) -> String {
    let inner = state.inner.lock().expect("lock");
    inner
        .scripts
        .iter()
        .filter(|s| s["channel_id"] == 1 && s["enabled"] != false && s["visibility"] != "checkout")
        .filter_map(|s| {
            let src = s["src"].as_str()?;
            let load = match s["load_method"].as_str() {
                Some("defer") => " defer",
                Some("async") => " async",
                _ => "",
            };
            Some(format!(
                "<script src=\"{}\"{load} data-consent=\"{}\"></script>",
                pages::escape(src),
                pages::escape(s["consent_category"].as_str().unwrap_or("unknown"))
            ))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(serde::Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

pub async fn storefront_page(
    req: HttpRequest,
    state: State,
    query: web::Query<SearchQuery>,
    algolia: web::Data<StorefrontAlgolia>,
) -> HttpResponse {
    html(pages::storefront(
        &state,
        shopper(&req),
        query.q.as_deref().unwrap_or(""),
        &footer_scripts(&state),
        &algolia,
    ))
}

/// What the demo theme knows about Algolia without Profile Bridge: the public search-only key.
pub struct StorefrontAlgolia {
    pub url: String,
    pub app_id: String,
    pub index: String,
    pub public_key: String,
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    r#as: Option<String>,
}

pub async fn login(query: web::Query<LoginQuery>) -> HttpResponse {
    let who = query
        .r#as
        .as_deref()
        .filter(|k| SHOPPERS.iter().any(|s| s.key == *k));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .insert_header((header::SET_COOKIE, session_cookie(who)))
        .finish()
}

/// A guest arriving from a Klaviyo email link: logged out, with `_kx` in the URL.
pub async fn from_email(state: State) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!(
                "/?_kx={}",
                crate::encoding::encode_component(&state.klaviyo_link_kx)
            ),
        ))
        .insert_header((header::SET_COOKIE, session_cookie(None)))
        .finish()
}

#[derive(serde::Deserialize)]
pub struct JwtQuery {
    app_client_id: Option<String>,
}

/// `/customer/current.jwt?app_client_id=…`: the JWT as plain text for a logged-in shopper, `404` for a guest.
pub async fn current_jwt(
    req: HttpRequest,
    state: State,
    query: web::Query<JwtQuery>,
) -> HttpResponse {
    match (shopper(&req), query.app_client_id.as_deref()) {
        (Some(shopper), Some(id)) if id == state.client_id => HttpResponse::Ok()
            .content_type("text/plain")
            .body(state.customer_jwt(shopper)),
        _ => HttpResponse::NotFound()
            .content_type("text/plain")
            .body("Not Found"),
    }
}

pub fn configure_control_panel(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(control_panel))
        .route("/apps/install", web::get().to(install))
        .route("/apps/open", web::get().to(open))
        .route("/apps/uninstall", web::post().to(uninstall))
        .route("/apps/remove-user", web::post().to(remove_user))
        .route("/apps/throttle", web::post().to(toggle_throttle))
        .route("/script-manager/{action}", web::post().to(script_manager))
        .route("/oauth2/token", web::post().to(token))
        .route("/stores/{hash}/{rest:.*}", web::route().to(api));
}

pub fn configure_storefront(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(storefront_page))
        .route("/search", web::get().to(storefront_page))
        .route("/login", web::get().to(login))
        .route("/from-email", web::get().to(from_email))
        .route("/customer/current.jwt", web::get().to(current_jwt));
}
