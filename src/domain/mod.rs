//! Parsed values: once a value has one of these types it has been checked.

mod rule_context;
mod store_hash;

pub use rule_context::{InvalidRuleContext, RuleContext};
pub use store_hash::{InvalidStoreHash, StoreHash};
