//! `GET /storefront.js`: the storefront script, with the app's (public) client id filled in.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::startup::AppState;

const TEMPLATE: &str = include_str!("../../static/storefront.js");
const CLIENT_ID_PLACEHOLDER: &str = "\"__PB_CLIENT_ID__\"";

pub struct StorefrontScript {
    pub body: String,
    pub etag: String,
    /// Goes in the registered `src` (`?v=`); a changed script gets a new URL, so old copies are never stale.
    pub version: String,
}

impl StorefrontScript {
    pub fn new(client_id: &str) -> Self {
        // serde_json quotes and escapes: the client id can never break out of its string literal.
        let quoted = serde_json::to_string(client_id).unwrap_or_else(|_| "\"\"".into());
        let body = TEMPLATE.replace(CLIENT_ID_PLACEHOLDER, &quoted);
        let digest = Sha256::digest(body.as_bytes());
        let version: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            etag: format!("\"{version}\""),
            body,
            version,
        }
    }
}

/// Any `v` gets the current script; only the current version's URL may be cached for a year.
pub async fn storefront_js(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let script = &state.storefront_script;
    let current =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("v").cloned())
            .is_some_and(|v| v == script.version);
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == script.etag));
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, script.etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"));
    if not_modified {
        return response.finish();
    }
    response
        .content_type("text/javascript; charset=utf-8")
        .body(script.body.clone())
}
