//! BigCommerce: the install code exchange, signed callback payloads, the REST client, storefront channels and
//! the Scripts API.

pub mod client;
pub mod oauth;
pub mod scripts;
pub mod signed_payload;
pub mod storefronts;
