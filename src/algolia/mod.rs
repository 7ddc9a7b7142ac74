//! Algolia: checking a merchant's search key, and (Part 4) secured API keys.

pub mod keys;
