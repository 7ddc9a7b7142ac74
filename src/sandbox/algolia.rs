//! Emulated Algolia (research/klaviyo-algolia.md B1, B2, B5): `GET /1/keys/{key}`, and search endpoints that
//! accept a plain search key or a secured key — checked by recomputing the HMAC with each parent key, refusing
//! expired keys (`validUntil`) and other indexes (`restrictIndices`), letting the key's parameters override the
//! query's — and apply rules by context over a seeded catalogue. Its own wire types and its own HMAC code.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Clone)]
pub struct SandboxKey {
    pub value: String,
    pub acl: Vec<String>,
    pub indexes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Product {
    pub object_id: String,
    pub name: String,
    pub category: String,
    pub price: f64,
}

/// A rule: when the query runs with `context`, these objects are pinned to the top, in order.
#[derive(Debug, Clone)]
pub struct ContextRule {
    pub context: String,
    pub description: String,
    pub promote: Vec<String>,
}

pub struct AlgoliaState {
    pub app_id: String,
    pub keys: Vec<SandboxKey>,
    pub index: String,
    pub products: Vec<Product>,
    pub rules: Vec<ContextRule>,
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::FORBIDDEN),
    )
    .insert_header(("Access-Control-Allow-Origin", "*"))
    .json(json!({"message": message, "status": status}))
}

fn credentials(req: &HttpRequest) -> (Option<String>, Option<String>) {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let find = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                query
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            })
    };
    (find("x-algolia-application-id"), find("x-algolia-api-key"))
}

/// `GET /1/keys/{key}`: with that same key, its ACL and index restrictions.
pub async fn get_key(
    req: HttpRequest,
    key: web::Path<String>,
    state: web::Data<Arc<AlgoliaState>>,
) -> HttpResponse {
    let (app, presented) = credentials(&req);
    if app.as_deref() != Some(state.app_id.as_str()) || presented.as_deref() != Some(key.as_str()) {
        return error(403, "Invalid Application-ID or API key");
    }
    match state.keys.iter().find(|k| k.value == *key) {
        Some(k) => HttpResponse::Ok().json(json!({"value": k.value, "createdAt": 1700000000, "acl": k.acl, "indexes": k.indexes,
            "description": "sandbox key", "maxHitsPerQuery": 0, "maxQueriesPerIPPerHour": 0, "queryParameters": "", "referers": [], "validity": 0})),
        None => error(404, "Key does not exist"),
    }
}

/// The restrictions a presented key imposes, or why it is refused.
fn restrictions(
    state: &AlgoliaState,
    presented: &str,
) -> Result<Vec<(String, String)>, &'static str> {
    if let Some(key) = state.keys.iter().find(|k| k.value == presented) {
        if !key.acl.iter().any(|a| a == "search") {
            return Err("Method not allowed with this API key");
        }
        return Ok(key
            .indexes
            .iter()
            .map(|i| ("restrictIndices".to_string(), i.clone()))
            .collect());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(presented)
        .map_err(|_| "Invalid Application-ID or API key")?;
    let decoded = String::from_utf8(decoded).map_err(|_| "Invalid Application-ID or API key")?;
    if decoded.len() < 64 || !decoded.is_char_boundary(64) {
        return Err("Invalid Application-ID or API key");
    }
    let (digest, params) = decoded.split_at(64);
    let parent_ok = state
        .keys
        .iter()
        .filter(|k| k.acl.iter().any(|a| a == "search"))
        .any(|parent| {
            let mut mac =
                <Hmac<Sha256>>::new_from_slice(parent.value.as_bytes()).expect("any key length");
            mac.update(params.as_bytes());
            let expected: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            expected == digest
        });
    if !parent_ok {
        return Err("Invalid Application-ID or API key");
    }
    let parsed: Vec<(String, String)> = url::form_urlencoded::parse(params.as_bytes())
        .into_owned()
        .collect();
    if let Some((_, until)) = parsed.iter().find(|(k, _)| k == "validUntil") {
        let until: i64 = until
            .parse()
            .map_err(|_| "Invalid Application-ID or API key")?;
        if until < time::OffsetDateTime::now_utc().unix_timestamp() {
            return Err("The validity of this key has expired");
        }
    }
    Ok(parsed)
}

fn search(
    state: &AlgoliaState,
    index: &str,
    query_params: &Value,
    key_params: &[(String, String)],
) -> Result<Value, (u16, &'static str)> {
    let allowed: Vec<&str> = key_params
        .iter()
        .filter(|(k, _)| k == "restrictIndices")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    if !allowed.is_empty() && !allowed.contains(&index) {
        return Err((403, "Index not allowed with this API key"));
    }
    if index != state.index {
        return Err((404, "Index does not exist"));
    }
    // The key's parameters win over the query's: a shopper cannot choose their own contexts.
    let contexts: Vec<String> = match key_params.iter().find(|(k, _)| k == "ruleContexts") {
        Some((_, v)) => v.split(',').map(str::to_owned).collect(),
        None => query_params["ruleContexts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let user_token = key_params
        .iter()
        .find(|(k, _)| k == "userToken")
        .map(|(_, v)| v.clone())
        .or_else(|| query_params["userToken"].as_str().map(str::to_owned));
    let text = query_params["query"].as_str().unwrap_or("").to_lowercase();
    let mut hits: Vec<&Product> = state
        .products
        .iter()
        .filter(|p| {
            text.is_empty()
                || p.name.to_lowercase().contains(&text)
                || p.category.to_lowercase().contains(&text)
        })
        .collect();
    let applied: Vec<&ContextRule> = state
        .rules
        .iter()
        .filter(|r| contexts.contains(&r.context))
        .collect();
    let mut promoted: Vec<&str> = Vec::new();
    for rule in &applied {
        promoted.extend(rule.promote.iter().map(String::as_str));
    }
    hits.sort_by_key(|p| {
        promoted
            .iter()
            .position(|id| *id == p.object_id)
            .unwrap_or(usize::MAX)
    });
    let hits: Vec<Value> = hits.iter().map(|p| json!({"objectID": p.object_id, "name": p.name, "category": p.category, "price": p.price,
        "_rankingInfo": {"promoted": promoted.contains(&p.object_id.as_str())}})).collect();
    Ok(json!({
        "hits": hits, "nbHits": hits.len(), "page": 0, "hitsPerPage": 20, "query": text, "index": index,
        "appliedRules": applied.iter().map(|r| json!({"context": r.context, "description": r.description})).collect::<Vec<_>>(),
        "ruleContexts": contexts, "userToken": user_token, "processingTimeMS": 1
    }))
}

fn authorize(
    req: &HttpRequest,
    state: &AlgoliaState,
) -> Result<Vec<(String, String)>, &'static str> {
    let (app, key) = credentials(req);
    if app.as_deref() != Some(state.app_id.as_str()) {
        return Err("Invalid Application-ID or API key");
    }
    restrictions(state, key.as_deref().unwrap_or(""))
}

fn cors(response: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(response)
}

/// `POST /1/indexes/{index}/query` `{"query", "ruleContexts"?, "userToken"?}` (or `{"params": "…"}`).
pub async fn query(
    req: HttpRequest,
    index: web::Path<String>,
    body: web::Bytes,
    state: web::Data<Arc<AlgoliaState>>,
) -> HttpResponse {
    let key_params = match authorize(&req, &state) {
        Ok(p) => p,
        Err(message) => return error(403, message),
    };
    let params = parse_params(&body);
    match search(&state, &index, &params, &key_params) {
        Ok(result) => cors(result),
        Err((status, message)) => error(status, message),
    }
}

/// `POST /1/indexes/*/queries` `{"requests":[{"indexName", "params"|…}]}` (what InstantSearch sends).
pub async fn multi_query(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<AlgoliaState>>,
) -> HttpResponse {
    let key_params = match authorize(&req, &state) {
        Ok(p) => p,
        Err(message) => return error(403, message),
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut results = Vec::new();
    for request in body["requests"].as_array().into_iter().flatten() {
        let index = request["indexName"].as_str().unwrap_or("");
        let params = match request.get("params") {
            Some(Value::String(s)) => {
                parse_params(format!("{{\"params\":{}}}", Value::String(s.clone())).as_bytes())
            }
            Some(obj) => obj.clone(),
            None => request.clone(),
        };
        match search(&state, index, &params, &key_params) {
            Ok(result) => results.push(result),
            Err((status, message)) => return error(status, message),
        }
    }
    cors(json!({"results": results}))
}

/// A JSON body of parameters, or `{"params":"query=…&ruleContexts=…"}`.
fn parse_params(body: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    match value.get("params").and_then(Value::as_str) {
        Some(encoded) => {
            let mut out = serde_json::Map::new();
            for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
                let parsed = serde_json::from_str::<Value>(&v)
                    .ok()
                    .filter(Value::is_array)
                    .unwrap_or(Value::String(v.to_string()));
                out.insert(k.to_string(), parsed);
            }
            Value::Object(out)
        }
        None => value,
    }
}

pub async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Access-Control-Allow-Methods", "GET, POST"))
        .insert_header((
            "Access-Control-Allow-Headers",
            "content-type, x-algolia-api-key, x-algolia-application-id",
        ))
        .finish()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/1/keys/{key}", web::get().to(get_key))
        .route("/1/indexes/*/queries", web::post().to(multi_query))
        .route("/1/indexes/{index}/query", web::post().to(query))
        .default_service(
            web::route()
                .method(actix_web::http::Method::OPTIONS)
                .to(preflight),
        );
}
