//! Get Profiles (research/klaviyo-algolia.md A1): the filter, the sparse fields, and a lenient reading of the
//! JSON:API answer.

use serde_json::Value;

use crate::domain::{Email, ExchangeId, ProfileId};
use crate::encoding::encode_component;

/// Klaviyo's `any()` takes up to 100 values, and a page holds up to 100 profiles.
pub const MAX_BATCH: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fields {
    pub properties: bool,
    pub location: bool,
    pub predictive: bool,
}

pub enum Filter<'a> {
    Email(&'a Email),
    Emails(&'a [Email]),
    Exchange(&'a ExchangeId),
}

/// A string literal inside a filter: quoted, with `\` and `"` escaped.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn filter_expression(filter: &Filter<'_>) -> String {
    match filter {
        Filter::Email(email) => format!("equals(email,{})", quoted(email.as_str())),
        Filter::Emails(emails) => format!(
            "any(email,[{}])",
            emails
                .iter()
                .map(|e| quoted(e.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        ),
        // `_kx` allows only `equals` (one call per exchange id).
        Filter::Exchange(id) => format!("equals(_kx,{})", quoted(id.as_str())),
    }
}

/// `/api/profiles?filter=…&fields[profile]=…[&additional-fields[profile]=predictive_analytics]&page[size]=…`
pub fn profiles_path(filter: &Filter<'_>, fields: Fields) -> String {
    let mut wanted = vec!["email"];
    if fields.properties {
        wanted.push("properties");
    }
    if fields.location {
        wanted.push("location");
    }
    if fields.predictive {
        wanted.push("predictive_analytics");
    }
    let page = match filter {
        Filter::Emails(emails) => emails.len().clamp(1, MAX_BATCH),
        _ => 1,
    };
    let mut path = format!(
        "/api/profiles?filter={}&fields%5Bprofile%5D={}&page%5Bsize%5D={page}",
        encode_component(&filter_expression(filter)),
        encode_component(&wanted.join(","))
    );
    if fields.predictive {
        path.push_str("&additional-fields%5Bprofile%5D=predictive_analytics");
    }
    path
}

#[derive(Debug, Clone)]
pub struct FoundProfile {
    pub id: ProfileId,
    /// Lowercased, to route a batched answer back to its shopper.
    pub email: Option<String>,
    /// The profile's `attributes` (properties, location, predictive analytics…).
    pub attributes: Value,
}

/// The profiles in a Get Profiles answer; None when the body is not the documented shape.
pub fn parse_profiles(body: &[u8]) -> Option<Vec<FoundProfile>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let data = value.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|item| {
                let id = ProfileId::parse(item.get("id")?.as_str()?)?;
                let attributes = item.get("attributes").cloned().unwrap_or(Value::Null);
                let email = attributes
                    .get("email")
                    .and_then(Value::as_str)
                    .map(|e| e.trim().to_lowercase());
                Some(FoundProfile {
                    id,
                    email,
                    attributes,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn filters_quote_and_escape() {
        assert_eq!(
            filter_expression(&Filter::Email(&email(" Sarah.Mason@Klaviyo-Demo.com "))),
            r#"equals(email,"sarah.mason@klaviyo-demo.com")"#
        );
        assert_eq!(
            filter_expression(&Filter::Email(&email(r#""a\b"@x.com"#))),
            r#"equals(email,"\"a\\b\"@x.com")"#
        );
        let kx = ExchangeId::parse("ABCDEF==.UHFmv9").unwrap();
        assert_eq!(
            filter_expression(&Filter::Exchange(&kx)),
            r#"equals(_kx,"ABCDEF==.UHFmv9")"#
        );
        let list = [email("a@x.com"), email("b+tag@y.com")];
        assert_eq!(
            filter_expression(&Filter::Emails(&list)),
            r#"any(email,["a@x.com","b+tag@y.com"])"#
        );
    }

    #[test]
    fn the_path_encodes_the_whole_filter_and_asks_only_for_needed_fields() {
        let path = profiles_path(
            &Filter::Email(&email("a+b@x.com")),
            Fields {
                properties: true,
                ..Default::default()
            },
        );
        assert_eq!(
            path,
            "/api/profiles?filter=equals(email%2C%22a%2Bb%40x.com%22)&fields%5Bprofile%5D=email%2Cproperties&page%5Bsize%5D=1"
        );
        let list: Vec<Email> = (0..3).map(|i| email(&format!("s{i}@x.com"))).collect();
        let batch = profiles_path(
            &Filter::Emails(&list),
            Fields {
                predictive: true,
                ..Default::default()
            },
        );
        assert!(batch.contains("page%5Bsize%5D=3"));
        assert!(batch.ends_with("&additional-fields%5Bprofile%5D=predictive_analytics"));
        assert!(batch.contains("fields%5Bprofile%5D=email%2Cpredictive_analytics"));
    }

    #[test]
    fn answers_are_read_leniently() {
        let body = br#"{"data":[{"type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H","attributes":{"email":"John@Example.com","properties":{"vip":true}}},
                               {"type":"profile","id":"bad id!"},{"type":"profile"}],"links":{}}"#;
        let found = parse_profiles(body).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].email.as_deref(), Some("john@example.com"));
        assert_eq!(found[0].attributes["properties"]["vip"], true);
        assert_eq!(parse_profiles(br#"{"data":[]}"#).unwrap().len(), 0);
        assert!(parse_profiles(b"<html>").is_none());
        assert!(parse_profiles(br#"{"errors":[]}"#).is_none());
    }
}
