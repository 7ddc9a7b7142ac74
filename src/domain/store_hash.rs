use std::fmt;

/// A BigCommerce store hash: lowercase ASCII letters and digits, as in `stores/g5cd38`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct StoreHash(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a store hash (expected 1-32 lowercase letters or digits)")]
pub struct InvalidStoreHash;

impl StoreHash {
    pub fn parse(value: &str) -> Result<Self, InvalidStoreHash> {
        let valid = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidStoreHash)
        }
    }

    /// Parses BigCommerce's `context`/`sub` form, `stores/{hash}`.
    pub fn from_context(context: &str) -> Result<Self, InvalidStoreHash> {
        context
            .strip_prefix("stores/")
            .ok_or(InvalidStoreHash)
            .and_then(Self::parse)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for StoreHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for StoreHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_hashes() {
        for ok in ["g5cd38", "abc123", "a", "0123456789abcdefghijklmnopqrstuv"] {
            assert_eq!(StoreHash::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "ABC123",
            "abc-123",
            "abc 123",
            "abc/123",
            "../etc",
            "abc123\n",
            "ä",
            "abc%20",
            "0123456789abcdefghijklmnopqrstuvw",
        ] {
            assert_eq!(StoreHash::parse(bad), Err(InvalidStoreHash), "{bad:?}");
        }
    }

    #[test]
    fn parses_context() {
        assert_eq!(
            StoreHash::from_context("stores/g5cd38").unwrap().as_str(),
            "g5cd38"
        );
        for bad in [
            "g5cd38",
            "stores/",
            "store/g5cd38",
            "stores/g5cd38/x",
            "stores/G5",
        ] {
            assert!(StoreHash::from_context(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deserializes_only_valid_hashes() {
        assert!(serde_json::from_str::<StoreHash>("\"abc\"").is_ok());
        assert!(serde_json::from_str::<StoreHash>("\"a b\"").is_err());
    }
}
