//! Klaviyo: the REST client, Get Profiles, a store's credentials, and the optional "Connect with Klaviyo" OAuth
//! flow.

pub mod client;
pub mod credentials;
pub mod oauth;
pub mod profiles;
