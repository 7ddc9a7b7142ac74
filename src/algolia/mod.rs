//! Algolia: checking a merchant's search key, and secured API keys for shoppers.

pub mod keys;
pub mod secured_key;
