//! HTTP routes, grouped by audience: BigCommerce callbacks, the merchant admin, the storefront, operations,
//! static assets.

pub mod admin;
pub mod assets;
pub mod callbacks;
pub mod errors;
pub mod ops;
pub mod resolve;
pub mod storefront;
