//! The install-time code exchange: `POST {BC_LOGIN_URL}/oauth2/token`.
//!
//! Plain reqwest rather than the oauth2 crate, on purpose: BigCommerce starts the install itself, so there is no
//! authorize URL, PKCE, state, refresh or expiry for oauth2 to manage; its response has no `token_type`, which
//! would force a hand-written `TokenResponse`; and `scope`/`context` would have to go through `add_extra_param`,
//! which the crate warns against for RFC 6749 parameters (research/crates.md §4). oauth2 is used where OAuth
//! really happens: "Connect with Klaviyo".

use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::settings::{BigCommerceSettings, join};

#[derive(Debug, Clone, Deserialize)]
pub struct TokenUser {
    pub id: i64,
    pub email: String,
}

/// BigCommerce's token response (research/bigcommerce.md §1): no token_type, no expiry, no refresh token.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: SecretString,
    #[serde(default)]
    pub scope: Option<String>,
    pub user: TokenUser,
    #[serde(default)]
    pub owner: Option<TokenUser>,
    pub context: String,
    #[serde(default)]
    pub account_uuid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("BigCommerce refused the code (HTTP {status}, {code})")]
    Refused { status: u16, code: String },
    #[error("BigCommerce's token endpoint could not be reached or answered nonsense")]
    Unavailable(#[source] anyhow::Error),
}

pub struct AuthorizationRequest<'a> {
    pub code: &'a SecretString,
    pub scope: &'a str,
    pub context: &'a str,
    pub redirect_uri: &'a str,
}

pub struct TokenExchanger {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
}

impl TokenExchanger {
    pub fn new(settings: &BigCommerceSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the HTTP client")?;
        Ok(Self {
            http,
            token_url: join(&settings.login_url, "/oauth2/token"),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
        })
    }

    #[tracing::instrument(name = "Exchange install code", skip_all)]
    pub async fn exchange(
        &self,
        request: &AuthorizationRequest<'_>,
    ) -> Result<TokenResponse, ExchangeError> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("code", request.code.expose_secret()),
            ("scope", request.scope),
            ("grant_type", "authorization_code"),
            ("redirect_uri", request.redirect_uri),
            ("context", request.context),
        ];
        let response = self
            .http
            .post(&self.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| ExchangeError::Unavailable(anyhow::Error::new(e.without_url())))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ExchangeError::Unavailable(anyhow::Error::new(e.without_url())))?;
        if status.is_client_error() {
            // Error bodies vary (`{"error":"invalid_grant"}`, `{"error":{...}}`, HTML): keep only a short code.
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .filter(|c| {
                    c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
                .unwrap_or_else(|| "unknown_error".into());
            return Err(ExchangeError::Refused {
                status: status.as_u16(),
                code,
            });
        }
        if !status.is_success() {
            return Err(ExchangeError::Unavailable(anyhow::anyhow!(
                "token endpoint answered HTTP {status}"
            )));
        }
        serde_json::from_slice(&body)
            .context("The token response was not the documented JSON")
            .map_err(ExchangeError::Unavailable)
    }
}
