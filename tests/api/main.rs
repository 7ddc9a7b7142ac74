//! One integration-test binary (faster to link, one shared Postgres cluster).

mod admin_session;
mod auth;
mod embedded;
mod helpers;
mod load;
mod ops;
mod secrets;
mod uninstall;
