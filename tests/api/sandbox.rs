//! The emulators refuse what the real services refuse (research/), so what passes against them has a chance
//! against the real platforms.

use std::time::Duration;

use base64::Engine;
use profile_bridge::sandbox::{self, Sandbox, SandboxOptions};
use serde_json::{Value, json};

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        app_url: "http://127.0.0.1:9".into(),
        client_id: "cid".into(),
        client_secret: "csecret".into(),
        klaviyo_profiles: sandbox::demo_profiles(),
        klaviyo_latency: Duration::ZERO,
    })
    .await
    .unwrap()
}

async fn profiles(s: &Sandbox, filter: &str, extra: &str) -> (u16, Value) {
    let url = format!(
        "{}/api/profiles?filter={}{extra}",
        s.klaviyo_url,
        profile_bridge::encoding::encode_component(filter)
    );
    let response = reqwest::Client::new()
        .get(url)
        .header(
            "Authorization",
            format!("Klaviyo-API-Key {}", sandbox::KLAVIYO_KEY),
        )
        .header("revision", "2026-10-15")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn klaviyo_answers_filters_and_refuses_what_klaviyo_refuses() {
    let s = sandbox().await;
    let (status, body) = profiles(
        &s,
        r#"equals(email,"alice@demo.test")"#,
        "&fields%5Bprofile%5D=email%2Cproperties",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["attributes"]["properties"]["vip"], true);
    assert!(
        body["data"][0]["attributes"].get("location").is_none(),
        "sparse fieldsets"
    );
    assert!(
        body["data"][0]["attributes"]
            .get("predictive_analytics")
            .is_none(),
        "predictive only when asked"
    );
    let (_, body) = profiles(
        &s,
        r#"any(email,["alice@demo.test","nobody@demo.test","bob@demo.test"])"#,
        "&page%5Bsize%5D=100&additional-fields%5Bprofile%5D=predictive_analytics",
    )
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        body["data"][0]["attributes"]["predictive_analytics"]["historic_clv"],
        1200.0
    );
    let (_, body) = profiles(&s, &format!(r#"equals(_kx,"{}")"#, sandbox::CAROL_KX), "").await;
    assert_eq!(body["data"][0]["id"], "01JCAROL000000000000000003");

    for (filter, why) in [
        (r#"any(_kx,["a","b"])"#, "any() on _kx"),
        ("equals(email,alice@demo.test)", "unquoted value"),
        (r#"contains(email,"alice")"#, "unknown operator"),
        (r#"equals(phone,"1")"#, "unknown field"),
    ] {
        let (status, body) = profiles(&s, filter, "").await;
        assert_eq!(status, 400, "{why}");
        assert!(
            body["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("Invalid filter"),
            "{why}"
        );
    }
    let (status, _) = profiles(&s, r#"equals(email,"a@b.c")"#, "&page%5Bsize%5D=101").await;
    assert_eq!(status, 400);
    let unauthenticated = reqwest::Client::new()
        .get(format!("{}/api/profiles", s.klaviyo_url))
        .header("revision", "2026-10-15")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn klaviyo_throttles_past_75_calls_in_a_second_with_retry_after() {
    let s = sandbox().await;
    let answers = futures_util::future::join_all(
        // 200 at once: even split across two fixed seconds, at most 150 pass.
        (0..200).map(|_| profiles(&s, r#"equals(email,"bob@demo.test")"#, "")),
    )
    .await;
    let throttled: Vec<&(u16, Value)> = answers
        .iter()
        .filter(|(status, _)| *status == 429)
        .collect();
    assert!(throttled.len() >= 40, "{} throttled", throttled.len());
    assert_eq!(throttled[0].1["errors"][0]["code"], "throttled");
    s.stop().await;
}

fn secured(parent: &str, params: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(parent.as_bytes()).unwrap();
    mac.update(params.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(format!("{hex}{params}"))
}

async fn search(s: &Sandbox, index: &str, key: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/1/indexes/{index}/query", s.algolia_url))
        .header("x-algolia-application-id", sandbox::ALGOLIA_APP)
        .header("x-algolia-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn algolia_checks_secured_keys_and_applies_rules_by_context() {
    let s = sandbox().await;
    let later = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let vip = secured(
        sandbox::ALGOLIA_SEARCH_KEY,
        &format!("restrictIndices=products&ruleContexts=vip&validUntil={later}"),
    );
    let (status, body) = search(
        &s,
        "products",
        &vip,
        json!({"query": "", "ruleContexts": ["guest"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["hits"][0]["objectID"], "p-vip-tent",
        "VIP picks pinned first"
    );
    assert_eq!(
        body["ruleContexts"],
        json!(["vip"]),
        "the key's contexts override the query's"
    );

    let (_, plain) = search(
        &s,
        "products",
        sandbox::ALGOLIA_SEARCH_KEY,
        json!({"query": ""}),
    )
    .await;
    assert_eq!(
        plain["hits"][0]["objectID"], "p-trail-runner",
        "no context: default order"
    );

    let expired = secured(
        sandbox::ALGOLIA_SEARCH_KEY,
        "restrictIndices=products&ruleContexts=vip&validUntil=1000",
    );
    // A shopper editing the contexts inside a genuine key: the HMAC no longer matches.
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&vip)
            .unwrap(),
    )
    .unwrap();
    let tampered = base64::engine::general_purpose::STANDARD
        .encode(decoded.replace("ruleContexts=vip", "ruleContexts=all"));
    let mut bad_digest = decoded.into_bytes();
    bad_digest[0] = if bad_digest[0] == b'0' { b'1' } else { b'0' };
    let bad_digest = base64::engine::general_purpose::STANDARD.encode(bad_digest);
    let wrong_index = secured(
        sandbox::ALGOLIA_SEARCH_KEY,
        &format!("restrictIndices=orders&validUntil={later}"),
    );
    let from_unknown_parent = secured("not-a-key", &format!("validUntil={later}"));
    for (key, index, why) in [
        (expired.as_str(), "products", "expired"),
        (tampered.as_str(), "products", "tampered contexts"),
        (bad_digest.as_str(), "products", "tampered digest"),
        (
            wrong_index.as_str(),
            "products",
            "restricted to another index",
        ),
        (from_unknown_parent.as_str(), "products", "unknown parent"),
        ("garbage", "products", "garbage"),
    ] {
        let (status, body) = search(&s, index, key, json!({"query": ""})).await;
        assert_eq!(status, 403, "{why}: {body}");
    }
    let keys = reqwest::Client::new()
        .get(format!(
            "{}/1/keys/{}",
            s.algolia_url,
            sandbox::ALGOLIA_ADMIN_KEY
        ))
        .header("x-algolia-application-id", sandbox::ALGOLIA_APP)
        .header("x-algolia-api-key", sandbox::ALGOLIA_ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(
        keys["acl"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "addObject")
    );
    s.stop().await;
}

#[tokio::test]
async fn bigcommerce_codes_work_once_and_the_scripts_api_checks_its_token() {
    let s = sandbox().await;
    let cp = &s.control_panel_url;
    let page = reqwest::get(format!("{cp}/apps/install"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = page
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let form = [
        ("client_id", "cid"),
        ("client_secret", "csecret"),
        ("code", code.as_str()),
        ("scope", "store_v2_content"),
        ("grant_type", "authorization_code"),
        ("redirect_uri", "http://127.0.0.1:9/auth"),
        ("context", "stores/demo1"),
    ];
    let http = reqwest::Client::new();
    let first = http
        .post(format!("{cp}/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let token = first.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let again = http
        .post(format!("{cp}/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    let scripts = format!("{cp}/stores/demo1/v3/content/scripts");
    assert_eq!(
        http.get(&scripts).send().await.unwrap().status(),
        401,
        "no X-Auth-Token"
    );
    for i in 0..10 {
        let created = http
            .post(&scripts)
            .header("X-Auth-Token", &token)
            .json(&json!({"name": "s", "kind": "src", "src": format!("https://x/{i}.js")}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 200);
    }
    let eleventh = http
        .post(&scripts)
        .header("X-Auth-Token", &token)
        .json(&json!({"name": "s", "kind": "src", "src": "https://x/11.js"}))
        .send()
        .await
        .unwrap();
    assert_eq!(eleventh.status(), 422, "the 10-script cap");
    s.stop().await;
}
