//! The core: identity → Klaviyo profile → rule contexts.

pub mod budget;
pub mod identity;
pub mod lookup;
pub mod resolver;
pub mod rules;
