//! Each store's share of Klaviyo's Get Profiles limits.
//!
//! Klaviyo counts in fixed 1 s and 60 s windows (research A3). A token bucket with a large burst can pass a
//! fixed window's limit (a full bucket at the end of one window, refilled, spent again at the start of the
//! next), so this keeps the send times of the last minute and admits a call only while every sliding 1 s and
//! 60 s window stays within the budget — which also keeps every fixed window within it. At most `per_min`
//! timestamps per budget are kept. The clock is injectable so the 60 s property is tested in virtual time.
//! After a `429` nothing is sent before `Retry-After` has passed, and a short circuit breaker stops calls to an
//! account whose calls keep failing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
/// Consecutive failures (5xx, timeouts, unreadable answers) that open the breaker, and how long it stays open.
pub const BREAKER_THRESHOLD: u32 = 5;
pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(30);
/// The longest a batch waits to gather more shoppers (when calls are scarce).
pub const MAX_GATHER_WAIT: Duration = Duration::from_millis(250);

pub trait Clock: Send + Sync {
    /// Time since an arbitrary fixed start; never goes backwards.
    fn now(&self) -> Duration;
}

pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Default)]
pub struct ManualClock(Mutex<Duration>);

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.0.lock().expect("clock lock")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_sec: u32,
    pub per_min: u32,
}

#[derive(Debug, Default)]
struct SlidingLog {
    sent: VecDeque<Duration>,
}

impl SlidingLog {
    fn forget_before(&mut self, now: Duration) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= MINUTE)
        {
            self.sent.pop_front();
        }
    }

    fn counts(&self, now: Duration) -> (usize, usize) {
        let last_second = self
            .sent
            .iter()
            .rev()
            .take_while(|t| now.saturating_sub(**t) < SECOND)
            .count();
        (last_second, self.sent.len())
    }

    fn admits(&mut self, now: Duration, limits: Limits) -> bool {
        self.forget_before(now);
        let (second, minute) = self.counts(now);
        second < limits.per_sec as usize && minute < limits.per_min as usize
    }

    /// 0.0 (idle) to 1.0 (spent), the tighter of the two windows.
    fn tightness(&mut self, now: Duration, limits: Limits) -> f64 {
        self.forget_before(now);
        let (second, minute) = self.counts(now);
        let s = second as f64 / f64::from(limits.per_sec.max(1));
        let m = minute as f64 / f64::from(limits.per_min.max(1));
        s.max(m).min(1.0)
    }
}

#[derive(Debug, Default)]
struct StoreState {
    standard: SlidingLog,
    predictive: SlidingLog,
    blocked_until: Duration,
    failures: u32,
    open_until: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The store's share is spent for now.
    BudgetSpent,
    /// Klaviyo said 429; its Retry-After has not passed.
    Throttled,
    /// Calls kept failing; the breaker is open.
    BreakerOpen,
}

pub struct Budgets {
    clock: Arc<dyn Clock>,
    standard: Limits,
    predictive: Limits,
    stores: Mutex<HashMap<i64, StoreState>>,
}

impl Budgets {
    pub fn new(clock: Arc<dyn Clock>, standard: Limits, predictive: Limits) -> Self {
        Self {
            clock,
            standard,
            predictive,
            stores: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, store_id: i64, f: impl FnOnce(&mut StoreState, Duration) -> R) -> R {
        let now = self.clock.now();
        let mut stores = self.stores.lock().expect("budget lock");
        f(stores.entry(store_id).or_default(), now)
    }

    /// Takes one call from the store's budget (and the predictive budget when asked), or says why not.
    pub fn try_acquire(&self, store_id: i64, predictive: bool) -> Result<(), Refusal> {
        let (standard, predictive_limits) = (self.standard, self.predictive);
        self.with(store_id, |state, now| {
            if now < state.blocked_until {
                return Err(Refusal::Throttled);
            }
            if now < state.open_until {
                return Err(Refusal::BreakerOpen);
            }
            if !state.standard.admits(now, standard)
                || (predictive && !state.predictive.admits(now, predictive_limits))
            {
                return Err(Refusal::BudgetSpent);
            }
            state.standard.sent.push_back(now);
            if predictive {
                state.predictive.sent.push_back(now);
            }
            Ok(())
        })
    }

    /// Klaviyo answered 429: nothing more until `retry_after` has passed.
    pub fn throttled(&self, store_id: i64, retry_after: Duration) {
        self.with(store_id, |state, now| {
            state.blocked_until = state.blocked_until.max(now + retry_after)
        });
    }

    pub fn failed(&self, store_id: i64) {
        self.with(store_id, |state, now| {
            state.failures += 1;
            if state.failures >= BREAKER_THRESHOLD {
                state.open_until = now + BREAKER_OPEN_FOR;
                // Half-open afterwards: one more failure reopens it at once.
                state.failures = BREAKER_THRESHOLD - 1;
            }
        });
    }

    pub fn succeeded(&self, store_id: i64) {
        self.with(store_id, |state, _| state.failures = 0);
    }

    /// How long a batch should wait for more shoppers: nothing while the budget is plentiful, up to 250 ms as
    /// it runs out, so each call carries more shoppers exactly when calls are scarce.
    pub fn gather_wait(&self, store_id: i64, predictive: bool) -> Duration {
        let (standard, predictive_limits) = (self.standard, self.predictive);
        let tightness = self.with(store_id, |state, now| {
            let t = state.standard.tightness(now, standard);
            if predictive {
                t.max(state.predictive.tightness(now, predictive_limits))
            } else {
                t
            }
        });
        // Full wait from 40 % use: at 250 ms a store makes at most ~4 calls/s (240/min), well inside the default
        // 600/min, however many new shoppers arrive; below 10 % calls go out at once.
        let scale = ((tightness - 0.1) / 0.3).clamp(0.0, 1.0);
        MAX_GATHER_WAIT.mul_f64(scale)
    }

    /// Forgets a store's state (uninstall).
    pub fn forget(&self, store_id: i64) {
        self.stores.lock().expect("budget lock").remove(&store_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(clock: Arc<ManualClock>, per_sec: u32, per_min: u32) -> Budgets {
        Budgets::new(
            clock,
            Limits { per_sec, per_min },
            Limits {
                per_sec: 5,
                per_min: 120,
            },
        )
    }

    /// Every sliding window of `width` over the recorded times holds at most `limit` calls.
    fn assert_windows(times: &[Duration], width: Duration, limit: usize) {
        for (i, start) in times.iter().enumerate() {
            let inside = times[i..]
                .iter()
                .take_while(|t| **t - *start < width)
                .count();
            assert!(
                inside <= limit,
                "{inside} calls in the {width:?} window starting at {start:?}"
            );
        }
    }

    #[test]
    fn never_more_than_the_budget_in_any_sliding_second_or_minute_in_virtual_time() {
        let clock = Arc::new(ManualClock::default());
        let b = budgets(clock.clone(), 40, 600);
        let mut sent = Vec::new();
        // A flood: 200 attempts per second for 3 minutes, in 5 ms steps.
        for _ in 0..(180 * 200) {
            if b.try_acquire(1, false).is_ok() {
                sent.push(clock.now());
            }
            clock.advance(Duration::from_millis(5));
        }
        assert_windows(&sent, SECOND, 40);
        assert_windows(&sent, MINUTE, 600);
        assert!(
            sent.len() >= 3 * 600 - 40,
            "the budget is used, not starved: {}",
            sent.len()
        );
    }

    #[test]
    fn a_burst_at_a_window_edge_cannot_double_the_rate() {
        let clock = Arc::new(ManualClock::default());
        let b = budgets(clock.clone(), 40, 600);
        clock.advance(Duration::from_millis(990));
        let first = (0..100).filter(|_| b.try_acquire(1, false).is_ok()).count();
        clock.advance(Duration::from_millis(20));
        let second = (0..100).filter(|_| b.try_acquire(1, false).is_ok()).count();
        assert_eq!((first, second), (40, 0));
        clock.advance(Duration::from_millis(990));
        assert!(b.try_acquire(1, false).is_ok());
    }

    #[test]
    fn stores_have_their_own_budgets_and_predictive_calls_draw_both() {
        let clock = Arc::new(ManualClock::default());
        let b = budgets(clock.clone(), 40, 600);
        assert_eq!(
            (0..10).filter(|_| b.try_acquire(1, true).is_ok()).count(),
            5
        );
        assert_eq!(b.try_acquire(1, true), Err(Refusal::BudgetSpent));
        assert!(b.try_acquire(1, false).is_ok(), "standard calls still fit");
        assert!(b.try_acquire(2, true).is_ok(), "another store is untouched");
    }

    #[test]
    fn nothing_goes_out_before_retry_after() {
        let clock = Arc::new(ManualClock::default());
        let b = budgets(clock.clone(), 40, 600);
        b.throttled(1, Duration::from_secs(7));
        clock.advance(Duration::from_millis(6999));
        assert_eq!(b.try_acquire(1, false), Err(Refusal::Throttled));
        clock.advance(Duration::from_millis(1));
        assert!(b.try_acquire(1, false).is_ok());
    }

    #[test]
    fn the_breaker_opens_after_repeated_failures_and_half_opens_later() {
        let clock = Arc::new(ManualClock::default());
        let b = budgets(clock.clone(), 40, 600);
        for _ in 0..BREAKER_THRESHOLD {
            b.try_acquire(1, false).unwrap();
            b.failed(1);
        }
        assert_eq!(b.try_acquire(1, false), Err(Refusal::BreakerOpen));
        clock.advance(BREAKER_OPEN_FOR);
        assert!(b.try_acquire(1, false).is_ok(), "one trial call");
        b.failed(1);
        assert_eq!(
            b.try_acquire(1, false),
            Err(Refusal::BreakerOpen),
            "a failed trial reopens it"
        );
        clock.advance(BREAKER_OPEN_FOR);
        b.try_acquire(1, false).unwrap();
        b.succeeded(1);
        b.failed(1);
        assert!(b.try_acquire(1, false).is_ok(), "a success closed it");
    }

    #[test]
    fn the_gathering_wait_grows_as_the_budget_tightens() {
        let clock = Arc::new(ManualClock::default());
        let b = budgets(clock.clone(), 40, 600);
        assert_eq!(b.gather_wait(1, false), Duration::ZERO);
        for _ in 0..400 {
            b.try_acquire(1, false).ok();
            clock.advance(Duration::from_millis(50));
        }
        let tight = b.gather_wait(1, false);
        assert!(
            tight > Duration::from_millis(100) && tight <= MAX_GATHER_WAIT,
            "{tight:?}"
        );
    }
}
