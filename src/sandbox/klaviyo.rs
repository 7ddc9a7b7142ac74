//! Emulated Klaviyo (research/klaviyo-algolia.md A1–A3): Get Profiles with `equals`/`any` filters, sparse
//! fieldsets, predictive analytics, JSON:API errors, and Klaviyo's fixed-window rate limits (75/s and 750/min,
//! 10/s and 150/min with predictive analytics) answered with `429` and `Retry-After`. Its own wire types: it
//! imports nothing from the production Klaviyo client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct SandboxProfile {
    pub id: String,
    pub email: String,
    pub external_id: Option<String>,
    pub exchange_id: Option<String>,
    pub first_name: String,
    pub properties: Value,
    pub location: Value,
    pub predictive: Value,
}

#[derive(Debug, Clone, Copy)]
pub struct FixedWindowLimits {
    pub per_sec: u32,
    pub per_min: u32,
}

#[derive(Default)]
struct Windows {
    second: (u64, u32),
    minute: (u64, u32),
}

pub struct KlaviyoState {
    pub private_keys: Vec<String>,
    pub profiles: Vec<SandboxProfile>,
    by_email: HashMap<String, usize>,
    pub latency: Duration,
    pub limits: FixedWindowLimits,
    pub predictive_limits: FixedWindowLimits,
    windows: Mutex<(Windows, Windows)>,
    pub calls: Mutex<u64>,
    pub throttled: Mutex<u64>,
}

impl KlaviyoState {
    pub fn new(
        private_keys: Vec<String>,
        profiles: Vec<SandboxProfile>,
        latency: Duration,
    ) -> Arc<Self> {
        let by_email = profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (p.email.to_lowercase(), i))
            .collect();
        Arc::new(Self {
            private_keys,
            profiles,
            by_email,
            latency,
            limits: FixedWindowLimits {
                per_sec: 75,
                per_min: 750,
            },
            predictive_limits: FixedWindowLimits {
                per_sec: 10,
                per_min: 150,
            },
            windows: Mutex::new((Windows::default(), Windows::default())),
            calls: Mutex::new(0),
            throttled: Mutex::new(0),
        })
    }

    pub fn counts(&self) -> (u64, u64) {
        (
            *self.calls.lock().expect("lock"),
            *self.throttled.lock().expect("lock"),
        )
    }

    /// Counts the call in Klaviyo's fixed windows; the seconds to wait when a window is full.
    fn admit(&self, predictive: bool) -> Result<(), u64> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        let (sec, min) = (now, now / 60);
        let mut windows = self.windows.lock().expect("lock");
        let (standard, pred) = &mut *windows;
        let check = |w: &mut Windows, limits: FixedWindowLimits| -> Result<(), u64> {
            if w.second.0 != sec {
                w.second = (sec, 0);
            }
            if w.minute.0 != min {
                w.minute = (min, 0);
            }
            if w.minute.1 >= limits.per_min {
                return Err(60 - now % 60);
            }
            if w.second.1 >= limits.per_sec {
                return Err(1);
            }
            Ok(())
        };
        check(standard, self.limits)?;
        if predictive {
            check(pred, self.predictive_limits)?;
            pred.second.1 += 1;
            pred.minute.1 += 1;
        }
        standard.second.1 += 1;
        standard.minute.1 += 1;
        Ok(())
    }
}

fn error(status: u16, code: &str, title: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST))
        .content_type("application/vnd.api+json")
        .json(json!({"errors": [{"id": uuid::Uuid::new_v4().to_string(), "status": status, "code": code, "title": title, "detail": detail, "source": {"parameter": "filter"}}]}))
}

fn invalid_filter(detail: &str) -> HttpResponse {
    error(
        400,
        "invalid",
        "Invalid input.",
        &format!("Invalid filter provided: {detail}"),
    )
}

/// Parses `name(field,"v")` or `name(field,["a","b"])` with `\"` and `\\` escapes. Unquoted values are refused.
fn parse_filter(filter: &str) -> Result<(String, String, Vec<String>), String> {
    let open = filter.find('(').ok_or("no operator")?;
    let op = &filter[..open];
    let inner = filter[open + 1..]
        .strip_suffix(')')
        .ok_or("unbalanced parentheses")?;
    let (field, rest) = inner.split_once(',').ok_or("no value")?;
    let rest = rest.trim();
    let list = rest.starts_with('[');
    let body = if list {
        rest.strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or("unbalanced list")?
    } else {
        rest
    };
    let mut values = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | ',' => continue,
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => value.push(chars.next().ok_or("dangling escape")?),
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                values.push(value);
            }
            _ => return Err("string values must be quoted".into()),
        }
    }
    if values.is_empty() || (!list && values.len() != 1) {
        return Err("wrong number of values".into());
    }
    Ok((op.to_string(), field.trim().to_string(), values))
}

fn attributes(profile: &SandboxProfile, fields: Option<&[&str]>, predictive: bool) -> Value {
    let all = json!({
        "email": profile.email, "external_id": profile.external_id, "first_name": profile.first_name,
        "properties": profile.properties, "location": profile.location,
    });
    let mut out = serde_json::Map::new();
    for (k, v) in all.as_object().into_iter().flatten() {
        if fields.is_none_or(|f| f.contains(&k.as_str())) {
            out.insert(k.clone(), v.clone());
        }
    }
    if predictive && fields.is_none_or(|f| f.contains(&"predictive_analytics")) {
        out.insert("predictive_analytics".into(), profile.predictive.clone());
    }
    Value::Object(out)
}

/// `GET /api/profiles`
pub async fn get_profiles(req: HttpRequest, state: web::Data<Arc<KlaviyoState>>) -> HttpResponse {
    *state.calls.lock().expect("lock") += 1;
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = auth.strip_prefix("Klaviyo-API-Key ").unwrap_or("");
    if !state.private_keys.iter().any(|k| k == key) {
        return error(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
        );
    }
    if req.headers().get("revision").is_none() {
        return error(
            400,
            "invalid",
            "Invalid input.",
            "The revision header is required.",
        );
    }
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let predictive = get("additional-fields[profile]")
        .is_some_and(|v| v.split(',').any(|f| f == "predictive_analytics"));
    if let Err(wait) = state.admit(predictive) {
        *state.throttled.lock().expect("lock") += 1;
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", wait.to_string()))
            .content_type("application/vnd.api+json")
            .json(json!({"errors": [{"id": uuid::Uuid::new_v4().to_string(), "status": 429, "code": "throttled", "title": "Request was throttled.", "detail": format!("Request was throttled. Expected available in {wait} second."), "source": {"pointer": "/data"}}]}));
    }
    let page_size: usize = match get("page[size]").map(str::parse) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => {
            return error(
                400,
                "invalid",
                "Invalid input.",
                "page[size] must be between 1 and 100.",
            );
        }
    };
    let fields: Option<Vec<&str>> = get("fields[profile]").map(|f| f.split(',').collect());
    let mut matched: Vec<&SandboxProfile> = Vec::new();
    if let Some(filter) = get("filter") {
        let (op, field, values) = match parse_filter(filter) {
            Ok(parsed) => parsed,
            Err(why) => return invalid_filter(&why),
        };
        match (op.as_str(), field.as_str()) {
            ("equals", _) if values.len() != 1 => return invalid_filter("equals takes one value"),
            ("equals", "email" | "_kx" | "id" | "external_id")
            | ("any", "email" | "id" | "external_id") => {}
            ("any", "_kx") => {
                return invalid_filter("'any' operation is not allowed for filter '_kx'");
            }
            _ => return invalid_filter(&format!("'{op}' is not allowed on '{field}'")),
        }
        if values.len() > 100 {
            return invalid_filter("at most 100 values");
        }
        for value in &values {
            let found = match field.as_str() {
                "email" => state
                    .by_email
                    .get(&value.to_lowercase())
                    .map(|i| &state.profiles[*i]),
                "_kx" => state
                    .profiles
                    .iter()
                    .find(|p| p.exchange_id.as_deref() == Some(value.as_str())),
                "id" => state.profiles.iter().find(|p| p.id == *value),
                _ => state
                    .profiles
                    .iter()
                    .find(|p| p.external_id.as_deref() == Some(value.as_str())),
            };
            if let Some(p) = found
                && !matched.iter().any(|m| m.id == p.id)
            {
                matched.push(p);
            }
        }
    } else {
        matched = state.profiles.iter().take(page_size).collect();
    }
    matched.truncate(page_size);
    let data: Vec<Value> = matched
        .iter()
        .map(|p| json!({"type": "profile", "id": p.id, "attributes": attributes(p, fields.as_deref(), predictive),
                        "links": {"self": format!("https://a.klaviyo.com/api/profiles/{}/", p.id)}}))
        .collect();
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    HttpResponse::Ok()
        .content_type("application/vnd.api+json")
        .json(json!({"data": data, "links": {"self": format!("https://a.klaviyo.com/api/profiles/?{}", req.query_string()), "next": null, "prev": null}}))
}

/// `GET /api/segments`, `GET /api/lists`: enough for key validation (scopes are all granted here).
pub async fn empty_collection(
    req: HttpRequest,
    state: web::Data<Arc<KlaviyoState>>,
) -> HttpResponse {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !state
        .private_keys
        .iter()
        .any(|k| Some(k.as_str()) == auth.strip_prefix("Klaviyo-API-Key "))
    {
        return error(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
        );
    }
    HttpResponse::Ok()
        .content_type("application/vnd.api+json")
        .json(json!({"data": [], "links": {}}))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/profiles", web::get().to(get_profiles))
        .route("/api/profiles/", web::get().to(get_profiles))
        .route("/api/segments", web::get().to(empty_collection))
        .route("/api/lists", web::get().to(empty_collection));
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filters_parse_like_klaviyo_reads_them() {
        assert_eq!(
            parse_filter(r#"equals(email,"a@b.c")"#).unwrap(),
            ("equals".into(), "email".into(), vec!["a@b.c".into()])
        );
        assert_eq!(
            parse_filter(r#"any(email,["a@b.c","\"q\"@x.y"])"#)
                .unwrap()
                .2,
            vec!["a@b.c".to_string(), "\"q\"@x.y".into()]
        );
        assert!(
            parse_filter("equals(email,a@b.c)").is_err(),
            "unquoted values are refused"
        );
        assert!(parse_filter(r#"equals(email,"a@b.c""#).is_err());
    }
}
