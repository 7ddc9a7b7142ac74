//! Profile Bridge: a BigCommerce app that resolves storefront shoppers to Klaviyo profiles and Algolia rule
//! contexts, server-side. See DESIGN.md for the contract and README.md for how to run it.

pub mod algolia;
pub mod bigcommerce;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod encoding;
pub mod klaviyo;
pub mod personalization;
pub mod routes;
pub mod sandbox;
pub mod session;
pub mod settings;
pub mod startup;
pub mod telemetry;
