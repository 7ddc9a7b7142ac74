//! Who the shopper is: BigCommerce's current-customer JWT (research/bigcommerce.md §4), Klaviyo's exchange id,
//! or nobody in particular.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{Email, ExchangeId, StoreHash};

#[derive(Debug, Clone)]
pub enum Identity {
    Customer {
        email: Email,
        customer_group: Option<String>,
    },
    Exchange(ExchangeId),
    Anonymous,
}

impl Identity {
    pub fn source(&self) -> &'static str {
        match self {
            Self::Customer { .. } => "customer",
            Self::Exchange(_) => "exchange_id",
            Self::Anonymous => "none",
        }
    }
}

#[derive(Deserialize)]
struct Customer {
    email: String,
    #[serde(default)]
    group_id: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    customer: Customer,
    operation: String,
    #[serde(default)]
    store_hash: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    application_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the customer token did not verify")]
pub struct InvalidCustomerToken;

pub struct CustomerTokenVerifier {
    key: DecodingKey,
    validation: Validation,
    client_id: String,
}

impl CustomerTokenVerifier {
    pub fn new(client_id: &str, client_secret: &SecretString) -> anyhow::Result<Self> {
        let key = DecodingKey::from_secret(client_secret.expose_secret().as_bytes())
            .map_err(|e| anyhow::anyhow!("BC_CLIENT_SECRET cannot key HMAC: {e}"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        // BigCommerce's docs show HS256; its Python client found HS512 in practice. Nothing else.
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS512];
        validation.set_issuer(&["bc/apps"]);
        validation.leeway = 5;
        // Which of `aud` and `application_id` carries our client id is UNCONFIRMED: checked below, either.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        Ok(Self {
            key,
            validation,
            client_id: client_id.to_string(),
        })
    }

    /// The shopper's email and customer group, when the token is BigCommerce's for this app and this store.
    #[tracing::instrument(name = "Verify customer token", skip_all)]
    pub fn verify(
        &self,
        token: &str,
        store_hash: &StoreHash,
    ) -> Result<Identity, InvalidCustomerToken> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|_| InvalidCustomerToken)?
            .claims;
        if claims.operation != "current_customer" {
            return Err(InvalidCustomerToken);
        }
        let token_store = claims.store_hash.as_deref().or(claims.sub.as_deref());
        if token_store != Some(store_hash.as_str()) {
            return Err(InvalidCustomerToken);
        }
        let aud_matches = match &claims.aud {
            Some(Value::String(aud)) => aud == &self.client_id,
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str() == Some(self.client_id.as_str())),
            _ => false,
        };
        if !aud_matches && claims.application_id.as_deref() != Some(self.client_id.as_str()) {
            return Err(InvalidCustomerToken);
        }
        let email = Email::parse(&claims.customer.email).map_err(|_| InvalidCustomerToken)?;
        let customer_group = match claims.customer.group_id {
            Some(Value::String(g)) if !g.is_empty() => Some(g),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(Identity::Customer {
            email,
            customer_group,
        })
    }
}
