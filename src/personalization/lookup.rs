//! Profile lookups: a bounded in-memory cache (15 min for a profile, 5 min for "no profile"), one Klaviyo call
//! for many concurrent identical misses (moka's `try_get_with`), and batching of concurrent misses of different
//! shoppers of one store into one `any(email,[…])` call of up to 100 emails. Exchange ids allow only `equals`, so
//! each is one call. Every call draws from the store's budget first; without budget the shopper is answered
//! degraded at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::policy::Expiry;
use tokio::sync::oneshot;

use crate::domain::{Email, ExchangeId};
use crate::klaviyo::client::{KlaviyoAuth, KlaviyoClient, KlaviyoError};
use crate::klaviyo::profiles::{
    Fields, Filter, FoundProfile, MAX_BATCH, parse_profiles, profiles_path,
};
use crate::personalization::budget::{Budgets, Refusal};

pub const POSITIVE_TTL: Duration = Duration::from_secs(15 * 60);
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5 * 60);
const CACHE_CAPACITY: u64 = 200_000;
/// Klaviyo calls get 1 s to connect and 2 s in all (the resolve endpoint waits less; the rest fills the cache).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LookupKey {
    Email(Email),
    Exchange(ExchangeId),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub store_id: i64,
    /// Changes with the store's Klaviyo credentials: another account's answers are never served.
    pub generation: i64,
    pub fields: Fields,
    pub key: LookupKey,
}

#[derive(Debug, Clone)]
pub enum ProfileAnswer {
    Found(Arc<FoundProfile>),
    Missing,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error("no Klaviyo budget: {0:?}")]
    Refused(Refusal),
    #[error("Klaviyo throttled the call")]
    Throttled,
    #[error("Klaviyo refused the credentials (HTTP {0})")]
    Rejected(u16),
    #[error("Klaviyo is unavailable: {0}")]
    Unavailable(String),
}

struct TtlByAnswer;

impl Expiry<CacheKey, ProfileAnswer> for TtlByAnswer {
    fn expire_after_create(
        &self,
        _: &CacheKey,
        value: &ProfileAnswer,
        _: Instant,
    ) -> Option<Duration> {
        Some(match value {
            ProfileAnswer::Found(_) => POSITIVE_TTL,
            ProfileAnswer::Missing => NEGATIVE_TTL,
        })
    }
}

type Reply = oneshot::Sender<Result<ProfileAnswer, LookupError>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BatchKey {
    store_id: i64,
    generation: i64,
    fields: Fields,
}

/// One gathering round: the queued shoppers, the credentials to ask with, and the round's id.
type Round = (Vec<Pending>, KlaviyoAuth, u64);

struct Pending {
    email: Email,
    reply: Reply,
}

pub struct ProfileLookups {
    klaviyo: KlaviyoClient,
    budgets: Arc<Budgets>,
    cache: Cache<CacheKey, ProfileAnswer>,
    /// Queued shoppers per batch key, with the id of the gathering round they belong to.
    batches: Mutex<HashMap<BatchKey, Round>>,
    rounds: std::sync::atomic::AtomicU64,
}

pub struct Lookup {
    pub key: CacheKey,
    pub auth: KlaviyoAuth,
}

impl ProfileLookups {
    pub fn new(klaviyo: KlaviyoClient, budgets: Arc<Budgets>) -> Arc<Self> {
        Arc::new(Self {
            klaviyo,
            budgets,
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(TtlByAnswer)
                .support_invalidation_closures()
                .build(),
            batches: Mutex::new(HashMap::new()),
            rounds: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub async fn cached(&self, key: &CacheKey) -> Option<ProfileAnswer> {
        self.cache.get(key).await
    }

    /// The answer, from the cache or from Klaviyo; concurrent callers for one key share one call.
    pub async fn lookup(
        self: &Arc<Self>,
        lookup: Lookup,
    ) -> Result<ProfileAnswer, Arc<LookupError>> {
        let this = self.clone();
        let key = lookup.key.clone();
        self.cache
            .try_get_with(key, async move { this.fetch(lookup).await })
            .await
    }

    /// Forgets a store's cached profiles (credentials changed, uninstall).
    pub fn forget_store(&self, store_id: i64) {
        if let Err(error) = self
            .cache
            .invalidate_entries_if(move |key, _| key.store_id == store_id)
        {
            tracing::warn!(error = %error, "could not invalidate cached profiles");
        }
        self.budgets.forget(store_id);
    }

    async fn fetch(self: Arc<Self>, lookup: Lookup) -> Result<ProfileAnswer, LookupError> {
        let key = lookup.key;
        match key.key {
            LookupKey::Exchange(id) => {
                let path = profiles_path(&Filter::Exchange(&id), key.fields);
                let found = self
                    .call(key.store_id, key.fields.predictive, &lookup.auth, &path)
                    .await?;
                Ok(found
                    .into_iter()
                    .next()
                    .map(|p| ProfileAnswer::Found(Arc::new(p)))
                    .unwrap_or(ProfileAnswer::Missing))
            }
            LookupKey::Email(email) => {
                let (reply, answer) = oneshot::channel();
                self.enqueue(
                    BatchKey {
                        store_id: key.store_id,
                        generation: key.generation,
                        fields: key.fields,
                    },
                    Pending { email, reply },
                    lookup.auth,
                );
                answer.await.unwrap_or_else(|_| {
                    Err(LookupError::Unavailable("the lookup was dropped".into()))
                })
            }
        }
    }

    fn enqueue(self: &Arc<Self>, batch: BatchKey, pending: Pending, auth: KlaviyoAuth) {
        let (round, first, full) = {
            let mut batches = self.batches.lock().expect("batch lock");
            let (queue, stored_auth, round) = batches.entry(batch.clone()).or_insert_with(|| {
                (
                    Vec::new(),
                    auth.clone(),
                    self.rounds
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                )
            });
            *stored_auth = auth;
            queue.push(pending);
            (*round, queue.len() == 1, queue.len() >= MAX_BATCH)
        };
        if full {
            let this = self.clone();
            let key = batch.clone();
            tokio::spawn(async move { this.flush(key, round).await });
        } else if first {
            let this = self.clone();
            tokio::spawn(async move {
                let wait = this
                    .budgets
                    .gather_wait(batch.store_id, batch.fields.predictive);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                this.flush(batch, round).await;
            });
        }
    }

    /// Sends what is queued for this batch key, 100 emails per call.
    /// Sends what is queued for this batch key, 100 emails per call. Only what was queued when the wait ended
    /// goes now: shoppers arriving later start their own gathering wait (else this loop would send a call per
    /// Klaviyo round trip and defeat the wait).
    async fn flush(self: Arc<Self>, batch: BatchKey, round: u64) {
        let (queued, auth) = {
            let mut batches = self.batches.lock().expect("batch lock");
            // Another round (a full batch already sent this one) is not ours to cut short.
            if batches.get(&batch).is_none_or(|(_, _, r)| *r != round) {
                return;
            }
            let Some((queue, auth, _)) = batches.remove(&batch) else {
                return;
            };
            (queue, auth)
        };
        let mut queued = queued.into_iter().peekable();
        while queued.peek().is_some() {
            let chunk: Vec<Pending> = queued.by_ref().take(MAX_BATCH).collect();
            self.send_batch(&batch, chunk, &auth).await;
        }
    }

    async fn send_batch(&self, batch: &BatchKey, pendings: Vec<Pending>, auth: &KlaviyoAuth) {
        let emails: Vec<Email> = pendings.iter().map(|p| p.email.clone()).collect();
        let filter = if emails.len() == 1 {
            Filter::Email(&emails[0])
        } else {
            Filter::Emails(&emails)
        };
        let path = profiles_path(&filter, batch.fields);
        metrics::histogram!("klaviyo_batch_size").record(emails.len() as f64);
        match self
            .call(batch.store_id, batch.fields.predictive, auth, &path)
            .await
        {
            Ok(found) => {
                let mut by_email: HashMap<String, Arc<FoundProfile>> = HashMap::new();
                for profile in found {
                    if let Some(email) = profile.email.clone() {
                        by_email.entry(email).or_insert_with(|| Arc::new(profile));
                    }
                }
                for pending in pendings {
                    let answer = by_email
                        .get(pending.email.as_str())
                        .map(|p| ProfileAnswer::Found(p.clone()))
                        .unwrap_or(ProfileAnswer::Missing);
                    let _ = pending.reply.send(Ok(answer));
                }
            }
            Err(error) => {
                for pending in pendings {
                    let _ = pending.reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// One budgeted Get Profiles call.
    async fn call(
        &self,
        store_id: i64,
        predictive: bool,
        auth: &KlaviyoAuth,
        path: &str,
    ) -> Result<Vec<FoundProfile>, LookupError> {
        if let Err(refusal) = self.budgets.try_acquire(store_id, predictive) {
            metrics::counter!("klaviyo_calls_total", "status" => "not_sent").increment(1);
            return Err(LookupError::Refused(refusal));
        }
        let outcome = self.klaviyo.get(auth, path, CALL_TIMEOUT).await;
        let status = match &outcome {
            Ok(answer) => answer.status.as_u16().to_string(),
            Err(_) => "error".to_string(),
        };
        metrics::counter!("klaviyo_calls_total", "status" => status).increment(1);
        let answer = match outcome {
            Ok(answer) => answer,
            Err(error) => {
                self.budgets.failed(store_id);
                return Err(LookupError::Unavailable(error.to_string()));
            }
        };
        if answer.status.is_success() {
            return match parse_profiles(&answer.body) {
                Some(found) => {
                    self.budgets.succeeded(store_id);
                    Ok(found)
                }
                None => {
                    self.budgets.failed(store_id);
                    Err(LookupError::Unavailable("an unreadable answer".into()))
                }
            };
        }
        match KlaviyoClient::classify(&answer) {
            KlaviyoError::Throttled { retry_after } => {
                self.budgets.throttled(store_id, retry_after);
                Err(LookupError::Throttled)
            }
            KlaviyoError::Rejected { status, .. } => {
                self.budgets.failed(store_id);
                Err(LookupError::Rejected(status))
            }
            KlaviyoError::Unavailable(why) => {
                self.budgets.failed(store_id);
                Err(LookupError::Unavailable(why))
            }
        }
    }
}
