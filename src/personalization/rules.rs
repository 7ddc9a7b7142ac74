//! The merchant's rules (DESIGN.md "Rules"): an ordered list, each adding one context when its condition holds.
//! Parsing names the exact field at fault (`rules[3].when.gte`); evaluation keeps rule order, deduplicates, and
//! returns at most 10 contexts.

use serde_json::{Map, Value, json};

use crate::domain::RuleContext;

pub const MAX_RULES: usize = 50;
pub const MAX_CONTEXTS: usize = 10;

/// Keys of a Klaviyo profile's `location` (K-OAS profile attributes).
pub const LOCATION_KEYS: &[&str] = &[
    "address1",
    "address2",
    "city",
    "country",
    "region",
    "zip",
    "timezone",
    "latitude",
    "longitude",
    "ip",
];
/// Keys of a Klaviyo profile's `predictive_analytics` (K-OAS `PredictiveAnalytics`).
pub const PREDICTIVE_KEYS: &[&str] = &[
    "historic_clv",
    "predicted_clv",
    "total_clv",
    "historic_number_of_orders",
    "predicted_number_of_orders",
    "average_days_between_orders",
    "average_order_value",
    "churn_probability",
    "expected_date_of_next_order",
];
const OPERATORS: &[&str] = &["equals", "not_equals", "in", "gte", "lte", "exists"];
const SUBJECTS: &[&str] = &[
    "property",
    "location",
    "predictive",
    "customer_group",
    "profile",
    "segment",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    Equals(Value),
    NotEquals(Value),
    In(Vec<Value>),
    Gte(f64),
    Lte(f64),
    Exists(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Property,
    Location,
    Predictive,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Field {
        source: Source,
        key: String,
        operator: Operator,
    },
    CustomerGroup(String),
    ProfileExists,
    ProfileMissing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub context: RuleContext,
    pub when: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    pub code: &'static str,
    pub message: String,
    pub field: String,
}

fn invalid(field: String, message: impl Into<String>) -> RuleError {
    RuleError {
        code: "invalid_rule",
        message: message.into(),
        field,
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn finite_number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|n| n.is_finite())
}

fn parse_operator(
    when: &Map<String, Value>,
    path: &str,
    subject: &str,
) -> Result<Operator, RuleError> {
    let mut found = None;
    for (key, value) in when {
        if key == subject {
            continue;
        }
        let field = format!("{path}.{key}");
        if !OPERATORS.contains(&key.as_str()) {
            return Err(invalid(
                field,
                format!("Unknown key {key:?}; use one of {}", OPERATORS.join(", ")),
            ));
        }
        if found.is_some() {
            return Err(invalid(field, "A rule takes exactly one operator"));
        }
        let operator = match key.as_str() {
            "equals" | "not_equals" => {
                if !is_scalar(value) {
                    return Err(invalid(
                        field,
                        "Compare with a string, a number, or true/false",
                    ));
                }
                if key == "equals" {
                    Operator::Equals(value.clone())
                } else {
                    Operator::NotEquals(value.clone())
                }
            }
            "in" => {
                let list = value.as_array().filter(|l| !l.is_empty() && l.len() <= 100);
                let list =
                    list.ok_or_else(|| invalid(field.clone(), "Give a list of 1 to 100 values"))?;
                if let Some(i) = list.iter().position(|v| !is_scalar(v)) {
                    return Err(invalid(
                        format!("{field}[{i}]"),
                        "Each value is a string, a number, or true/false",
                    ));
                }
                Operator::In(list.clone())
            }
            "gte" | "lte" => {
                let n =
                    finite_number(value).ok_or_else(|| invalid(field.clone(), "Give a number"))?;
                if key == "gte" {
                    Operator::Gte(n)
                } else {
                    Operator::Lte(n)
                }
            }
            _ => Operator::Exists(
                value
                    .as_bool()
                    .ok_or_else(|| invalid(field.clone(), "Give true or false"))?,
            ),
        };
        found = Some(operator);
    }
    found.ok_or_else(|| {
        invalid(
            path.to_string(),
            format!("Add an operator: one of {}", OPERATORS.join(", ")),
        )
    })
}

fn parse_condition(value: &Value, path: &str) -> Result<Condition, RuleError> {
    let when = value.as_object().ok_or_else(|| {
        invalid(
            path.to_string(),
            "A condition is an object such as {\"property\":\"vip\",\"equals\":true}",
        )
    })?;
    let subjects: Vec<&String> = when
        .keys()
        .filter(|k| SUBJECTS.contains(&k.as_str()))
        .collect();
    let subject = match subjects.as_slice() {
        [] => {
            return Err(invalid(
                path.to_string(),
                format!("Say what to test: one of {}", SUBJECTS.join(", ")),
            ));
        }
        [one] => one.as_str(),
        [_, second, ..] => {
            return Err(invalid(
                format!("{path}.{second}"),
                "A rule tests exactly one thing",
            ));
        }
    };
    let field = format!("{path}.{subject}");
    let only_subject = |when: &Map<String, Value>| match when.keys().find(|k| k.as_str() != subject)
    {
        Some(extra) => Err(invalid(
            format!("{path}.{extra}"),
            format!("{subject} rules take no {extra:?}"),
        )),
        None => Ok(()),
    };
    match subject {
        "segment" => Err(RuleError {
            code: "unsupported_rule",
            message: "Segment rules are not supported yet".into(),
            field,
        }),
        "profile" => {
            only_subject(when)?;
            match when[subject].as_str() {
                Some("exists") => Ok(Condition::ProfileExists),
                Some("missing") => Ok(Condition::ProfileMissing),
                _ => Err(invalid(field, "Use \"exists\" or \"missing\"")),
            }
        }
        "customer_group" => {
            only_subject(when)?;
            let group = match &when[subject] {
                Value::String(s) if !s.is_empty() && s.len() <= 32 => s.clone(),
                Value::Number(n) if n.is_u64() => n.to_string(),
                _ => {
                    return Err(invalid(
                        field,
                        "Give the BigCommerce customer group id, e.g. \"2\"",
                    ));
                }
            };
            Ok(Condition::CustomerGroup(group))
        }
        _ => {
            let key = when[subject]
                .as_str()
                .filter(|k| !k.is_empty() && k.len() <= 100)
                .ok_or_else(|| invalid(field.clone(), "Give the name to test"))?;
            let source = match subject {
                "property" => Source::Property,
                "location" if LOCATION_KEYS.contains(&key) => Source::Location,
                "predictive" if PREDICTIVE_KEYS.contains(&key) => Source::Predictive,
                "location" => {
                    return Err(invalid(
                        field,
                        format!("Use one of {}", LOCATION_KEYS.join(", ")),
                    ));
                }
                _ => {
                    return Err(invalid(
                        field,
                        format!("Use one of {}", PREDICTIVE_KEYS.join(", ")),
                    ));
                }
            };
            Ok(Condition::Field {
                source,
                key: key.to_string(),
                operator: parse_operator(when, path, subject)?,
            })
        }
    }
}

/// Parses the `rules` value of `PUT /api/v1/settings/rules`.
pub fn parse_rules(value: &Value) -> Result<Vec<Rule>, RuleError> {
    let list = value
        .as_array()
        .ok_or_else(|| invalid("rules".into(), "rules is a list"))?;
    if list.len() > MAX_RULES {
        return Err(invalid(
            "rules".into(),
            format!("At most {MAX_RULES} rules"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, rule)| {
            let path = format!("rules[{i}]");
            let object = rule.as_object().ok_or_else(|| {
                invalid(
                    path.clone(),
                    "A rule is an object with a context and a condition",
                )
            })?;
            if let Some(extra) = object.keys().find(|k| *k != "context" && *k != "when") {
                return Err(invalid(
                    format!("{path}.{extra}"),
                    format!("Unknown key {extra:?}"),
                ));
            }
            let context = object
                .get("context")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{path}.context"), "Give the context to add"))
                .and_then(|c| {
                    RuleContext::parse(c).map_err(|e| {
                        invalid(format!("{path}.context"), format!("Invalid context: {e}"))
                    })
                })?;
            let when = object
                .get("when")
                .ok_or_else(|| invalid(format!("{path}.when"), "Add a condition"))?;
            Ok(Rule {
                context,
                when: parse_condition(when, &format!("{path}.when"))?,
            })
        })
        .collect()
}

fn operator_json(operator: &Operator) -> (&'static str, Value) {
    match operator {
        Operator::Equals(v) => ("equals", v.clone()),
        Operator::NotEquals(v) => ("not_equals", v.clone()),
        Operator::In(v) => ("in", Value::Array(v.clone())),
        Operator::Gte(n) => ("gte", json!(n)),
        Operator::Lte(n) => ("lte", json!(n)),
        Operator::Exists(b) => ("exists", json!(b)),
    }
}

/// The canonical JSON of parsed rules (what is stored and shown).
pub fn rules_json(rules: &[Rule]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|rule| {
                let when = match &rule.when {
                    Condition::Field {
                        source,
                        key,
                        operator,
                    } => {
                        let subject = match source {
                            Source::Property => "property",
                            Source::Location => "location",
                            Source::Predictive => "predictive",
                        };
                        let (op, value) = operator_json(operator);
                        json!({ subject: key, op: value })
                    }
                    Condition::CustomerGroup(g) => json!({ "customer_group": g }),
                    Condition::ProfileExists => json!({ "profile": "exists" }),
                    Condition::ProfileMissing => json!({ "profile": "missing" }),
                };
                json!({ "context": rule.context.as_str(), "when": when })
            })
            .collect(),
    )
}

/// What a Klaviyo lookup must fetch for these rules.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProfileNeeds {
    pub properties: bool,
    pub location: bool,
    pub predictive: bool,
    /// Any rule needs a profile at all (else no Klaviyo call is worth making).
    pub any: bool,
}

pub fn profile_needs(rules: &[Rule]) -> ProfileNeeds {
    let mut needs = ProfileNeeds::default();
    for rule in rules {
        match &rule.when {
            Condition::Field {
                source: Source::Property,
                ..
            } => needs.properties = true,
            Condition::Field {
                source: Source::Location,
                ..
            } => needs.location = true,
            Condition::Field {
                source: Source::Predictive,
                ..
            } => needs.predictive = true,
            Condition::ProfileExists | Condition::ProfileMissing => {}
            Condition::CustomerGroup(_) => continue,
        }
        needs.any = true;
    }
    needs
}

/// What is known about the shopper's profile when rules run.
#[derive(Debug, Clone, Copy)]
pub enum Profile<'a> {
    /// Klaviyo's profile `attributes`.
    Found(&'a Value),
    /// Klaviyo said there is no profile, or the guest is anonymous.
    Missing,
    /// Klaviyo could not be asked (degraded, or not configured): only profile-free rules run.
    Unknown,
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn holds(operator: &Operator, value: Option<&Value>) -> bool {
    let value = value.filter(|v| !v.is_null());
    match (operator, value) {
        (Operator::NotEquals(_), None) => true,
        (Operator::Exists(wanted), v) => v.is_some() == *wanted,
        (_, None) => false,
        (Operator::Equals(expected), Some(v)) => same(v, expected),
        (Operator::NotEquals(expected), Some(v)) => !same(v, expected),
        (Operator::In(list), Some(v)) => list.iter().any(|e| same(v, e)),
        (Operator::Gte(n), Some(v)) => v.as_f64().is_some_and(|x| x >= *n),
        (Operator::Lte(n), Some(v)) => v.as_f64().is_some_and(|x| x <= *n),
    }
}

/// The contexts these rules give: rule order, each context once at its first position, at most 10.
pub fn evaluate(
    rules: &[Rule],
    profile: Profile<'_>,
    customer_group: Option<&str>,
) -> Vec<RuleContext> {
    let mut contexts: Vec<RuleContext> = Vec::new();
    for rule in rules {
        let applies = match (&rule.when, profile) {
            (Condition::CustomerGroup(group), _) => customer_group == Some(group.as_str()),
            (Condition::ProfileExists, Profile::Found(_)) => true,
            (Condition::ProfileMissing, Profile::Missing) => true,
            (
                Condition::Field {
                    source,
                    key,
                    operator,
                },
                Profile::Found(attributes),
            ) => {
                let section = match source {
                    Source::Property => "properties",
                    Source::Location => "location",
                    Source::Predictive => "predictive_analytics",
                };
                holds(operator, attributes.get(section).and_then(|s| s.get(key)))
            }
            _ => false,
        };
        if applies && !contexts.contains(&rule.context) {
            contexts.push(rule.context.clone());
            if contexts.len() == MAX_CONTEXTS {
                break;
            }
        }
    }
    contexts
}

#[cfg(test)]
mod tests;
