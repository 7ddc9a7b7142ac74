//! "Connect with Klaviyo": OAuth 2.0 authorization code with PKCE, through the oauth2 crate.
//!
//! Klaviyo's documented flow (developers.klaviyo.com/en/docs/set_up_oauth):
//! - consent page `https://www.klaviyo.com/oauth/authorize?response_type=code&client_id&redirect_uri&scope&state
//!   &code_challenge_method=S256&code_challenge` (`KLAVIYO_OAUTH_AUTHORIZE_URL`);
//! - token and revoke calls go to `https://a.klaviyo.com/oauth/token` and `/oauth/revoke` — since 2025-03-31
//!   Klaviyo blocks them on www.klaviyo.com — so they use `KLAVIYO_API_URL`;
//! - the client authenticates with HTTP Basic (`client_id:client_secret`), form-encoded bodies, and sends
//!   `code_verifier` with the code;
//! - access tokens last about an hour (`expires_in: 3600`) and are renewed with `grant_type=refresh_token`.
//!   The refresh token's own lifetime is not stated in what we could read (UNCONFIRMED): we refresh only when
//!   needed and treat a refused refresh as "disconnected".
//!
//! The consent page cannot be framed, so the admin page opens it in a new window.

use std::time::Duration;

use anyhow::Context;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RevocationUrl, Scope,
    TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use crate::settings::{Settings, join};

/// The scopes asked for: profiles now; segments and lists for segment rules; accounts for the account name.
pub const SCOPES: &[&str] = &[
    "accounts:read",
    "profiles:read",
    "segments:read",
    "lists:read",
];

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("Klaviyo refused: {0}")]
    Refused(String),
    #[error("Klaviyo could not be reached")]
    Unavailable(String),
}

pub struct Tokens {
    pub access: SecretString,
    pub refresh: Option<SecretString>,
    pub expires_in: Option<Duration>,
    pub scope: Option<String>,
}

impl Tokens {
    /// When the access token expires (Klaviyo's `expires_in`; an hour when it is missing).
    pub fn expires_at(&self) -> time::OffsetDateTime {
        let lifetime = self
            .expires_in
            .and_then(|d| time::Duration::try_from(d).ok())
            .unwrap_or(time::Duration::hours(1));
        time::OffsetDateTime::now_utc() + lifetime
    }
}

pub struct KlaviyoOAuth {
    client: Client,
    http: reqwest::Client,
    revoke_url: RevocationUrl,
    client_secret: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpAdapterError {
    #[error(transparent)]
    Reqwest(#[from] reqwest::Error),
    #[error(transparent)]
    Http(#[from] oauth2::http::Error),
}

/// Drives oauth2 with our reqwest 0.13 client (oauth2's own `reqwest` feature would pull reqwest 0.12).
async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpAdapterError> {
    let response = http.execute(request.try_into()?).await?;
    let mut builder = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    Ok(builder.body(response.bytes().await?.to_vec())?)
}

fn classify<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    error: oauth2::RequestTokenError<RE, T>,
) -> OAuthError {
    match error {
        oauth2::RequestTokenError::ServerResponse(response) => {
            OAuthError::Refused(response.to_string())
        }
        oauth2::RequestTokenError::Parse(_, body) if body.starts_with(b"<") || body.is_empty() => {
            OAuthError::Unavailable("an unreadable answer".into())
        }
        oauth2::RequestTokenError::Parse(e, _) => {
            OAuthError::Refused(format!("an unexpected answer ({e})"))
        }
        oauth2::RequestTokenError::Request(e) => OAuthError::Unavailable(e.to_string()),
        oauth2::RequestTokenError::Other(e) => OAuthError::Unavailable(e),
    }
}

fn tokens(response: oauth2::basic::BasicTokenResponse) -> Tokens {
    Tokens {
        access: SecretString::from(response.access_token().secret().clone()),
        refresh: response
            .refresh_token()
            .map(|r| SecretString::from(r.secret().clone())),
        expires_in: response.expires_in(),
        scope: response
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
    }
}

impl KlaviyoOAuth {
    /// None unless `KLAVIYO_CLIENT_ID` and `KLAVIYO_CLIENT_SECRET` are set.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Self>> {
        let (Some(id), Some(secret)) =
            (&settings.klaviyo.client_id, &settings.klaviyo.client_secret)
        else {
            return Ok(None);
        };
        let client = BasicClient::new(ClientId::new(id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
            .set_auth_uri(AuthUrl::from_url(
                settings.klaviyo.oauth_authorize_url.clone(),
            ))
            .set_token_uri(
                TokenUrl::new(join(&settings.klaviyo.api_url, "/oauth/token"))
                    .context("token URL")?,
            )
            .set_redirect_uri(
                RedirectUrl::new(join(&settings.app_url, "/klaviyo/oauth/callback"))
                    .context("redirect URL")?,
            )
            .set_auth_type(oauth2::AuthType::BasicAuth);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the Klaviyo OAuth HTTP client")?;
        Ok(Some(Self {
            client,
            http,
            revoke_url: RevocationUrl::new(join(&settings.klaviyo.api_url, "/oauth/revoke"))
                .context("revoke URL")?,
            client_secret: secret.clone(),
        }))
    }

    /// The consent URL, its state, and the PKCE verifier to keep (sealed) until the callback.
    pub fn authorize_url(&self) -> (url::Url, CsrfToken, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string())))
            .set_pkce_challenge(challenge)
            .url();
        (url, state, verifier)
    }

    #[tracing::instrument(name = "Exchange Klaviyo OAuth code", skip_all)]
    pub async fn exchange(
        &self,
        code: &SecretString,
        verifier: &SecretString,
    ) -> Result<Tokens, OAuthError> {
        let http = |request| send(&self.http, request);
        self.client
            .exchange_code(AuthorizationCode::new(code.expose_secret().to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_string()))
            .request_async(&http)
            .await
            .map(tokens)
            .map_err(classify)
    }

    #[tracing::instrument(name = "Refresh Klaviyo OAuth token", skip_all)]
    pub async fn refresh(&self, refresh: &SecretString) -> Result<Tokens, OAuthError> {
        let http = |request| send(&self.http, request);
        let token = RefreshToken::new(refresh.expose_secret().to_string());
        self.client
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await
            .map(tokens)
            .map_err(classify)
    }

    /// RFC 7009 revocation, done with reqwest directly: oauth2 5 refuses any revocation endpoint that is not
    /// HTTPS, and the sandbox and tests serve Klaviyo's stand-in on loopback HTTP.
    #[tracing::instrument(name = "Revoke Klaviyo OAuth token", skip_all)]
    pub async fn revoke(&self, refresh: &SecretString) -> Result<(), OAuthError> {
        let response = self
            .http
            .post(self.revoke_url.as_str())
            .basic_auth(
                self.client.client_id().as_str(),
                Some(self.client_secret.expose_secret()),
            )
            .form(&[
                ("token", refresh.expose_secret()),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.without_url().to_string()))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(OAuthError::Refused(format!("HTTP {status}"))),
        }
    }
}
