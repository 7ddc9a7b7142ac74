//! `POST /api/v1/resolve` (the storefront script's call) and its CORS preflight.
//!
//! Status order (DESIGN.md): body over 8 KB 413; malformed JSON, unknown field, or a malformed
//! `store_hash`/`exchange_id` 400; unknown or uninstalled store 404; an `Origin` that is not one of the store's
//! storefronts 403 (without CORS headers); bad customer token 401; over the endpoint's own limits 429.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use serde::Deserialize;

use crate::domain::{ExchangeId, StoreHash};
use crate::personalization::identity::Identity;
use crate::routes::errors::ApiError;
use crate::settings::ResolveSettings;
use crate::startup::AppState;

pub const MAX_BODY: usize = 8 * 1024;

/// The endpoint's own abuse protection: per client IP and per store. Either may be off (0).
pub struct ResolveLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_store: Option<DefaultKeyedRateLimiter<StoreHash>>,
    trusted_proxy_hops: usize,
}

impl ResolveLimits {
    pub fn new(settings: &ResolveSettings) -> Self {
        let per_ip = NonZeroU32::new(settings.limit_per_ip_per_min).map(|n| {
            let burst = NonZeroU32::new(60.min(n.get())).unwrap_or(n);
            RateLimiter::keyed(Quota::per_minute(n).allow_burst(burst))
        });
        let per_store = NonZeroU32::new(settings.limit_per_store_per_sec)
            .map(|n| RateLimiter::keyed(Quota::per_second(n)));
        Self {
            per_ip,
            per_store,
            trusted_proxy_hops: settings.trusted_proxy_hops as usize,
        }
    }

    /// Drops idle keys so the maps stay small (called periodically).
    pub fn shrink(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_store {
            l.retain_recent();
        }
    }

    /// The client's address: the peer, or with N trusted proxy hops the Nth `X-Forwarded-For` entry from the
    /// right (entries further left are whatever the client claimed).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr().map(|a| a.ip());
        if self.trusted_proxy_hops == 0 {
            return peer;
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|part| part.trim().parse().ok())
            .collect();
        forwarded
            .len()
            .checked_sub(self.trusted_proxy_hops)
            .map(|i| forwarded[i])
            .or(peer)
    }

    fn check(&self, ip: Option<IpAddr>, store: &StoreHash) -> Result<(), ApiError> {
        let refused = |not_until: governor::NotUntil<governor::clock::QuantaInstant>| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        };
        if let (Some(limiter), Some(ip)) = (&self.per_ip, ip) {
            limiter.check_key(&ip).map_err(refused)?;
        }
        if let Some(limiter) = &self.per_store {
            limiter.check_key(store).map_err(refused)?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveRequest {
    store_hash: String,
    #[serde(default)]
    customer_token: Option<String>,
    #[serde(default)]
    exchange_id: Option<String>,
}

async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest {
            code: "invalid_body",
            message: "The request body could not be read".into(),
        })?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn origin(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /api/v1/resolve`
pub async fn resolve(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let outcome = resolve_inner(&req, payload, &state).await;
    metrics::histogram!("resolve_duration_seconds").record(started.elapsed().as_secs_f64());
    // Every answer depends on Origin, errors included (a cache must not reuse one origin's answer for another).
    let mut response =
        outcome.unwrap_or_else(|error| actix_web::ResponseError::error_response(&error));
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    Ok(response)
}

async fn resolve_inner(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY)
    {
        return Err(ApiError::TooLarge);
    }
    let body = read_body(payload).await?;
    let request: ResolveRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            code: "invalid_json",
            message: format!("The request body is not valid: {e}"),
        })?;
    let store_hash = StoreHash::parse(&request.store_hash).map_err(|_| ApiError::BadRequest {
        code: "invalid_store_hash",
        message: "store_hash is not a store hash".into(),
    })?;
    let exchange_id = request
        .exchange_id
        .as_deref()
        .map(ExchangeId::parse)
        .transpose()
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_exchange_id",
            message: "exchange_id is not a Klaviyo exchange id".into(),
        })?;

    let config = state
        .resolver
        .store(&store_hash)
        .await?
        .ok_or(ApiError::NotFound {
            code: "unknown_store",
            message: "No installed store has this hash".into(),
        })?;
    let origin = origin(req);
    if let Some(origin) = &origin
        && !config.origins.contains(origin)
    {
        return Err(ApiError::Forbidden {
            code: "origin_not_allowed",
            message: "This origin is not one of the store's storefronts".into(),
        });
    }
    let identity = match (&request.customer_token, exchange_id) {
        (Some(token), _) => state
            .customer_tokens
            .verify(token, &store_hash)
            .map_err(|_| {
                metrics::counter!("resolve_outcomes_total", "outcome" => "bad_token").increment(1);
                ApiError::Unauthorized {
                    code: "invalid_customer_token",
                    message: "The customer token did not verify".into(),
                }
            })?,
        (None, Some(id)) => Identity::Exchange(id),
        (None, None) => Identity::Anonymous,
    };
    state
        .resolve_limits
        .check(state.resolve_limits.client_ip(req), &store_hash)
        .inspect_err(|_| {
            metrics::counter!("resolve_outcomes_total", "outcome" => "rate_limited").increment(1);
        })?;

    let answer = state.resolver.resolve(&config, identity).await;
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(origin) = origin {
        response.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin));
    }
    Ok(response.json(answer))
}

/// `OPTIONS /api/v1/resolve`: a preflight carries no body, so any installed store's storefront origin passes.
pub async fn preflight(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let origins = state.resolver.all_origins().await?;
    let allowed = origin(&req).filter(|o| origins.contains(o));
    let mut response = match allowed {
        Some(origin) => {
            let mut ok = HttpResponse::NoContent();
            ok.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
            ok
        }
        None => HttpResponse::Forbidden(),
    };
    Ok(response.insert_header((header::VARY, "Origin")).finish())
}
