//! Parsed values: once a value has one of these types it has been checked.

mod store_hash;

pub use store_hash::{InvalidStoreHash, StoreHash};
