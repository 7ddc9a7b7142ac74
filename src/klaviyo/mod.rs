//! Klaviyo: the REST client, a store's credentials, and the optional "Connect with Klaviyo" OAuth flow.

pub mod client;
pub mod credentials;
pub mod oauth;
