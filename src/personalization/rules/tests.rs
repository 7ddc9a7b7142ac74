use serde_json::{Value, json};

use super::*;

fn rules(value: Value) -> Vec<Rule> {
    parse_rules(&value).unwrap()
}

fn error(value: Value) -> RuleError {
    parse_rules(&value).unwrap_err()
}

fn contexts(rules: &[Rule], profile: Profile<'_>, group: Option<&str>) -> Vec<String> {
    evaluate(rules, profile, group)
        .iter()
        .map(|c| c.to_string())
        .collect()
}

fn one(when: Value) -> Vec<Rule> {
    rules(json!([{ "context": "hit", "when": when }]))
}

fn hits(when: Value, attributes: Value) -> bool {
    !contexts(&one(when), Profile::Found(&attributes), None).is_empty()
}

#[test]
fn the_design_example_parses_and_round_trips() {
    let example = json!([
        {"context":"vip",        "when":{"property":"vip","equals":true}},
        {"context":"big-spender","when":{"predictive":"historic_clv","gte":500}},
        {"context":"uk",         "when":{"location":"country","equals":"United Kingdom"}},
        {"context":"wholesale",  "when":{"customer_group":"2"}},
        {"context":"known",      "when":{"profile":"exists"}},
        {"context":"guest",      "when":{"profile":"missing"}}
    ]);
    let parsed = rules(example.clone());
    assert_eq!(parsed.len(), 6);
    let again = rules_json(&parsed);
    assert_eq!(again[0], example[0]);
    assert_eq!(again[1]["when"]["gte"].as_f64(), Some(500.0));
    assert_eq!(again[3], example[3]);
    assert_eq!(parse_rules(&again).unwrap(), parsed);
}

#[test]
fn errors_name_the_rule_and_field() {
    let cases = [
        (json!({}), "rules"),
        (json!([1]), "rules[0]"),
        (json!([{"when":{"profile":"exists"}}]), "rules[0].context"),
        (
            json!([{"context":"has space","when":{"profile":"exists"}}]),
            "rules[0].context",
        ),
        (json!([{"context":"ok"}]), "rules[0].when"),
        (
            json!([{"context":"ok","when":{"profile":"exists"},"extra":1}]),
            "rules[0].extra",
        ),
        (json!([{"context":"ok","when":{}}]), "rules[0].when"),
        (json!([{"context":"ok","when":"vip"}]), "rules[0].when"),
        (
            json!([{"context":"a","when":{"profile":"exists"}}, {"context":"b","when":{"property":"x"}}]),
            "rules[1].when",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","gte":"500"}}]),
            "rules[0].when.gte",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","lte":null}}]),
            "rules[0].when.lte",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","equals":{"a":1}}}]),
            "rules[0].when.equals",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","in":[]}}]),
            "rules[0].when.in",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","in":[1,[2]]}}]),
            "rules[0].when.in[1]",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","exists":"yes"}}]),
            "rules[0].when.exists",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","equals":1,"gte":2}}]),
            "rules[0].when.gte",
        ),
        (
            json!([{"context":"ok","when":{"property":"x","contains":1}}]),
            "rules[0].when.contains",
        ),
        (
            json!([{"context":"ok","when":{"property":"","equals":1}}]),
            "rules[0].when.property",
        ),
        (
            json!([{"context":"ok","when":{"location":"planet","equals":"Mars"}}]),
            "rules[0].when.location",
        ),
        (
            json!([{"context":"ok","when":{"predictive":"iq","gte":1}}]),
            "rules[0].when.predictive",
        ),
        (
            json!([{"context":"ok","when":{"customer_group":""}}]),
            "rules[0].when.customer_group",
        ),
        (
            json!([{"context":"ok","when":{"customer_group":"2","equals":1}}]),
            "rules[0].when.equals",
        ),
        (
            json!([{"context":"ok","when":{"profile":"maybe"}}]),
            "rules[0].when.profile",
        ),
        (
            json!([{"context":"ok","when":{"property":"a","location":"city","equals":1}}]),
            "rules[0].when.property",
        ),
    ];
    for (value, field) in cases {
        let e = error(value.clone());
        assert_eq!(e.field, field, "{value}");
        assert_eq!(e.code, "invalid_rule", "{value}");
        assert!(!e.message.is_empty());
    }
}

#[test]
fn segment_rules_are_refused_as_unsupported() {
    let e = error(json!([{"context":"seg","when":{"segment":"XyZ12"}}]));
    assert_eq!(
        (e.code, e.field.as_str()),
        ("unsupported_rule", "rules[0].when.segment")
    );
}

#[test]
fn too_many_rules_are_refused() {
    let many: Vec<Value> = (0..=MAX_RULES)
        .map(|i| json!({"context": format!("c{i}"), "when": {"profile":"exists"}}))
        .collect();
    assert_eq!(error(Value::Array(many)).field, "rules");
}

#[test]
fn numeric_customer_groups_are_normalized_to_strings() {
    assert_eq!(
        one(json!({"customer_group": 2}))[0].when,
        Condition::CustomerGroup("2".into())
    );
}

#[test]
fn equals_is_strict_without_coercion() {
    let profile = json!({"properties": {"vip": true, "tier": "2", "n": 5, "f": 5.0}});
    assert!(hits(
        json!({"property":"vip","equals":true}),
        profile.clone()
    ));
    assert!(!hits(
        json!({"property":"vip","equals":"true"}),
        profile.clone()
    ));
    assert!(!hits(
        json!({"property":"tier","equals":2}),
        profile.clone()
    ));
    assert!(hits(
        json!({"property":"tier","equals":"2"}),
        profile.clone()
    ));
    assert!(
        hits(json!({"property":"n","equals":5.0}), profile.clone()),
        "5 and 5.0 are the same JSON number"
    );
    assert!(hits(json!({"property":"f","equals":5}), profile.clone()));
    assert!(!hits(json!({"property":"missing","equals":true}), profile));
}

#[test]
fn not_equals_holds_for_missing_values() {
    let profile = json!({"properties": {"tier": "gold", "nothing": null}});
    assert!(hits(
        json!({"property":"tier","not_equals":"silver"}),
        profile.clone()
    ));
    assert!(!hits(
        json!({"property":"tier","not_equals":"gold"}),
        profile.clone()
    ));
    assert!(hits(
        json!({"property":"absent","not_equals":"gold"}),
        profile.clone()
    ));
    assert!(hits(
        json!({"property":"nothing","not_equals":"gold"}),
        profile
    ));
}

#[test]
fn in_matches_any_listed_value() {
    let profile = json!({"properties": {"tier": "gold", "n": 3}});
    assert!(hits(
        json!({"property":"tier","in":["silver","gold"]}),
        profile.clone()
    ));
    assert!(!hits(
        json!({"property":"tier","in":["silver"]}),
        profile.clone()
    ));
    assert!(hits(json!({"property":"n","in":[1,3.0]}), profile.clone()));
    assert!(!hits(json!({"property":"n","in":["3"]}), profile.clone()));
    assert!(!hits(json!({"property":"absent","in":["gold"]}), profile));
}

#[test]
fn gte_and_lte_compare_numbers_only() {
    let profile = json!({"predictive_analytics": {"historic_clv": 500.0, "churn_probability": "0.1"}, "properties": {"age": 30}});
    assert!(hits(
        json!({"predictive":"historic_clv","gte":500}),
        profile.clone()
    ));
    assert!(!hits(
        json!({"predictive":"historic_clv","gte":500.01}),
        profile.clone()
    ));
    assert!(hits(
        json!({"predictive":"historic_clv","lte":500}),
        profile.clone()
    ));
    assert!(
        !hits(
            json!({"predictive":"churn_probability","lte":1}),
            profile.clone()
        ),
        "a numeric string is not a number"
    );
    assert!(
        !hits(json!({"predictive":"total_clv","gte":0}), profile.clone()),
        "missing fails"
    );
    assert!(hits(json!({"property":"age","lte":30}), profile));
}

#[test]
fn exists_tests_presence() {
    let profile = json!({"properties": {"vip": false, "gone": null}});
    assert!(hits(
        json!({"property":"vip","exists":true}),
        profile.clone()
    ));
    assert!(!hits(
        json!({"property":"gone","exists":true}),
        profile.clone()
    ));
    assert!(hits(
        json!({"property":"gone","exists":false}),
        profile.clone()
    ));
    assert!(hits(json!({"property":"absent","exists":false}), profile));
}

#[test]
fn location_reads_the_location_object() {
    let profile = json!({"location": {"country": "United Kingdom", "city": "Leeds"}});
    assert!(hits(
        json!({"location":"country","equals":"United Kingdom"}),
        profile.clone()
    ));
    assert!(!hits(json!({"location":"city","equals":"London"}), profile));
}

#[test]
fn malformed_profiles_never_panic_and_fail_the_tests() {
    let rule = one(json!({"property":"vip","equals":true}));
    for attributes in [
        json!(null),
        json!([]),
        json!("text"),
        json!({"properties": "vip"}),
        json!({"properties": [true]}),
        json!({"properties": null}),
    ] {
        assert!(
            contexts(&rule, Profile::Found(&attributes), None).is_empty(),
            "{attributes}"
        );
    }
    let deep = json!({"properties": {"vip": {"nested": true}}});
    assert!(!hits(json!({"property":"vip","equals":true}), deep.clone()));
    assert!(hits(json!({"property":"vip","exists":true}), deep));
}

#[test]
fn profile_rules_follow_what_klaviyo_said() {
    let r = rules(json!([
        {"context":"known","when":{"profile":"exists"}},
        {"context":"guest","when":{"profile":"missing"}},
        {"context":"any","when":{"property":"x","not_equals":1}}
    ]));
    let found = json!({});
    assert_eq!(
        contexts(&r, Profile::Found(&found), None),
        vec!["known", "any"]
    );
    assert_eq!(
        contexts(&r, Profile::Missing, None),
        vec!["guest"],
        "field rules need a profile"
    );
    assert!(
        contexts(&r, Profile::Unknown, None).is_empty(),
        "degraded: neither profile rule"
    );
}

#[test]
fn customer_group_rules_need_no_profile() {
    let r = rules(json!([{"context":"wholesale","when":{"customer_group":"2"}}]));
    assert_eq!(contexts(&r, Profile::Unknown, Some("2")), vec!["wholesale"]);
    assert!(contexts(&r, Profile::Unknown, Some("3")).is_empty());
    assert!(contexts(&r, Profile::Unknown, None).is_empty());
}

#[test]
fn order_is_kept_duplicates_collapse_and_at_most_ten_come_back() {
    let mut list: Vec<Value> = vec![
        json!({"context":"b","when":{"profile":"exists"}}),
        json!({"context":"a","when":{"profile":"exists"}}),
        json!({"context":"b","when":{"profile":"exists"}}),
    ];
    list.extend((0..12).map(|i| json!({"context": format!("c{i}"), "when": {"profile":"exists"}})));
    let found = json!({});
    let got = contexts(&rules(Value::Array(list)), Profile::Found(&found), None);
    assert_eq!(got.len(), 10);
    assert_eq!(&got[..3], &["b", "a", "c0"]);
    assert_eq!(got[9], "c7");
}

#[test]
fn needs_follow_the_rules() {
    let r = rules(json!([{"context":"w","when":{"customer_group":"2"}}]));
    assert_eq!(profile_needs(&r), ProfileNeeds::default());
    let r = rules(json!([
        {"context":"a","when":{"property":"vip","equals":true}},
        {"context":"b","when":{"predictive":"historic_clv","gte":1}}
    ]));
    let needs = profile_needs(&r);
    assert!(needs.any && needs.properties && needs.predictive && !needs.location);
}
