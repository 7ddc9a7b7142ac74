//! The BigCommerce REST client: one reqwest client with timeouts and an injectable base URL.
//!
//! Rate limits (research/bigcommerce.md §3): the quota is shared by every app on the store and refreshes every
//! 30 s. On `429` we wait `X-Rate-Limit-Time-Reset-Ms` (else `X-Retry-After` seconds, else a fallback delay) and
//! retry, a bounded number of times and never past the caller's deadline. A `5xx` is retried only for idempotent
//! calls (GET, PUT, DELETE): a POST that failed on the server may still have created something.

use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::domain::StoreHash;
use crate::settings::join;

const MAX_ATTEMPTS: u32 = 3;
/// Used when a 429 carries no rate-limit header (BigCommerce: "the platform is under load").
pub const FALLBACK_RETRY_DELAY: Duration = Duration::from_millis(1000);
const SERVER_ERROR_DELAY: Duration = Duration::from_millis(250);

/// The point in time after which no retry may start (one incoming request's whole BigCommerce budget).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BcApiError {
    #[error("BigCommerce answered HTTP {status}{}", title.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    Status { status: u16, title: Option<String> },
    #[error("BigCommerce rate limit: retry after {retry_after:?}, past this request's time budget")]
    RateLimited { retry_after: Duration },
    #[error("BigCommerce could not be reached")]
    Transport(#[source] reqwest::Error),
    #[error("BigCommerce's answer was not the expected JSON")]
    Decode(#[source] anyhow::Error),
}

impl BcApiError {
    /// A short, secret-free sentence for the admin page.
    pub fn summary(&self) -> String {
        match self {
            Self::Status { status: 403, .. } => {
                "BigCommerce refused (403): the app is missing the Content scope — reinstall to grant it".into()
            }
            Self::Status { status, title } => match title {
                Some(t) => format!("BigCommerce answered {status}: {t}"),
                None => format!("BigCommerce answered {status}"),
            },
            Self::RateLimited { .. } => "BigCommerce's rate limit is exhausted; will retry".into(),
            Self::Transport(_) => "BigCommerce could not be reached; will retry".into(),
            Self::Decode(_) => "BigCommerce answered something unexpected; will retry".into(),
        }
    }
}

#[derive(Clone)]
pub struct BigCommerceClient {
    http: reqwest::Client,
    api_base: url::Url,
}

fn header_number(headers: &reqwest::header::HeaderMap, name: &str) -> Option<f64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// How long BigCommerce asks us to wait after a 429.
pub fn retry_delay(headers: &reqwest::header::HeaderMap) -> Duration {
    if let Some(ms) = header_number(headers, "x-rate-limit-time-reset-ms") {
        return Duration::from_millis(ms as u64);
    }
    if let Some(seconds) =
        header_number(headers, "x-retry-after").or_else(|| header_number(headers, "retry-after"))
    {
        return Duration::from_secs_f64(seconds.min(3600.0));
    }
    FALLBACK_RETRY_DELAY
}

/// BigCommerce error bodies are `{"status","title",...}` on v3, arrays on v2, HTML from proxies: take a title if any.
fn error_title(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let title = value
        .get("title")
        .or_else(|| value.get(0).and_then(|v| v.get("message")))
        .or_else(|| value.get("message"))?
        .as_str()?;
    Some(title.chars().take(200).collect())
}

impl BigCommerceClient {
    pub fn new(api_base: url::Url) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(4))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the BigCommerce HTTP client")?;
        Ok(Self { http, api_base })
    }

    /// `{BC_API_URL}/stores/{hash}{path}`, e.g. path `/v3/content/scripts`.
    pub fn url(&self, store_hash: &StoreHash, path: &str) -> String {
        join(&self.api_base, &format!("/stores/{store_hash}{path}"))
    }

    #[tracing::instrument(name = "BigCommerce API call", skip_all, fields(%method, path, status = tracing::field::Empty))]
    pub async fn call<T: DeserializeOwned>(
        &self,
        store_hash: &StoreHash,
        token: &SecretString,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        deadline: Deadline,
    ) -> Result<Option<T>, BcApiError> {
        let idempotent = matches!(
            method,
            Method::GET | Method::PUT | Method::DELETE | Method::HEAD
        );
        let url = self.url(store_hash, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("X-Auth-Token", token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(
                    deadline
                        .remaining()
                        .clamp(Duration::from_millis(100), Duration::from_secs(4)),
                );
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(error) => {
                    let error = error.without_url();
                    if idempotent
                        && attempt < MAX_ATTEMPTS
                        && deadline.remaining() > SERVER_ERROR_DELAY
                    {
                        tokio::time::sleep(SERVER_ERROR_DELAY).await;
                        continue;
                    }
                    return Err(BcApiError::Transport(error));
                }
            };
            let status = response.status();
            tracing::Span::current().record("status", status.as_u16());
            let headers = response.headers().clone();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| BcApiError::Transport(e.without_url()))?;

            if status == StatusCode::TOO_MANY_REQUESTS {
                // A 429 was not processed, so retrying is safe for any method.
                let wait = retry_delay(&headers);
                if attempt >= MAX_ATTEMPTS || wait >= deadline.remaining() {
                    return Err(BcApiError::RateLimited { retry_after: wait });
                }
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "BigCommerce rate limit; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                if idempotent && attempt < MAX_ATTEMPTS && deadline.remaining() > SERVER_ERROR_DELAY
                {
                    tokio::time::sleep(SERVER_ERROR_DELAY * attempt).await;
                    continue;
                }
                return Err(BcApiError::Status {
                    status: status.as_u16(),
                    title: error_title(&bytes),
                });
            }
            if !status.is_success() {
                return Err(BcApiError::Status {
                    status: status.as_u16(),
                    title: error_title(&bytes),
                });
            }
            if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| BcApiError::Decode(anyhow::Error::new(e)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn client() -> (MockServer, BigCommerceClient) {
        let server = MockServer::start().await;
        let client = BigCommerceClient::new(url::Url::parse(&server.uri()).unwrap()).unwrap();
        (server, client)
    }

    fn hash() -> StoreHash {
        StoreHash::parse("abc123").unwrap()
    }

    fn token() -> SecretString {
        SecretString::from("tok".to_string())
    }

    async fn get(client: &BigCommerceClient, budget_ms: u64) -> Result<Option<Value>, BcApiError> {
        client
            .call(
                &hash(),
                &token(),
                Method::GET,
                "/v2/store",
                None,
                Deadline::after(Duration::from_millis(budget_ms)),
            )
            .await
    }

    #[tokio::test]
    async fn sends_the_auth_token_and_parses_json() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .and(path("/stores/abc123/v2/store"))
            .and(header("X-Auth-Token", "tok"))
            .and(header("Accept", "application/json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "abc123"})))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(get(&client, 5000).await.unwrap().unwrap()["id"], "abc123");
    }

    #[tokio::test]
    async fn a_429_waits_the_reset_header_then_succeeds() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(429).insert_header("X-Rate-Limit-Time-Reset-Ms", "300"),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .mount(&server)
            .await;
        let started = Instant::now();
        assert!(get(&client, 5000).await.unwrap().is_some());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(900),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_429_with_x_retry_after_seconds_is_honoured() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("X-Retry-After", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&server)
            .await;
        let started = Instant::now();
        assert!(get(&client, 5000).await.is_ok());
        assert!(started.elapsed() >= Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn a_429_without_headers_uses_the_fallback_delay() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).set_body_string("<html>busy</html>"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&server)
            .await;
        let started = Instant::now();
        assert!(get(&client, 5000).await.is_ok());
        assert!(started.elapsed() >= FALLBACK_RETRY_DELAY);
    }

    #[tokio::test]
    async fn a_wait_past_the_deadline_fails_at_once() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(429).insert_header("X-Rate-Limit-Time-Reset-Ms", "20000"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let started = Instant::now();
        assert!(matches!(
            get(&client, 5000).await,
            Err(BcApiError::RateLimited { .. })
        ));
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(429).insert_header("X-Rate-Limit-Time-Reset-Ms", "10"),
            )
            .expect(u64::from(MAX_ATTEMPTS))
            .mount(&server)
            .await;
        assert!(matches!(
            get(&client, 5000).await,
            Err(BcApiError::RateLimited { .. })
        ));
    }

    #[tokio::test]
    async fn server_errors_are_retried_for_get_but_not_for_post() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500).set_body_string("Internal"))
            .expect(1)
            .mount(&server)
            .await;
        assert!(get(&client, 5000).await.is_ok());
        let post = client
            .call::<Value>(
                &hash(),
                &token(),
                Method::POST,
                "/v3/content/scripts",
                Some(&json!({})),
                Deadline::after(Duration::from_secs(5)),
            )
            .await;
        assert!(matches!(post, Err(BcApiError::Status { status: 500, .. })));
    }

    #[tokio::test]
    async fn error_bodies_of_any_shape_are_tolerated() {
        let (server, client) = client().await;
        for (body, expected) in [
            (
                r#"{"status":422,"title":"Invalid field","type":"x","errors":{}}"#,
                Some("Invalid field"),
            ),
            (
                r#"[{"status":403,"message":"You don't have a required scope"}]"#,
                Some("You don't have a required scope"),
            ),
            ("<html><body>Bad gateway</body></html>", None),
            ("", None),
        ] {
            let guard = Mock::given(method("GET"))
                .respond_with(ResponseTemplate::new(422).set_body_string(body))
                .mount_as_scoped(&server)
                .await;
            match get(&client, 5000).await {
                Err(BcApiError::Status { status: 422, title }) => {
                    assert_eq!(title.as_deref(), expected, "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
            drop(guard);
        }
    }

    #[tokio::test]
    async fn a_non_json_success_is_a_decode_error() {
        let (server, client) = client().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
            .mount(&server)
            .await;
        assert!(matches!(
            get(&client, 5000).await,
            Err(BcApiError::Decode(_))
        ));
    }
}
