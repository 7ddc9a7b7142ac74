use std::fmt;

/// An Algolia rule context: `[A-Za-z0-9_-]{1,32}` (Algolia allows alphanumerics, hyphens and underscores).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RuleContext(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a context is 1 to 32 letters, digits, hyphens or underscores")]
pub struct InvalidRuleContext;

impl RuleContext {
    pub fn parse(value: &str) -> Result<Self, InvalidRuleContext> {
        let valid = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid
            .then(|| Self(value.to_string()))
            .ok_or(InvalidRuleContext)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_algolia_safe_names() {
        for ok in ["vip", "big-spender", "UK_2", "a", &"x".repeat(32)] {
            assert!(RuleContext::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_the_rest() {
        for bad in [
            "",
            "has space",
            "ü",
            "a,b",
            "a.b",
            "a/b",
            &"x".repeat(33),
            "<script>",
        ] {
            assert_eq!(RuleContext::parse(bad), Err(InvalidRuleContext), "{bad}");
        }
    }
}
