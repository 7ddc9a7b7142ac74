//! One integration-test binary (faster to link, one shared Postgres cluster).

mod admin_browser;
mod admin_session;
mod auth;
mod browser;
mod demo_e2e;
mod embedded;
mod fake_bigcommerce;
mod helpers;
mod klaviyo_oauth;
mod load;
mod ops;
mod resolve;
mod resolve_helpers;
mod sandbox;
mod scripts;
mod secrets;
mod settings_api;
mod storefront_browser;
mod tenancy;
mod uninstall;
mod webdriver;
