//! The Klaviyo REST client (research/klaviyo-algolia.md A1–A4): the pinned `revision`, `Accept:
//! application/vnd.api+json`, either `Klaviyo-API-Key` or OAuth `Bearer` auth, and lenient error parsing —
//! Klaviyo's errors are JSON:API `{"errors":[…]}`, but Cloudflare in front of it answers HTML.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use crate::settings::{KlaviyoSettings, join};

/// How a store authenticates to Klaviyo.
#[derive(Clone)]
pub enum KlaviyoAuth {
    PrivateKey(SecretString),
    OAuth(SecretString),
}

impl KlaviyoAuth {
    fn header(&self) -> String {
        match self {
            Self::PrivateKey(key) => format!("Klaviyo-API-Key {}", key.expose_secret()),
            Self::OAuth(token) => format!("Bearer {}", token.expose_secret()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KlaviyoError {
    /// A JSON 400/401/403: Klaviyo read the request and refused the credentials (or the scope).
    #[error("Klaviyo refused the credentials (HTTP {status}){}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected { status: u16, detail: Option<String> },
    #[error("Klaviyo is throttling this account (retry after {retry_after:?})")]
    Throttled { retry_after: Duration },
    #[error("Klaviyo is unavailable: {0}")]
    Unavailable(String),
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

/// The first JSON:API error's `detail` (or `title`), if the body is JSON:API at all.
pub fn error_detail(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let first = value.get("errors")?.get(0)?;
    let text = first
        .get("detail")
        .or_else(|| first.get("title"))?
        .as_str()?;
    Some(text.chars().take(200).collect())
}

fn is_json(headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    let declared = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    declared && serde_json::from_slice::<serde_json::Value>(body).is_ok()
}

/// `Retry-After` in seconds (Klaviyo's SDK reads integer seconds); 1 s when absent or unreadable.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
        .unwrap_or(Duration::from_secs(1))
}

#[derive(Clone)]
pub struct KlaviyoClient {
    http: reqwest::Client,
    base: url::Url,
    revision: String,
}

impl KlaviyoClient {
    pub fn new(settings: &KlaviyoSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(32)
            .build()
            .context("Failed to build the Klaviyo HTTP client")?;
        Ok(Self {
            http,
            base: settings.api_url.clone(),
            revision: settings.revision.clone(),
        })
    }

    /// `GET {KLAVIYO_API_URL}{path_and_query}`; the caller encodes the query.
    #[tracing::instrument(name = "Klaviyo GET", skip_all, fields(path = path_and_query.split('?').next().unwrap_or(""), status = tracing::field::Empty))]
    pub async fn get(
        &self,
        auth: &KlaviyoAuth,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<Answer, KlaviyoError> {
        let response = self
            .http
            .get(join(&self.base, path_and_query))
            .header(reqwest::header::AUTHORIZATION, auth.header())
            .header("revision", &self.revision)
            .header(reqwest::header::ACCEPT, "application/vnd.api+json")
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                KlaviyoError::Unavailable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "unreachable".into()
                })
            })?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|_| KlaviyoError::Unavailable("the answer was cut off".into()))?
            .to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Maps a non-200 answer to an error: JSON 400/401/403 is a refusal; 429 is throttling; the rest is outage.
    pub fn classify(answer: &Answer) -> KlaviyoError {
        let status = answer.status.as_u16();
        if status == 429 {
            return KlaviyoError::Throttled {
                retry_after: retry_after(&answer.headers),
            };
        }
        if matches!(status, 400 | 401 | 403) && is_json(&answer.headers, &answer.body) {
            return KlaviyoError::Rejected {
                status,
                detail: error_detail(&answer.body),
            };
        }
        KlaviyoError::Unavailable(format!("HTTP {status}"))
    }

    /// Checks credentials the way DESIGN.md asks (a one-profile read), then whether the optional scopes are
    /// there. A missing segments or lists scope is a warning: today's rules need only `profiles:read`.
    #[tracing::instrument(name = "Validate Klaviyo credentials", skip_all)]
    pub async fn validate(&self, auth: &KlaviyoAuth) -> Result<Vec<String>, KlaviyoError> {
        let timeout = Duration::from_secs(5);
        let answer = self
            .get(
                auth,
                "/api/profiles?page%5Bsize%5D=1&fields%5Bprofile%5D=email",
                timeout,
            )
            .await?;
        if answer.status != StatusCode::OK {
            return Err(Self::classify(&answer));
        }
        let mut warnings = Vec::new();
        for (path, scope) in [
            ("/api/segments?fields%5Bsegment%5D=name", "segments:read"),
            ("/api/lists?fields%5Blist%5D=name", "lists:read"),
        ] {
            match self.get(auth, path, timeout).await {
                Ok(a) if a.status == StatusCode::OK => {}
                Ok(a) if a.status == StatusCode::FORBIDDEN => warnings.push(format!(
                    "This key lacks the {scope} scope; segment and list rules will need it later"
                )),
                _ => warnings.push(format!("Could not check the {scope} scope just now")),
            }
        }
        Ok(warnings)
    }
}

/// A private key as Klaviyo issues them: `pk_` and then letters and digits (length not hard-validated).
pub fn looks_like_private_key(key: &str) -> bool {
    key.starts_with("pk_")
        && (8..=200).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_shape() {
        assert!(looks_like_private_key(
            "pk_abcdefghijklmnopqrstuvwxyz01234567"
        ));
        for bad in [
            "",
            "sk_abcdefgh",
            "pk_ab",
            "pk_abc def ghi",
            "pk_abcdefgh\n",
            "Klaviyo-API-Key pk_abcdefgh",
        ] {
            assert!(!looks_like_private_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn error_details_are_read_leniently() {
        let throttled = br#"{"errors":[{"id":"x","status":429,"code":"throttled","title":"Request was throttled.","detail":"Expected available in 1 second."}]}"#;
        assert_eq!(
            error_detail(throttled).as_deref(),
            Some("Expected available in 1 second.")
        );
        assert_eq!(
            error_detail(br#"{"errors":[{"title":"Only title"}]}"#).as_deref(),
            Some("Only title")
        );
        assert_eq!(
            error_detail(b"<html>Attention Required! | Cloudflare</html>"),
            None
        );
        assert_eq!(error_detail(br#"{"message":"other"}"#), None);
    }
}
