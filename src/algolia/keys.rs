//! Checking a merchant's Algolia search key: `GET /1/keys/{key}` authenticated with that same key returns its
//! ACL and index restrictions (research/klaviyo-algolia.md B5).

use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// ACLs that let a key change data or settings: such a key must never go near a storefront.
pub const WRITE_ACLS: &[&str] = &["addObject", "deleteObject", "deleteIndex", "editSettings"];

#[derive(Debug, Deserialize)]
pub struct KeyInfo {
    #[serde(default)]
    pub acl: Vec<String>,
    #[serde(default)]
    pub indexes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlgoliaError {
    #[error("Algolia refused the key (HTTP {status}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected {
        status: u16,
        message: Option<String>,
    },
    #[error("Algolia could not be reached: {0}")]
    Unavailable(String),
}

#[derive(Clone)]
pub struct AlgoliaClient {
    http: reqwest::Client,
    /// `ALGOLIA_API_URL`, for the sandbox and tests; else each app's own DSN host.
    base_override: Option<url::Url>,
}

pub fn valid_app_id(app_id: &str) -> bool {
    (1..=64).contains(&app_id.len()) && app_id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Index names may hold most characters; ours end up in `restrictIndices` (comma-separated) and URLs.
pub fn valid_index(index: &str) -> bool {
    (1..=256).contains(&index.len()) && !index.chars().any(|c| c.is_control() || c == ',')
}

/// `*` patterns in a key's `indexes` restriction, as Algolia documents them (prefix*, *suffix, *infix*).
fn pattern_covers(pattern: &str, index: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        _ if pattern == "*" => true,
        (Some(rest), _) if rest.ends_with('*') => index.contains(&rest[..rest.len() - 1]),
        (Some(suffix), _) => index.ends_with(suffix),
        (None, Some(prefix)) => index.starts_with(prefix),
        (None, None) => pattern == index,
    }
}

/// Why a key is not fit for a storefront, if it is not.
pub fn unfit_for_storefront(info: &KeyInfo, index: &str) -> Option<String> {
    if let Some(acl) = info.acl.iter().find(|a| WRITE_ACLS.contains(&a.as_str())) {
        return Some(format!("This key can {acl}: use a search-only key"));
    }
    if !info.acl.iter().any(|a| a == "search") {
        return Some("This key cannot search: give it the search ACL".into());
    }
    if !info.indexes.is_empty() && !info.indexes.iter().any(|p| pattern_covers(p, index)) {
        return Some(format!(
            "This key is restricted to {} and cannot search {index:?}",
            info.indexes.join(", ")
        ));
    }
    None
}

impl AlgoliaClient {
    pub fn new(base_override: Option<url::Url>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the Algolia HTTP client")?;
        Ok(Self {
            http,
            base_override,
        })
    }

    fn base(&self, app_id: &str) -> String {
        match &self.base_override {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("https://{}-dsn.algolia.net", app_id.to_ascii_lowercase()),
        }
    }

    #[tracing::instrument(name = "Algolia key lookup", skip_all)]
    pub async fn key_info(
        &self,
        app_id: &str,
        key: &SecretString,
    ) -> Result<KeyInfo, AlgoliaError> {
        let mut url = url::Url::parse(&format!("{}/1/keys/", self.base(app_id)))
            .map_err(|e| AlgoliaError::Unavailable(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|_| AlgoliaError::Unavailable("bad base URL".into()))?
            .pop_if_empty()
            .push(key.expose_secret());
        let response = self
            .http
            .get(url)
            .header("x-algolia-application-id", app_id)
            .header("x-algolia-api-key", key.expose_secret())
            .send()
            .await
            .map_err(|e| {
                AlgoliaError::Unavailable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "unreachable".into()
                })
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|_| AlgoliaError::Unavailable("the answer was cut off".into()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("message")?
                        .as_str()
                        .map(|m| m.chars().take(200).collect())
                });
            return Err(AlgoliaError::Rejected {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body)
            .map_err(|_| AlgoliaError::Unavailable("an unreadable answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(acl: &[&str], indexes: &[&str]) -> KeyInfo {
        KeyInfo {
            acl: acl.iter().map(|s| s.to_string()).collect(),
            indexes: indexes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn search_only_keys_covering_the_index_are_fit() {
        assert_eq!(
            unfit_for_storefront(&info(&["search"], &[]), "products"),
            None
        );
        assert_eq!(
            unfit_for_storefront(&info(&["search", "browse"], &["products"]), "products"),
            None
        );
        for pattern in ["prod*", "*ucts", "*odu*", "*"] {
            assert_eq!(
                unfit_for_storefront(&info(&["search"], &[pattern]), "products"),
                None,
                "{pattern}"
            );
        }
    }

    #[test]
    fn write_keys_keys_without_search_and_other_indexes_are_not() {
        for acl in WRITE_ACLS {
            let why = unfit_for_storefront(&info(&["search", acl], &[]), "products").unwrap();
            assert!(why.contains("use a search-only key"), "{why}");
        }
        assert!(unfit_for_storefront(&info(&["browse"], &[]), "products").is_some());
        assert!(
            unfit_for_storefront(&info(&["search"], &["orders", "prod"]), "products").is_some()
        );
        assert!(unfit_for_storefront(&info(&["search"], &["x*"]), "products").is_some());
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_app_id("LATENCY") && valid_app_id("ABC123XYZ0"));
        assert!(!valid_app_id("") && !valid_app_id("evil.com/x") && !valid_app_id("a-b"));
        assert!(valid_index("products") && valid_index("prod_en-US v2"));
        assert!(!valid_index("") && !valid_index("a,b") && !valid_index("a\nb"));
    }
}
