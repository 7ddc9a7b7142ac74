//! The shopper identifiers the resolve endpoint deals in.

use std::fmt;

/// A shopper's email, trimmed and lowercased: the Klaviyo lookup key for logged-in shoppers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an email address")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let normalized = raw.trim().to_lowercase();
        let (local, domain) = normalized.rsplit_once('@').ok_or(InvalidEmail)?;
        let valid = !local.is_empty()
            && !domain.is_empty()
            && normalized.len() <= 254
            && !normalized
                .chars()
                .any(|c| c.is_control() || c.is_whitespace());
        valid.then_some(Self(normalized)).ok_or(InvalidEmail)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Emails are personal data: never print one by accident.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(…)")
    }
}

/// Klaviyo's exchange id (`$exchange_id` / `_kx`): `<identifier>.<company id>`, base64-ish characters.
/// A weak bearer value: it yields contexts and a profile id, never personal data.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ExchangeId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Klaviyo exchange id")]
pub struct InvalidExchangeId;

impl ExchangeId {
    pub fn parse(raw: &str) -> Result<Self, InvalidExchangeId> {
        let valid = (1..=512).contains(&raw.len())
            && raw.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'.')
            });
        valid
            .then(|| Self(raw.to_string()))
            .ok_or(InvalidExchangeId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExchangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExchangeId(…)")
    }
}

/// A Klaviyo profile id, e.g. `01GDDKASAP8TKDDA2GRZDSVP4H`. Safe as an Algolia `userToken`
/// (`[a-zA-Z0-9_=/+-]{1,129}`) and carries no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ProfileId(String);

impl ProfileId {
    pub fn parse(raw: &str) -> Option<Self> {
        ((1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  John.Doe+Shop@Example.COM \n")
                .unwrap()
                .as_str(),
            "john.doe+shop@example.com"
        );
        assert_eq!(
            Email::parse("\"quoted\"@example.com").unwrap().as_str(),
            "\"quoted\"@example.com"
        );
        for bad in [
            "",
            "no-at-sign",
            "@example.com",
            "a@",
            "a b@example.com",
            "a@exa\u{0}mple.com",
            &format!("{}@x.com", "a".repeat(260)),
        ] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail), "{bad:?}");
        }
        assert_eq!(format!("{:?}", Email::parse("a@b.c").unwrap()), "Email(…)");
    }

    #[test]
    fn exchange_ids_allow_only_their_alphabet() {
        for ok in [
            "ABCDEFGHIJKLMNOP==.UHFmv9",
            "IDXL0vH3jMssE2B-AEqyLjyYhwK_yXcN4NuQxPBqgNE=.UsRnv6",
            "a",
        ] {
            assert!(ExchangeId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "quote\"",
            "back\\slash",
            "%3D",
            "ü",
            &"x".repeat(513),
        ] {
            assert_eq!(ExchangeId::parse(bad), Err(InvalidExchangeId), "{bad:?}");
        }
    }

    #[test]
    fn profile_ids() {
        assert!(ProfileId::parse("01GDDKASAP8TKDDA2GRZDSVP4H").is_some());
        assert!(ProfileId::parse("").is_none());
        assert!(ProfileId::parse("a@b").is_none());
    }
}
