//! The core: identity → Klaviyo profile → rule contexts.

pub mod rules;
