//! Parsed values: once a value has one of these types it has been checked.

mod identity;
mod rule_context;
mod store_hash;

pub use identity::{Email, ExchangeId, InvalidEmail, InvalidExchangeId, ProfileId};
pub use rule_context::{InvalidRuleContext, RuleContext};
pub use store_hash::{InvalidStoreHash, StoreHash};
