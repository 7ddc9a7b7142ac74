//! Typed settings from the environment (and `.env`). Every variable is documented in `.env.example`.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use crate::crypto::{EncryptionKey, Keyring};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct BigCommerceSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    pub login_url: Url,
    pub api_url: Url,
}

#[derive(Debug, Clone)]
pub struct KlaviyoSettings {
    pub api_url: Url,
    pub revision: String,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub oauth_authorize_url: Url,
    pub budget_per_sec: u32,
    pub budget_per_min: u32,
    pub predictive_budget_per_sec: u32,
    pub predictive_budget_per_min: u32,
}

#[derive(Debug, Clone)]
pub struct ResolveSettings {
    pub klaviyo_wait_ms: u64,
    pub limit_per_ip_per_min: u32,
    pub limit_per_store_per_sec: u32,
    pub trusted_proxy_hops: u32,
}

#[derive(Debug)]
pub struct Settings {
    pub app_url: Url,
    pub listen_addr: SocketAddr,
    pub database_url: Option<SecretString>,
    pub keyring: std::sync::Arc<Keyring>,
    pub bigcommerce: BigCommerceSettings,
    pub klaviyo: KlaviyoSettings,
    pub algolia_api_url: Option<Url>,
    pub resolve: ResolveSettings,
    pub admin_frame_ancestors: Vec<String>,
    pub pg_bin_dir: Option<PathBuf>,
    pub log_format: LogFormat,
}

/// Names the variable at fault, in one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {variable} {problem}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub problem: String,
}

fn err(variable: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        variable,
        problem: problem.into(),
    }
}

struct Env<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Empty values count as unset, so `FOO=` in `.env` means "use the default".
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str, hint: &str) -> Result<String, SettingsError> {
        self.get(name)
            .ok_or_else(|| err(name, format!("is required ({hint})")))
    }

    fn url(&self, name: &'static str, default: &str) -> Result<Url, SettingsError> {
        let raw = self.get(name).unwrap_or_else(|| default.to_string());
        parse_base_url(&raw).map_err(|p| err(name, p))
    }

    fn optional_url(&self, name: &'static str) -> Result<Option<Url>, SettingsError> {
        self.get(name)
            .map(|raw| parse_base_url(&raw).map_err(|p| err(name, p)))
            .transpose()
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|_| {
                err(
                    name,
                    format!("must be a non-negative whole number, got {raw:?}"),
                )
            }),
        }
    }
}

/// A base URL: http(s), no query or fragment, stored without a trailing slash so `{url}/path` joins cleanly.
fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url =
        Url::parse(raw.trim_end_matches('/')).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("must be an http(s) URL, got {raw:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url)
}

/// `{base}{path}` for a base URL parsed above (which never ends in `/`).
pub fn join(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

impl Settings {
    /// Reads `.env` when present, then the process environment (which wins).
    pub fn from_env() -> Result<Self, SettingsError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(lookup);

        let listen_raw = env
            .get("LISTEN_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen_addr = listen_raw.parse().map_err(|_| {
            err(
                "LISTEN_ADDR",
                format!("must be host:port like 127.0.0.1:8080, got {listen_raw:?}"),
            )
        })?;

        let active = EncryptionKey::parse(&env.required(
            "ENCRYPTION_KEY",
            "base64 of 32 random bytes; generate one with `openssl rand -base64 32`",
        )?)
        .map_err(|p| err("ENCRYPTION_KEY", p))?;
        let old = env
            .get("ENCRYPTION_KEYS_OLD")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|k| {
                        EncryptionKey::parse(k)
                            .map_err(|p| err("ENCRYPTION_KEYS_OLD", format!("has a key that {p}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let bigcommerce = BigCommerceSettings {
            client_id: env.required("BC_CLIENT_ID", "from the BigCommerce Developer Portal")?,
            client_secret: env
                .required("BC_CLIENT_SECRET", "from the BigCommerce Developer Portal")?
                .into(),
            login_url: env.url("BC_LOGIN_URL", "https://login.bigcommerce.com")?,
            api_url: env.url("BC_API_URL", "https://api.bigcommerce.com")?,
        };

        let klaviyo_client_id = env.get("KLAVIYO_CLIENT_ID");
        let klaviyo_client_secret = env.get("KLAVIYO_CLIENT_SECRET");
        if klaviyo_client_id.is_some() != klaviyo_client_secret.is_some() {
            let missing = if klaviyo_client_id.is_some() {
                "KLAVIYO_CLIENT_SECRET"
            } else {
                "KLAVIYO_CLIENT_ID"
            };
            return Err(err(
                missing,
                "must be set together with its pair to enable Connect with Klaviyo",
            ));
        }
        let klaviyo = KlaviyoSettings {
            api_url: env.url("KLAVIYO_API_URL", "https://a.klaviyo.com")?,
            revision: env
                .get("KLAVIYO_REVISION")
                .unwrap_or_else(|| "2026-10-15".into()),
            client_id: klaviyo_client_id,
            client_secret: klaviyo_client_secret.map(SecretString::from),
            oauth_authorize_url: env.url(
                "KLAVIYO_OAUTH_AUTHORIZE_URL",
                "https://www.klaviyo.com/oauth/authorize",
            )?,
            budget_per_sec: env.number("KLAVIYO_BUDGET_PER_SEC", 40)?,
            budget_per_min: env.number("KLAVIYO_BUDGET_PER_MIN", 600)?,
            predictive_budget_per_sec: env.number("KLAVIYO_PREDICTIVE_BUDGET_PER_SEC", 5)?,
            predictive_budget_per_min: env.number("KLAVIYO_PREDICTIVE_BUDGET_PER_MIN", 120)?,
        };

        let resolve = ResolveSettings {
            klaviyo_wait_ms: env.number("RESOLVE_KLAVIYO_WAIT_MS", 600)?,
            limit_per_ip_per_min: env.number("RESOLVE_LIMIT_PER_IP_PER_MIN", 300)?,
            limit_per_store_per_sec: env.number("RESOLVE_LIMIT_PER_STORE_PER_SEC", 2000)?,
            trusted_proxy_hops: env.number("TRUSTED_PROXY_HOPS", 0)?,
        };

        let admin_frame_ancestors = env
            .get("ADMIN_FRAME_ANCESTORS")
            .map(|list| {
                list.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|origin| {
                        parse_base_url(origin)
                            .ok()
                            .filter(|u| u.path() == "/" || u.path().is_empty())
                            .map(|u| u.origin().ascii_serialization())
                            .ok_or_else(|| err("ADMIN_FRAME_ANCESTORS", format!("has {origin:?}, which is not an origin like https://example.com")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let log_format = match env.get("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "LOG_FORMAT",
                    format!("must be pretty or json, got {other:?}"),
                ));
            }
        };

        Ok(Self {
            app_url: env.url("APP_URL", "http://127.0.0.1:8080")?,
            listen_addr,
            database_url: env.get("DATABASE_URL").map(SecretString::from),
            keyring: std::sync::Arc::new(Keyring::new(active, old)),
            bigcommerce,
            klaviyo,
            algolia_api_url: env.optional_url("ALGOLIA_API_URL")?,
            resolve,
            admin_frame_ancestors,
            pg_bin_dir: env.get("PG_BIN_DIR").map(PathBuf::from),
            log_format,
        })
    }

    /// `APP_URL/auth`: must equal the auth callback registered in the Developer Portal, byte for byte.
    pub fn auth_callback_url(&self) -> String {
        join(&self.app_url, "/auth")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn with(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut map: HashMap<String, String> = [
            ("BC_CLIENT_ID", "cid"),
            ("BC_CLIENT_SECRET", "csecret"),
            ("ENCRYPTION_KEY", KEY),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            map.insert(k.to_string(), v.to_string());
        }
        Settings::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = with(&[]).unwrap();
        assert_eq!(s.app_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.auth_callback_url(), "http://127.0.0.1:8080/auth");
        assert_eq!(s.listen_addr.to_string(), "127.0.0.1:8080");
        assert!(s.database_url.is_none());
        assert_eq!(
            join(&s.bigcommerce.login_url, "/oauth2/token"),
            "https://login.bigcommerce.com/oauth2/token"
        );
        assert_eq!(s.klaviyo.revision, "2026-10-15");
        assert_eq!(
            (s.klaviyo.budget_per_sec, s.klaviyo.budget_per_min),
            (40, 600)
        );
        assert_eq!(s.resolve.klaviyo_wait_ms, 600);
        assert_eq!(s.log_format, LogFormat::Pretty);
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for name in ["BC_CLIENT_ID", "BC_CLIENT_SECRET", "ENCRYPTION_KEY"] {
            let e = with(&[(name, "")]).unwrap_err();
            assert_eq!(e.variable, name);
            let line = e.to_string();
            assert!(line.contains(name) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn malformed_values_are_named() {
        for (name, value) in [
            ("ENCRYPTION_KEY", "short"),
            ("ENCRYPTION_KEYS_OLD", "AAAA"),
            ("APP_URL", "not a url"),
            ("APP_URL", "ftp://x.example"),
            ("LISTEN_ADDR", "localhost"),
            ("KLAVIYO_BUDGET_PER_SEC", "-1"),
            ("LOG_FORMAT", "xml"),
            ("ADMIN_FRAME_ANCESTORS", "https://a.example/path"),
            ("KLAVIYO_CLIENT_ID", "only-one-half"),
        ] {
            let e = with(&[(name, value)]).unwrap_err();
            let expected = if name == "KLAVIYO_CLIENT_ID" {
                "KLAVIYO_CLIENT_SECRET"
            } else {
                name
            };
            assert_eq!(e.variable, expected, "{name}={value}");
        }
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let s = with(&[]).unwrap();
        let dump = format!("{s:?}");
        assert!(!dump.contains("csecret"));
        assert!(!dump.contains(KEY));
    }

    #[test]
    fn frame_ancestors_are_normalized_origins() {
        let s = with(&[(
            "ADMIN_FRAME_ANCESTORS",
            "http://127.0.0.1:9000/, https://cp.example",
        )])
        .unwrap();
        assert_eq!(
            s.admin_frame_ancestors,
            vec!["http://127.0.0.1:9000", "https://cp.example"]
        );
    }
}
