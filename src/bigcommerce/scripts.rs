//! Storefront-script injection through the Scripts API.
//!
//! This is where Part 2 plugs in: install calls [`on_install`], `/load` calls [`on_load`]. Until the Scripts
//! API client exists they record nothing and never fail the install (DESIGN.md: a Scripts API failure must not
//! fail the install either).

use crate::domain::StoreHash;

/// Called after a successful install, with the freshly stored token. Part 2: create one script per channel.
#[tracing::instrument(name = "Ensure storefront scripts on install", skip_all, fields(store_hash = %store_hash))]
pub async fn on_install(store_hash: &StoreHash) {
    tracing::debug!("storefront-script reconciliation is not built yet (Part 2)");
}

/// Called on every `/load`. Part 2: create scripts for new channels only, and report drift.
#[tracing::instrument(name = "Check storefront scripts on load", skip_all, fields(store_hash = %store_hash))]
pub async fn on_load(store_hash: &StoreHash) {
    tracing::debug!("storefront-script drift check is not built yet (Part 2)");
}
