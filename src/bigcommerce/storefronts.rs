//! Store information, channels and sites (research/bigcommerce.md §5): which storefronts get a script, and
//! which origins may call the resolve endpoint.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use crate::bigcommerce::client::{BcApiError, BigCommerceClient, Deadline};
use crate::domain::StoreHash;

/// The Scripts API caps an app at 10 scripts, so at most 10 storefronts get one.
pub const MAX_SCRIPT_CHANNELS: usize = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct Channel {
    pub id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Deserialize)]
struct SiteUrl {
    url: String,
}

#[derive(Debug, Deserialize)]
struct Site {
    channel_id: i64,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    urls: Vec<SiteUrl>,
}

#[derive(Debug, Deserialize)]
struct StoreInfo {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    secure_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data<T> {
    data: T,
}

/// Active or prelaunch storefront channels, the first 10 by id.
pub fn script_channels(mut channels: Vec<Channel>) -> Vec<Channel> {
    channels
        .retain(|c| c.kind == "storefront" && matches!(c.status.as_str(), "active" | "prelaunch"));
    channels.sort_by_key(|c| c.id);
    channels.truncate(MAX_SCRIPT_CHANNELS);
    channels
}

/// `scheme://host[:port]` of a URL, or of a bare domain (taken as https). None for anything else.
pub fn origin_of(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(())?;
    url.host_str()?;
    Some(url.origin().ascii_serialization())
}

pub async fn channels(
    client: &BigCommerceClient,
    store_hash: &StoreHash,
    token: &SecretString,
    deadline: Deadline,
) -> Result<Vec<Channel>, BcApiError> {
    let page: Option<Data<Vec<Channel>>> = client
        .call(
            store_hash,
            token,
            Method::GET,
            "/v3/channels?limit=250",
            None,
            deadline,
        )
        .await?;
    Ok(page.map(|p| p.data).unwrap_or_default())
}

/// Every storefront origin of the store: its primary and secure URLs, and each listed channel's site URLs.
/// Fails only when neither source could be read.
pub async fn origins(
    client: &BigCommerceClient,
    store_hash: &StoreHash,
    token: &SecretString,
    storefront_channel_ids: &[i64],
    deadline: Deadline,
) -> Result<Vec<(String, Option<i64>)>, BcApiError> {
    let info: Result<Option<StoreInfo>, _> = client
        .call(store_hash, token, Method::GET, "/v2/store", None, deadline)
        .await;
    let sites: Result<Option<Data<Vec<Site>>>, _> = client
        .call(
            store_hash,
            token,
            Method::GET,
            "/v3/sites?limit=250",
            None,
            deadline,
        )
        .await;
    let mut origins = Vec::new();
    let info_error = match info {
        Ok(info) => {
            let info = info.unwrap_or(StoreInfo {
                domain: None,
                secure_url: None,
            });
            origins.extend(
                [info.secure_url, info.domain]
                    .into_iter()
                    .flatten()
                    .filter_map(|u| origin_of(&u))
                    .map(|o| (o, None)),
            );
            None
        }
        Err(e) => Some(e),
    };
    let sites_error = match sites {
        Ok(sites) => {
            for site in sites.map(|s| s.data).unwrap_or_default() {
                if !storefront_channel_ids.contains(&site.channel_id) {
                    continue;
                }
                let urls = site
                    .url
                    .into_iter()
                    .chain(site.urls.into_iter().map(|u| u.url));
                origins.extend(
                    urls.filter_map(|u| origin_of(&u))
                        .map(|o| (o, Some(site.channel_id))),
                );
            }
            None
        }
        Err(e) => Some(e),
    };
    origins.sort();
    origins.dedup_by(|a, b| a.0 == b.0);
    match (info_error, sites_error) {
        (Some(e), Some(_)) => Err(e),
        _ => Ok(origins),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: i64, kind: &str, status: &str) -> Channel {
        Channel {
            id,
            name: format!("c{id}"),
            kind: kind.into(),
            status: status.into(),
        }
    }

    #[test]
    fn only_active_or_prelaunch_storefronts_the_first_ten_by_id() {
        let mut all: Vec<Channel> = (1..=14)
            .rev()
            .map(|id| channel(id, "storefront", "active"))
            .collect();
        all.push(channel(0, "storefront", "prelaunch"));
        all.push(channel(100, "marketplace", "active"));
        all.push(channel(101, "storefront", "inactive"));
        all.push(channel(102, "storefront", "archived"));
        let chosen: Vec<i64> = script_channels(all).iter().map(|c| c.id).collect();
        assert_eq!(chosen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn origins_are_normalized() {
        assert_eq!(
            origin_of("https://store-abc.mybigcommerce.com/").as_deref(),
            Some("https://store-abc.mybigcommerce.com")
        );
        assert_eq!(
            origin_of("www.shop.example").as_deref(),
            Some("https://www.shop.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9000/shop").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            origin_of("HTTPS://Shop.Example").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(origin_of(""), None);
        assert_eq!(origin_of("javascript:alert(1)"), None);
    }
}
