//! The resolver: identity → Klaviyo profile → rule contexts → Algolia secured key. Shared by the storefront's
//! `POST /api/v1/resolve` and the admin preview.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use moka::future::Cache;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::PgPool;

use crate::algolia::secured_key;
use crate::crypto::Keyring;
use crate::db;
use crate::domain::{ProfileId, StoreHash};
use crate::klaviyo::client::KlaviyoAuth;
use crate::klaviyo::credentials::{self, StoreCredentials};
use crate::klaviyo::oauth::KlaviyoOAuth;
use crate::klaviyo::profiles::Fields;
use crate::personalization::identity::Identity;
use crate::personalization::lookup::{
    CacheKey, Lookup, LookupError, LookupKey, ProfileAnswer, ProfileLookups,
};
use crate::personalization::rules::{self, Profile, ProfileNeeds, Rule};

/// Store settings are re-read at least this often (and at once after a change made through this process).
const CONFIG_TTL: Duration = Duration::from_secs(30);
pub const SECURED_KEY_LIFETIME: i64 = 3600;

pub struct AlgoliaConfig {
    pub app_id: String,
    pub index: String,
    pub search_key: SecretString,
}

/// Everything a resolve needs about one installed store, unsealed once and cached briefly.
pub struct StoreConfig {
    pub store_id: i64,
    pub store_hash: StoreHash,
    pub rules: Vec<Rule>,
    pub needs: ProfileNeeds,
    pub klaviyo: Option<StoreCredentials>,
    pub algolia: Option<AlgoliaConfig>,
    pub origins: HashSet<String>,
}

#[derive(Debug, Serialize)]
pub struct AlgoliaAnswer {
    pub app_id: String,
    pub index: String,
    pub api_key: String,
    pub valid_until: i64,
}

#[derive(Debug, Serialize)]
pub struct ResolveAnswer {
    pub profile_id: Option<ProfileId>,
    pub source: &'static str,
    pub rule_contexts: Vec<String>,
    pub user_token: Option<ProfileId>,
    pub algolia: Option<AlgoliaAnswer>,
    pub ttl: i64,
    pub degraded: bool,
}

pub struct Resolver {
    pool: PgPool,
    keyring: Arc<Keyring>,
    oauth: Option<Arc<KlaviyoOAuth>>,
    pub lookups: Arc<ProfileLookups>,
    configs: Cache<StoreHash, Option<Arc<StoreConfig>>>,
    origins: Cache<(), Arc<HashSet<String>>>,
    klaviyo_wait: Duration,
}

fn fields_for(needs: ProfileNeeds) -> Fields {
    Fields {
        properties: needs.properties,
        location: needs.location,
        predictive: needs.predictive,
    }
}

impl Resolver {
    pub fn new(
        pool: PgPool,
        keyring: Arc<Keyring>,
        oauth: Option<Arc<KlaviyoOAuth>>,
        lookups: Arc<ProfileLookups>,
        klaviyo_wait: Duration,
    ) -> Self {
        Self {
            pool,
            keyring,
            oauth,
            lookups,
            configs: Cache::builder()
                .max_capacity(50_000)
                .time_to_live(CONFIG_TTL)
                .build(),
            origins: Cache::builder()
                .max_capacity(1)
                .time_to_live(CONFIG_TTL)
                .build(),
            klaviyo_wait,
        }
    }

    /// The installed store's configuration, or None for an unknown or uninstalled store.
    pub async fn store(&self, store_hash: &StoreHash) -> anyhow::Result<Option<Arc<StoreConfig>>> {
        // The hot path is a hit: a plain read, without building the loader future.
        if let Some(config) = self.configs.get(store_hash).await {
            return Ok(config);
        }
        let hash = store_hash.clone();
        self.configs
            .try_get_with(
                hash.clone(),
                async move { self.load_store(&hash, false).await },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }

    async fn load_store(
        &self,
        store_hash: &StoreHash,
        force_refresh: bool,
    ) -> anyhow::Result<Option<Arc<StoreConfig>>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("Failed to get a connection")?;
        let Some(store) = db::stores::find_installed(&mut conn, store_hash).await? else {
            return Ok(None);
        };
        drop(conn);
        let summary = db::settings::summary(&self.pool, store.id).await?;
        let rules = rules::parse_rules(&summary.rules).unwrap_or_else(|error| {
            tracing::error!(error = %error, "stored rules do not parse; using none");
            Vec::new()
        });
        let klaviyo = match credentials::load(
            &self.pool,
            &self.keyring,
            self.oauth.as_deref(),
            store.id,
            store_hash,
            force_refresh,
        )
        .await
        {
            Ok(credentials) => credentials,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "Klaviyo credentials unusable; answering without Klaviyo");
                None
            }
        };
        let algolia = match db::settings::algolia_secrets(&self.pool, store.id).await? {
            Some(secrets) => Some(AlgoliaConfig {
                search_key: self
                    .keyring
                    .open(&secrets.key, &db::settings::aad("algolia_key", store_hash))
                    .context("Failed to unseal the Algolia key")?,
                app_id: secrets.app_id,
                index: secrets.index,
            }),
            None => None,
        };
        let origins = db::storefront::origins(&self.pool, store.id)
            .await?
            .into_iter()
            .collect();
        Ok(Some(Arc::new(StoreConfig {
            store_id: store.id,
            store_hash: store_hash.clone(),
            needs: rules::profile_needs(&rules),
            rules,
            klaviyo,
            algolia,
            origins,
        })))
    }

    /// Every installed store's storefront origins (CORS preflights carry no body, so no store).
    pub async fn all_origins(&self) -> anyhow::Result<Arc<HashSet<String>>> {
        self.origins
            .try_get_with((), async {
                let list = db::storefront::all_installed_origins(&self.pool).await?;
                anyhow::Ok(Arc::new(list.into_iter().collect()))
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }

    /// Settings or origins changed: read them again on the next request.
    pub async fn store_changed(&self, store_hash: &StoreHash) {
        self.configs.invalidate(store_hash).await;
        self.origins.invalidate(&()).await;
    }

    /// Klaviyo credentials changed or the store left: its cached profiles go too.
    pub async fn klaviyo_changed(&self, store_hash: &StoreHash, store_id: i64) {
        self.store_changed(store_hash).await;
        self.lookups.forget_store(store_id);
    }

    /// Looks the shopper up, waiting at most `RESOLVE_KLAVIYO_WAIT_MS`; a slower lookup finishes in the
    /// background and fills the cache for the next request.
    async fn profile(
        &self,
        config: &StoreConfig,
        credentials: &StoreCredentials,
        key: LookupKey,
        deadline: Instant,
    ) -> Result<ProfileAnswer, LookupError> {
        let cache_key = CacheKey {
            store_id: config.store_id,
            generation: credentials.generation,
            fields: fields_for(config.needs),
            key,
        };
        if let Some(answer) = self.lookups.cached(&cache_key).await {
            metrics::counter!("profile_cache_total", "result" => "hit").increment(1);
            return Ok(answer);
        }
        metrics::counter!("profile_cache_total", "result" => "miss").increment(1);
        let lookups = self.lookups.clone();
        let lookup = Lookup {
            key: cache_key,
            auth: credentials.auth.clone(),
        };
        let task = tokio::spawn(async move { lookups.lookup(lookup).await });
        match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), task).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(error))) => Err((*error).clone()),
            Ok(Err(_)) => Err(LookupError::Unavailable("the lookup task failed".into())),
            Err(_) => Err(LookupError::Unavailable(
                "slower than the resolve budget".into(),
            )),
        }
    }

    #[tracing::instrument(name = "Resolve shopper", skip_all, fields(store_hash = %config.store_hash, source = identity.source()))]
    pub async fn resolve(&self, config: &StoreConfig, identity: Identity) -> ResolveAnswer {
        let deadline = Instant::now() + self.klaviyo_wait;
        let source = identity.source();
        let (customer_group, key) = match identity {
            Identity::Customer {
                email,
                customer_group,
            } => (customer_group, Some(LookupKey::Email(email))),
            Identity::Exchange(id) => (None, Some(LookupKey::Exchange(id))),
            Identity::Anonymous => (None, None),
        };
        let (answer, degraded, outcome) = match (key, &config.klaviyo) {
            (None, _) => (Ok(ProfileAnswer::Missing), false, "anonymous"),
            (Some(_), None) => (Err(()), false, "klaviyo_not_configured"),
            (Some(key), Some(credentials)) => {
                let mut result = self
                    .profile(config, credentials, key.clone(), deadline)
                    .await;
                if matches!(result, Err(LookupError::Rejected(401)))
                    && matches!(credentials.auth, KlaviyoAuth::OAuth(_))
                {
                    // One refresh on 401 for OAuth stores, then one retry within the same wait.
                    if let Ok(Some(fresh)) = self.load_store(&config.store_hash, true).await {
                        self.configs
                            .insert(config.store_hash.clone(), Some(fresh.clone()))
                            .await;
                        if let Some(credentials) = &fresh.klaviyo {
                            result = self.profile(&fresh, credentials, key, deadline).await;
                        }
                    }
                }
                match result {
                    Ok(ProfileAnswer::Found(p)) => (Ok(ProfileAnswer::Found(p)), false, "profile"),
                    Ok(ProfileAnswer::Missing) => (Ok(ProfileAnswer::Missing), false, "no_profile"),
                    Err(error) => {
                        tracing::info!(error = %error, "answering degraded");
                        (Err(()), true, "degraded")
                    }
                }
            }
        };
        metrics::counter!("resolve_outcomes_total", "outcome" => outcome).increment(1);
        let profile_state = match &answer {
            Ok(ProfileAnswer::Found(p)) => Profile::Found(&p.attributes),
            Ok(ProfileAnswer::Missing) => Profile::Missing,
            Err(()) => Profile::Unknown,
        };
        let contexts: Vec<String> =
            rules::evaluate(&config.rules, profile_state, customer_group.as_deref())
                .into_iter()
                .map(|c| c.to_string())
                .collect();
        let profile_id = match &answer {
            Ok(ProfileAnswer::Found(p)) => Some(p.id.clone()),
            _ => None,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let valid_until = now + SECURED_KEY_LIFETIME;
        let (algolia, rule_contexts) = match &config.algolia {
            Some(a) => {
                let key = secured_key::for_shopper(
                    a.search_key.expose_secret(),
                    &a.index,
                    &contexts,
                    profile_id.as_ref().map(ProfileId::as_str),
                    valid_until,
                );
                let answer = AlgoliaAnswer {
                    app_id: a.app_id.clone(),
                    index: a.index.clone(),
                    api_key: key.key,
                    valid_until,
                };
                (Some(answer), key.contexts)
            }
            None => (None, contexts),
        };
        let ttl = if degraded {
            30
        } else if profile_id.is_some() {
            900
        } else {
            300
        };
        ResolveAnswer {
            user_token: profile_id.clone(),
            profile_id,
            source,
            rule_contexts,
            algolia,
            ttl: ttl.min(valid_until - 60 - now),
            degraded,
        }
    }
}
