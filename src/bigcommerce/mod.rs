//! BigCommerce: the install code exchange, signed callback payloads, and (Part 2) the Scripts API.

pub mod oauth;
pub mod scripts;
pub mod signed_payload;
