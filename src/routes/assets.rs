//! Static assets compiled into the binary, so it runs from any working directory.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

pub const ASSETS: &[Asset] = &[
    Asset {
        name: "admin.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../static/admin.css"),
    },
    Asset {
        name: "popup.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/popup.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/admin.js"),
    },
];

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Changes whenever any asset changes: pages reference `?v={ASSET_VERSION}` so browsers may cache for a year.
pub static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let all: Vec<u8> = ASSETS.iter().flat_map(|a| a.body.bytes()).collect();
    short_hash(&all)
});

/// Serves one asset with an ETag; a versioned URL (`?v=…`) is cacheable for a year.
pub fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = format!("\"{}\"", short_hash(asset.body.as_bytes()));
    let versioned = req.query_string().split('&').any(|p| p.starts_with("v="));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if matches {
        response.finish()
    } else {
        response.content_type(asset.content_type).body(asset.body)
    }
}

/// `GET /static/{name}`
pub async fn static_asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.name == name.as_str()) {
        Some(asset) => serve(&req, asset),
        None => HttpResponse::NotFound().finish(),
    }
}
