//! Algolia secured API keys (research/klaviyo-algolia.md B2): HMAC-SHA256 keyed with the parent (search-only)
//! key over the sorted, URL-encoded restrictions, hex digest prepended, all base64-encoded. The restrictions
//! cannot be changed by the browser that holds the key.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::encoding::encode_component;

/// Algolia: "If the key is longer than 500 characters, you may have problems using it on some networks."
pub const MAX_KEY_LENGTH: usize = 500;

/// Serializes restrictions as Algolia's clients do: keys sorted, lists joined with `,`, values encoded.
pub fn query_string(params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn generate(parent_key: &str, params: &[(&str, String)]) -> String {
    let query = query_string(params);
    let mut mac = <Hmac<Sha256>>::new_from_slice(parent_key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(query.as_bytes());
    let digest = crate::encoding::hex_lower(&mac.finalize().into_bytes());
    base64::engine::general_purpose::STANDARD.encode(format!("{digest}{query}"))
}

/// The key the storefront gets: index restricted, contexts and user token embedded, expiring.
/// Contexts are dropped from the end while the key would pass 500 characters.
pub struct ShopperKey {
    pub key: String,
    pub contexts: Vec<String>,
}

pub const NO_CONTEXT: &str = "pb-none";

pub fn for_shopper(
    parent_key: &str,
    index: &str,
    contexts: &[String],
    user_token: Option<&str>,
    valid_until: i64,
) -> ShopperKey {
    let mut contexts = contexts.to_vec();
    loop {
        let mut params = vec![
            ("restrictIndices", index.to_string()),
            // Always embedded, so a shopper cannot add any; an empty list could read as "no restriction".
            (
                "ruleContexts",
                if contexts.is_empty() {
                    NO_CONTEXT.to_string()
                } else {
                    contexts.join(",")
                },
            ),
            ("validUntil", valid_until.to_string()),
        ];
        if let Some(token) = user_token {
            params.push(("userToken", token.to_string()));
        }
        let key = generate(parent_key, &params);
        if key.len() <= MAX_KEY_LENGTH || contexts.is_empty() {
            return ShopperKey { key, contexts };
        }
        contexts.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(key: &str) -> String {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn reproduces_algolias_first_test_vector() {
        let key = generate(
            "2640659426d5107b6e47d75db9cbaef8",
            &[
                ("validUntil", "2524604400".into()),
                ("restrictIndices", "Movies".into()),
            ],
        );
        assert_eq!(
            key,
            "NjFhZmE0OGEyMTI3OThiODc0OTlkOGM0YjcxYzljY2M2NmU2NDE5ZWY0NDZjMWJhNjA2NzBkMjAwOTI2YWQyZnJlc3RyaWN0SW5kaWNlcz1Nb3ZpZXMmdmFsaWRVbnRpbD0yNTI0NjA0NDAw"
        );
    }

    #[test]
    fn reproduces_algolias_second_test_vector() {
        let params = [
            ("query", "batman".to_string()),
            ("typoTolerance", "strict".into()),
            ("aroundRadius", "all".into()),
            ("mode", "neuralSearch".into()),
            ("hitsPerPage", "10".into()),
            ("optionalWords", "one,two".into()),
            (
                "filters",
                "category:Book OR category:Ebook AND _tags:published".into(),
            ),
            ("restrictIndices", "Movies,cts_e2e_settings".into()),
            ("restrictSources", "192.168.1.0/24".into()),
            ("userToken", "user123".into()),
            ("validUntil", "2524604400".into()),
        ];
        let message = "aroundRadius=all&filters=category%3ABook%20OR%20category%3AEbook%20AND%20_tags%3Apublished&hitsPerPage=10&mode=neuralSearch&optionalWords=one%2Ctwo&query=batman&restrictIndices=Movies%2Ccts_e2e_settings&restrictSources=192.168.1.0%2F24&typoTolerance=strict&userToken=user123&validUntil=2524604400";
        assert_eq!(query_string(&params), message);
        let decoded = decode(&generate("2640659426d5107b6e47d75db9cbaef8", &params));
        assert!(decoded.starts_with("301050b6"), "{decoded}");
        assert!(decoded.ends_with(message));
        assert_eq!(decoded.len(), 64 + message.len());
    }

    #[test]
    fn a_shopper_key_embeds_index_contexts_token_and_expiry() {
        let key = for_shopper(
            "parent",
            "products",
            &["vip".into(), "uk".into()],
            Some("01GDDK"),
            1767225600,
        );
        let decoded = decode(&key.key);
        assert!(decoded.ends_with("restrictIndices=products&ruleContexts=vip%2Cuk&userToken=01GDDK&validUntil=1767225600"), "{decoded}");
        let none = decode(&for_shopper("parent", "products", &[], None, 1).key);
        assert!(
            none.contains("ruleContexts=pb-none") && !none.contains("userToken"),
            "{none}"
        );
    }

    #[test]
    fn long_context_lists_are_trimmed_from_the_end_to_stay_under_500_characters() {
        let contexts: Vec<String> = (0..10)
            .map(|i| format!("context-number-{i:02}-{}", "x".repeat(14)))
            .collect();
        let key = for_shopper(
            "parent",
            "a-rather-long-index-name-for-products",
            &contexts,
            Some("01GDDKASAP8TKDDA2GRZDSVP4H"),
            1767225600,
        );
        assert!(key.key.len() <= MAX_KEY_LENGTH, "{}", key.key.len());
        assert!(key.contexts.len() < 10 && !key.contexts.is_empty());
        assert_eq!(
            key.contexts[..],
            contexts[..key.contexts.len()],
            "dropped from the end"
        );
    }
}
