//! Storefront-script reconciliation through the Scripts API (research/bigcommerce.md §3, DESIGN.md
//! "Storefront script behaviour"): one `src` script per active or prelaunch storefront channel.
//!
//! - Install and repair create or update every channel's script (found by the stored uuid, else by name).
//! - `/load` only creates scripts for channels that never had one, and reports drift: a script the merchant
//!   deleted or re-categorized in Script Manager. Only repair restores it.
//! - A Scripts API failure never fails the install: it is recorded per channel, shown on the admin page, and
//!   retried at the next `/load` (a channel without a script is one that "never had one").
//! - All BigCommerce retries inside one incoming request share a 5 s budget.

use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::bigcommerce::client::{BcApiError, BigCommerceClient, Deadline};
use crate::bigcommerce::storefronts::{self, Channel};
use crate::db::storefront::{self as store_db, ChannelRow};
use crate::domain::StoreHash;

pub const SCRIPT_NAME: &str = "Profile Bridge";
pub const BIGCOMMERCE_BUDGET: Duration = Duration::from_secs(5);
pub const CONSENT_CATEGORIES: [&str; 4] = ["essential", "functional", "analytics", "targeting"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Install,
    Load,
    Repair,
}

#[derive(Debug, Clone, Deserialize)]
struct Script {
    uuid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    channel_id: Option<i64>,
    #[serde(default)]
    consent_category: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Data<T> {
    data: T,
}

pub struct ScriptReconciler {
    pub client: BigCommerceClient,
    pub pool: PgPool,
    /// `{APP_URL}/storefront.js`
    pub script_url: String,
    pub script_version: String,
}

impl ScriptReconciler {
    fn desired(&self, store_hash: &StoreHash, channel_id: i64, consent_category: &str) -> Value {
        json!({
            "name": SCRIPT_NAME,
            "description": "Personalized search for each shopper (Klaviyo profile to Algolia rule contexts).",
            "kind": "src",
            "src": format!("{}?v={}&store={store_hash}", self.script_url, self.script_version),
            "load_method": "defer",
            "location": "footer",
            "visibility": "storefront",
            "auto_uninstall": true,
            "consent_category": consent_category,
            "enabled": true,
            "channel_id": channel_id,
        })
    }

    /// Brings the store's scripts to the wanted state for `mode`. Returns warnings for the merchant; fails only
    /// when our own database does.
    #[tracing::instrument(name = "Reconcile storefront scripts", skip_all, fields(store_hash = %store_hash, ?mode))]
    pub async fn reconcile(
        &self,
        store_id: i64,
        store_hash: &StoreHash,
        token: &SecretString,
        mode: Mode,
    ) -> anyhow::Result<Vec<String>> {
        let deadline = Deadline::after(BIGCOMMERCE_BUDGET);
        let channels = match storefronts::channels(&self.client, store_hash, token, deadline).await
        {
            Ok(all) => storefronts::script_channels(all),
            Err(error) => {
                let message = format!("Could not list storefront channels: {}", error.summary());
                tracing::warn!(error = ?error, "channel listing failed");
                store_db::set_sync_error(&self.pool, store_id, Some(&message)).await?;
                return Ok(vec![message]);
            }
        };
        let mut warnings = Vec::new();
        let channel_ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
        match storefronts::origins(&self.client, store_hash, token, &channel_ids, deadline).await {
            Ok(origins) => {
                store_db::replace_origins(&self.pool, store_id, &origins).await?;
                store_db::set_sync_error(&self.pool, store_id, None).await?;
            }
            Err(error) => {
                let message = format!(
                    "Could not read the storefront addresses: {}",
                    error.summary()
                );
                store_db::set_sync_error(&self.pool, store_id, Some(&message)).await?;
                warnings.push(message);
            }
        }

        let known: Vec<ChannelRow> = store_db::channels(&self.pool, store_id).await?;
        // Every mode lists the scripts: /load needs the list to see drift.
        let scripts = match self.list_scripts(store_hash, token, deadline).await {
            Ok(scripts) => scripts,
            Err(error) => {
                for channel in &channels {
                    let previous = known.iter().find(|k| k.channel_id == channel.id);
                    // /load leaves channels that have a script as they were: nothing was attempted for them.
                    if mode == Mode::Load && previous.is_some_and(|p| p.script_uuid.is_some()) {
                        continue;
                    }
                    let row = ChannelRow {
                        channel_id: channel.id,
                        name: channel.name.clone(),
                        script_uuid: previous.and_then(|p| p.script_uuid.clone()),
                        drift: previous.is_some_and(|p| p.drift),
                        last_error: Some(format!("Could not read scripts: {}", error.summary())),
                    };
                    store_db::save_channel(&self.pool, store_id, &row).await?;
                }
                warnings.push(format!(
                    "Could not read the storefront scripts: {}",
                    error.summary()
                ));
                return Ok(warnings);
            }
        };
        let consent = store_db::consent_category(&self.pool, store_id).await?;

        for channel in &channels {
            let previous = known.iter().find(|k| k.channel_id == channel.id);
            let found = previous
                .and_then(|p| p.script_uuid.as_deref())
                .and_then(|uuid| scripts.iter().find(|s| s.uuid == uuid))
                .or_else(|| {
                    scripts
                        .iter()
                        .find(|s| s.name == SCRIPT_NAME && s.channel_id == Some(channel.id))
                });
            let had_one = previous.is_some_and(|p| p.script_uuid.is_some());
            let row = if mode == Mode::Load && had_one {
                let drift = match found {
                    None => true,
                    Some(s) => {
                        s.consent_category.as_deref() != Some(consent.as_str())
                            || s.enabled == Some(false)
                    }
                };
                ChannelRow {
                    channel_id: channel.id,
                    name: channel.name.clone(),
                    script_uuid: found
                        .map(|s| s.uuid.clone())
                        .or_else(|| previous.and_then(|p| p.script_uuid.clone())),
                    drift,
                    last_error: previous.and_then(|p| p.last_error.clone()),
                }
            } else {
                self.ensure(store_hash, token, channel, found, &consent, deadline)
                    .await
            };
            if let Some(error) = &row.last_error {
                warnings.push(format!("{}: {error}", channel.name));
            } else if row.drift {
                warnings.push(format!(
                    "{}: the script was removed or changed in Script Manager; use Repair to restore it",
                    channel.name
                ));
            }
            store_db::save_channel(&self.pool, store_id, &row).await?;
        }
        Ok(warnings)
    }

    /// Creates or updates one channel's script, returning the channel's new state.
    async fn ensure(
        &self,
        store_hash: &StoreHash,
        token: &SecretString,
        channel: &Channel,
        found: Option<&Script>,
        consent: &str,
        deadline: Deadline,
    ) -> ChannelRow {
        let body = self.desired(store_hash, channel.id, consent);
        let outcome: Result<Option<Data<Script>>, BcApiError> = match found {
            Some(script) => {
                let path = format!("/v3/content/scripts/{}", script.uuid);
                self.client
                    .call(store_hash, token, Method::PUT, &path, Some(&body), deadline)
                    .await
            }
            None => {
                self.client
                    .call(
                        store_hash,
                        token,
                        Method::POST,
                        "/v3/content/scripts",
                        Some(&body),
                        deadline,
                    )
                    .await
            }
        };
        match outcome {
            Ok(Some(created)) => ChannelRow {
                channel_id: channel.id,
                name: channel.name.clone(),
                script_uuid: Some(created.data.uuid),
                drift: false,
                last_error: None,
            },
            Ok(None) => ChannelRow {
                channel_id: channel.id,
                name: channel.name.clone(),
                script_uuid: found.map(|s| s.uuid.clone()),
                drift: found.is_none(),
                last_error: found
                    .is_none()
                    .then(|| "BigCommerce answered without the script".into()),
            },
            Err(error) => {
                tracing::warn!(channel_id = channel.id, error = ?error, "script create/update failed");
                ChannelRow {
                    channel_id: channel.id,
                    name: channel.name.clone(),
                    script_uuid: found.map(|s| s.uuid.clone()),
                    drift: false,
                    last_error: Some(error.summary()),
                }
            }
        }
    }

    async fn list_scripts(
        &self,
        store_hash: &StoreHash,
        token: &SecretString,
        deadline: Deadline,
    ) -> Result<Vec<Script>, BcApiError> {
        // Only this app's API account sees its scripts, and it may own at most 10: one page is enough.
        let page: Option<Data<Vec<Script>>> = self
            .client
            .call(
                store_hash,
                token,
                Method::GET,
                "/v3/content/scripts?limit=250",
                None,
                deadline,
            )
            .await?;
        Ok(page.map(|p| p.data).unwrap_or_default())
    }
}
