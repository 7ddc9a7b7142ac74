//! `POST /api/v1/resolve` against wiremock Klaviyo: identity, profile, contexts, secured key, caching,
//! batching, budgets, degraded answers, CORS, limits and the status order.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::resolve_helpers::*;

const JOHN: &str = "01GDDKASAP8TKDDA2GRZDSVP4H";

#[tokio::test]
async fn a_logged_in_vip_gets_profile_contexts_and_a_secured_key_without_any_email() {
    let dir = ProfileDirectory::default();
    dir.add_email(
        "john+vip@example.com",
        profile(JOHN, "John+VIP@example.com", json!({"vip": true})),
    );
    let store = store_with(&dir, &[]).await;

    let token = sign(
        &customer_claims("abc123", "  John+VIP@Example.COM ", Some("2")),
        Algorithm::HS256,
        CLIENT_SECRET,
    );
    let (status, answer, headers) = store
        .resolve(json!({"store_hash": "abc123", "customer_token": token}))
        .await;

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["profile_id"], JOHN);
    assert_eq!(answer["user_token"], JOHN);
    assert_eq!(answer["source"], "customer");
    assert_eq!(
        answer["rule_contexts"],
        json!(["vip", "wholesale", "known"])
    );
    assert_eq!(answer["degraded"], false);
    assert_eq!(answer["ttl"], 900);
    assert_eq!(answer["algolia"]["app_id"], "APPID1");
    assert_eq!(answer["algolia"]["index"], "products");
    let valid_until = answer["algolia"]["valid_until"].as_i64().unwrap();
    assert!((valid_until - now() - 3600).abs() <= 5);
    let key = decode_key(&answer);
    assert!(key.ends_with(&format!("restrictIndices=products&ruleContexts=vip%2Cwholesale%2Cknown&userToken={JOHN}&validUntil={valid_until}")), "{key}");
    assert!(answer["algolia"]["api_key"].as_str().unwrap().len() <= 500);
    for text in [answer.to_string(), key] {
        assert!(
            !text.to_lowercase().contains("example.com"),
            "no email in the answer or key: {text}"
        );
    }
    assert_eq!(headers["access-control-allow-origin"], STOREFRONT);
    assert_eq!(headers["vary"], "Origin");
    assert_eq!(dir.calls(), vec![r#"equals(email,"john+vip@example.com")"#]);
}

#[tokio::test]
async fn odd_emails_are_quoted_escaped_and_url_encoded() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    let token = customer_token("abc123", r#""o\ne"@example.com"#);
    let (status, answer, _) = store
        .resolve(json!({"store_hash": "abc123", "customer_token": token}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["profile_id"], Value::Null);
    assert_eq!(
        dir.calls(),
        vec![r#"equals(email,"\"o\\ne\"@example.com")"#]
    );
    let requests = store.klaviyo.received_requests().await.unwrap();
    let raw = requests.last().unwrap().url.query().unwrap().to_string();
    assert!(
        raw.contains("filter=equals(email%2C%22%5C%22o%5C%5Cne%5C%22%40example.com%22)"),
        "{raw}"
    );
    assert!(
        raw.contains("fields%5Bprofile%5D=email%2Cproperties"),
        "only the fields the rules need: {raw}"
    );
    assert!(
        !raw.contains("additional-fields"),
        "no predictive analytics unless a rule needs them"
    );
}

#[tokio::test]
async fn no_profile_is_cached_briefly_and_gives_the_missing_contexts() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    for _ in 0..3 {
        let (status, answer, _) = store.resolve(json!({"store_hash": "abc123", "customer_token": customer_token("abc123", "new@example.com")})).await;
        assert_eq!(status, 200);
        assert_eq!(answer["profile_id"], Value::Null);
        assert_eq!(answer["rule_contexts"], json!(["guest"]));
        assert_eq!(answer["ttl"], 300);
        assert!(!decode_key(&answer).contains("userToken"));
    }
    assert_eq!(dir.calls().len(), 1, "negative answers are cached");
}

#[tokio::test]
async fn a_hundred_concurrent_identical_misses_make_one_klaviyo_call_even_when_it_is_slow() {
    for delay in [0, 300] {
        let dir = ProfileDirectory::default();
        dir.add_email(
            "john@example.com",
            profile(JOHN, "john@example.com", json!({"vip": true})),
        );
        *dir.delay_ms.lock().unwrap() = delay;
        let store = store_with(&dir, &[("RESOLVE_LIMIT_PER_IP_PER_MIN", "0")]).await;
        let token = customer_token("abc123", "john@example.com");
        let answers = futures_util::future::join_all(
            (0..100)
                .map(|_| store.resolve(json!({"store_hash": "abc123", "customer_token": token}))),
        )
        .await;
        for (status, answer, _) in answers {
            assert_eq!(
                (status, answer["profile_id"].as_str()),
                (200, Some(JOHN)),
                "delay {delay}"
            );
            assert_eq!(answer["degraded"], false);
        }
        assert_eq!(
            dir.calls().len(),
            1,
            "one call for 100 identical misses (delay {delay} ms)"
        );
    }
}

#[tokio::test]
async fn exchange_ids_resolve_with_equals_on_kx_and_never_return_personal_data() {
    let dir = ProfileDirectory::default();
    dir.add_kx(
        "Kx.Ab12_-=",
        profile(JOHN, "john@example.com", json!({"vip": true})),
    );
    let store = store_with(&dir, &[]).await;
    let (status, answer, _) = store
        .resolve(json!({"store_hash": "abc123", "exchange_id": "Kx.Ab12_-="}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["source"], "exchange_id");
    assert_eq!(answer["profile_id"], JOHN);
    assert_eq!(answer["rule_contexts"], json!(["vip", "known"]));
    assert!(!answer.to_string().contains("john"));
    assert_eq!(dir.calls(), vec![r#"equals(_kx,"Kx.Ab12_-=")"#]);
}

#[tokio::test]
async fn an_anonymous_guest_needs_no_klaviyo_call() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    let (status, answer, _) = store.resolve(json!({"store_hash": "abc123"})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["source"], "none");
    assert_eq!(answer["rule_contexts"], json!(["guest"]));
    assert_eq!(
        (answer["profile_id"].clone(), answer["ttl"].clone()),
        (Value::Null, json!(300))
    );
    assert!(decode_key(&answer).contains("ruleContexts=guest&validUntil="));
    assert!(dir.calls().is_empty());
}

#[tokio::test]
async fn a_slow_klaviyo_gives_a_degraded_answer_and_the_lookup_still_fills_the_cache() {
    let dir = ProfileDirectory::default();
    dir.add_email(
        "john@example.com",
        profile(JOHN, "john@example.com", json!({"vip": true})),
    );
    *dir.delay_ms.lock().unwrap() = 1200;
    let store = store_with(&dir, &[]).await;
    let token = customer_token("abc123", "john@example.com");
    let started = std::time::Instant::now();
    let (status, answer, _) = store
        .resolve(json!({"store_hash": "abc123", "customer_token": token}))
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1100),
        "answered within the wait: {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200);
    assert_eq!(answer["degraded"], true);
    assert_eq!(answer["ttl"], 30);
    assert_eq!(answer["profile_id"], Value::Null);
    assert_eq!(
        answer["source"], "customer",
        "source is the identity presented"
    );
    assert_eq!(
        answer["rule_contexts"],
        json!([]),
        "neither profile rule when degraded"
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, answer, _) = store
        .resolve(json!({"store_hash": "abc123", "customer_token": token}))
        .await;
    assert_eq!(
        answer["profile_id"], JOHN,
        "the background lookup filled the cache"
    );
    assert_eq!(dir.calls().len(), 1);
}

#[tokio::test]
async fn klaviyo_failures_and_throttling_give_degraded_answers_and_retry_after_is_honoured() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    dir.fail_with(Some(
        wiremock::ResponseTemplate::new(429)
            .insert_header("Retry-After", "3")
            .insert_header("content-type", "application/vnd.api+json")
            .set_body_json(json!({"errors": [{"status": 429, "code": "throttled", "title": "Request was throttled."}]})),
    ));
    for i in 0..5 {
        let (status, answer, _) = store.resolve(json!({"store_hash": "abc123", "customer_token": customer_token("abc123", &format!("s{i}@example.com"))})).await;
        assert_eq!(
            (status, answer["degraded"].as_bool(), answer["ttl"].as_i64()),
            (200, Some(true), Some(30))
        );
    }
    assert_eq!(dir.calls().len(), 1, "no call during Retry-After");
    dir.fail_with(None);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, answer, _) = store.resolve(json!({"store_hash": "abc123", "customer_token": customer_token("abc123", "after@example.com")})).await;
    assert_eq!(answer["degraded"], false, "calls resume after Retry-After");

    for failure in [
        wiremock::ResponseTemplate::new(503).set_body_string("<html>Service Unavailable</html>"),
        wiremock::ResponseTemplate::new(403)
            .insert_header("content-type", "text/html")
            .set_body_string("<html>Just a moment...</html>"),
        wiremock::ResponseTemplate::new(200).set_body_string("not json"),
    ] {
        dir.fail_with(Some(failure));
        let email = format!("f{}@example.com", dir.calls().len());
        let (status, answer, _) = store
            .resolve(
                json!({"store_hash": "abc123", "customer_token": customer_token("abc123", &email)}),
            )
            .await;
        assert_eq!((status, answer["degraded"].as_bool()), (200, Some(true)));
    }
}

#[tokio::test]
async fn a_failing_account_trips_the_breaker() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    dir.fail_with(Some(wiremock::ResponseTemplate::new(500)));
    for i in 0..12 {
        let (_, answer, _) = store.resolve(json!({"store_hash": "abc123", "customer_token": customer_token("abc123", &format!("b{i}@example.com"))})).await;
        assert_eq!(answer["degraded"], true);
    }
    assert_eq!(
        dir.calls().len(),
        5,
        "the breaker stopped calls after 5 failures"
    );
}

#[tokio::test]
async fn fifty_concurrent_new_shoppers_share_one_any_email_call_when_the_budget_is_tight() {
    let dir = ProfileDirectory::default();
    for i in (0..50).step_by(2) {
        dir.add_email(
            &format!("shopper{i}@example.com"),
            profile(
                &format!("PROFILE{i:02}"),
                &format!("Shopper{i}@Example.com"),
                json!({}),
            ),
        );
    }
    let store = store_with(
        &dir,
        &[
            ("KLAVIYO_BUDGET_PER_MIN", "6"),
            ("RESOLVE_LIMIT_PER_IP_PER_MIN", "0"),
        ],
    )
    .await;
    // Two calls already spent this minute: the budget is tight, so the next batch waits to gather.
    for warm in ["warm1@example.com", "warm2@example.com"] {
        store
            .resolve(
                json!({"store_hash": "abc123", "customer_token": customer_token("abc123", warm)}),
            )
            .await;
    }
    let answers = futures_util::future::join_all((0..50).map(|i| {
        let token = customer_token("abc123", &format!("shopper{i}@example.com"));
        let store = &store;
        async move {
            (
                i,
                store
                    .resolve(json!({"store_hash": "abc123", "customer_token": token}))
                    .await,
            )
        }
    }))
    .await;
    for (i, (status, answer, _)) in answers {
        assert_eq!(status, 200);
        assert_eq!(answer["degraded"], false, "shopper {i}");
        if i % 2 == 0 {
            assert_eq!(
                answer["profile_id"],
                format!("PROFILE{i:02}"),
                "shopper {i} got their own profile"
            );
        } else {
            assert_eq!(answer["profile_id"], Value::Null, "shopper {i} has none");
        }
    }
    let calls = dir.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert!(
        calls[2].starts_with("any(email,[") && calls[2].matches('@').count() == 50,
        "{}",
        calls[2]
    );
    let request = store.klaviyo.received_requests().await.unwrap();
    assert!(
        request
            .last()
            .unwrap()
            .url
            .query()
            .unwrap()
            .contains("page%5Bsize%5D=50")
    );
}

#[tokio::test]
async fn a_burst_of_new_exchange_ids_never_exceeds_the_per_second_budget() {
    let dir = ProfileDirectory::default();
    let store = store_with(
        &dir,
        &[
            ("KLAVIYO_BUDGET_PER_SEC", "5"),
            ("RESOLVE_LIMIT_PER_IP_PER_MIN", "0"),
        ],
    )
    .await;
    let mut degraded = 0;
    for round in 0..3 {
        let answers = futures_util::future::join_all((0..15).map(|i| {
            let store = &store;
            async move { store.resolve(json!({"store_hash": "abc123", "exchange_id": format!("kx{round}x{i}.abc")})).await }
        }))
        .await;
        degraded += answers
            .iter()
            .filter(|(_, a, _)| a["degraded"] == true)
            .count();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let times = dir.times();
    assert!(times.len() >= 5, "the budget was used: {}", times.len());
    assert!(
        degraded >= 45 - times.len(),
        "the rest were answered degraded at once"
    );
    for (i, start) in times.iter().enumerate() {
        let inside = times[i..]
            .iter()
            .filter(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(inside <= 5, "{inside} calls within one second");
    }
}

#[tokio::test]
async fn predictive_analytics_are_requested_only_when_a_rule_needs_them() {
    let dir = ProfileDirectory::default();
    dir.add_email(
        "big@example.com",
        profile(JOHN, "big@example.com", json!({})),
    );
    let store = store_with(&dir, &[]).await;
    let rules = json!({"rules": [{"context": "big-spender", "when": {"predictive": "historic_clv", "gte": 500}}]});
    let response = store
        .app
        .http
        .put(format!("{}/api/v1/settings/rules", store.app.address))
        .bearer_auth(&store.session)
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, answer, _) = store.resolve(json!({"store_hash": "abc123", "customer_token": customer_token("abc123", "big@example.com")})).await;
    assert_eq!(answer["rule_contexts"], json!(["big-spender"]));
    let query = store
        .klaviyo
        .received_requests()
        .await
        .unwrap()
        .last()
        .unwrap()
        .url
        .query()
        .unwrap()
        .to_string();
    assert!(
        query.contains("additional-fields%5Bprofile%5D=predictive_analytics"),
        "{query}"
    );
    assert!(
        query.contains("fields%5Bprofile%5D=email%2Cpredictive_analytics"),
        "{query}"
    );
}

#[tokio::test]
async fn bad_customer_tokens_are_401_even_with_an_exchange_id_and_hs512_is_accepted() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    let good = customer_claims("abc123", "john@example.com", None);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        sign(&c, Algorithm::HS256, CLIENT_SECRET)
    };
    let mut other_store = good.clone();
    other_store["store_hash"] = json!("zzz999");
    other_store["sub"] = json!("zzz999");
    let mut neither_id = good.clone();
    neither_id["aud"] = json!("x");
    neither_id["application_id"] = json!("y");
    let cases = vec![
        ("wrong secret", sign(&good, Algorithm::HS256, "wrong")),
        ("expired", with("exp", json!(now() - 60))),
        (
            "store mismatch",
            sign(&other_store, Algorithm::HS256, CLIENT_SECRET),
        ),
        (
            "wrong operation",
            with("operation", json!("customer_login")),
        ),
        ("wrong iss", with("iss", json!("bc"))),
        ("HS384", sign(&good, Algorithm::HS384, CLIENT_SECRET)),
        ("alg none", unsigned(&good)),
        (
            "neither aud nor application_id",
            sign(&neither_id, Algorithm::HS256, CLIENT_SECRET),
        ),
        ("garbage", "x.y.z".into()),
        ("empty", String::new()),
    ];
    for (case, token) in cases {
        let (status, body, _) = store
            .resolve(
                json!({"store_hash": "abc123", "customer_token": token, "exchange_id": "kx.abc"}),
            )
            .await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"]["code"], "invalid_customer_token");
    }
    let mut by_app_id = good.clone();
    by_app_id["aud"] = json!("other");
    by_app_id["application_id"] = json!(CLIENT_ID);
    for token in [
        sign(&good, Algorithm::HS512, CLIENT_SECRET),
        sign(&by_app_id, Algorithm::HS256, CLIENT_SECRET),
    ] {
        let (status, _, _) = store
            .resolve(json!({"store_hash": "abc123", "customer_token": token}))
            .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn request_validation_follows_the_status_order() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    let big = json!({"store_hash": "nosuch", "customer_token": "x".repeat(9000)});
    let cases = vec![
        (big, 413, "body_too_large"),
        (
            json!({"store_hash": "abc123", "email": "a@b.c"}),
            400,
            "invalid_json",
        ),
        (
            json!({"store_hash": "ABC!", "customer_token": "bad"}),
            400,
            "invalid_store_hash",
        ),
        (
            json!({"store_hash": "abc123", "exchange_id": "has space"}),
            400,
            "invalid_exchange_id",
        ),
        (json!({"store_hash": 5}), 400, "invalid_json"),
        (
            json!({"store_hash": "nosuch1", "customer_token": "bad"}),
            404,
            "unknown_store",
        ),
        (
            json!({"store_hash": "abc123", "customer_token": "bad", "exchange_id": "kx.abc"}),
            401,
            "invalid_customer_token",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer, _) = store.resolve(body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body:.80}"
        );
    }
    let raw = store
        .app
        .http
        .post(format!("{}/api/v1/resolve", store.app.address))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let (status, _, _) = store
        .resolve_from(json!({"store_hash": "abc123"}), None)
        .await;
    assert_eq!(status, 200, "requests without Origin are processed");
}

#[tokio::test]
async fn cors_allows_only_the_stores_storefront_origins() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    let preflight = |origin: &'static str| {
        store
            .app
            .http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/resolve", store.app.address),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let ok = preflight("https://outlet.example.com").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://outlet.example.com"
    );
    assert!(
        ok.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("content-type")
    );
    assert_eq!(ok.headers()["vary"], "Origin");
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let (status, body, headers) = store
        .resolve_from(
            json!({"store_hash": "abc123"}),
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    assert!(headers.get("access-control-allow-origin").is_none());
    assert_eq!(headers["vary"], "Origin");
    let (status, _, headers) = store
        .resolve_from(
            json!({"store_hash": "abc123"}),
            Some("https://store-abc123.mybigcommerce.com"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://store-abc123.mybigcommerce.com"
    );
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_escape_the_per_ip_limit() {
    let dir = ProfileDirectory::default();
    let store = store_with(
        &dir,
        &[
            ("RESOLVE_LIMIT_PER_IP_PER_MIN", "5"),
            ("TRUSTED_PROXY_HOPS", "0"),
        ],
    )
    .await;
    for i in 0..5 {
        let response = store
            .app
            .http
            .post(format!("{}/api/v1/resolve", store.app.address))
            .header("X-Forwarded-For", format!("10.0.0.{i}"))
            .json(&json!({"store_hash": "abc123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
    }
    let limited = store
        .app
        .http
        .post(format!("{}/api/v1/resolve", store.app.address))
        .header("X-Forwarded-For", "10.9.9.9")
        .json(&json!({"store_hash": "abc123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limited"
    );
}

#[tokio::test]
async fn a_trusted_proxy_hop_gives_each_client_its_own_bucket() {
    let dir = ProfileDirectory::default();
    let store = store_with(
        &dir,
        &[
            ("RESOLVE_LIMIT_PER_IP_PER_MIN", "2"),
            ("TRUSTED_PROXY_HOPS", "1"),
        ],
    )
    .await;
    for client in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        for _ in 0..2 {
            let response = store
                .app
                .http
                .post(format!("{}/api/v1/resolve", store.app.address))
                .header("X-Forwarded-For", format!("6.6.6.6, {client}"))
                .json(&json!({"store_hash": "abc123"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{client}");
        }
    }
}

#[tokio::test]
async fn a_store_without_klaviyo_answers_profile_free_contexts_without_degrading() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    store
        .app
        .http
        .delete(format!("{}/api/v1/settings/klaviyo", store.app.address))
        .bearer_auth(&store.session)
        .send()
        .await
        .unwrap();
    let token = sign(
        &customer_claims("abc123", "john@example.com", Some("2")),
        Algorithm::HS256,
        CLIENT_SECRET,
    );
    let (status, answer, _) = store
        .resolve(json!({"store_hash": "abc123", "customer_token": token}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["degraded"], false);
    assert_eq!(answer["rule_contexts"], json!(["wholesale"]));
    assert!(dir.calls().is_empty());
}

#[tokio::test]
async fn new_credentials_and_uninstall_invalidate_cached_profiles() {
    let dir = ProfileDirectory::default();
    dir.add_email(
        "john@example.com",
        profile(JOHN, "john@example.com", json!({"vip": true})),
    );
    let store = store_with(&dir, &[]).await;
    let body = json!({"store_hash": "abc123", "customer_token": customer_token("abc123", "john@example.com")});
    store.resolve(body.clone()).await;
    store.resolve(body.clone()).await;
    assert_eq!(dir.calls().len(), 1);
    let put = store
        .app
        .http
        .put(format!("{}/api/v1/settings/klaviyo", store.app.address))
        .bearer_auth(&store.session)
        .json(&json!({"private_key": "pk_another0123456789abcdefghijklmnopq"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let before = dir.calls().len();
    store.resolve(body.clone()).await;
    assert_eq!(
        dir.calls().len(),
        before + 1,
        "another key, another account: looked up again"
    );

    store
        .app
        .uninstall(&signed(&callback_claims("abc123", 1, 1)))
        .await;
    let (status, answer, _) = store.resolve(body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("unknown_store"))
    );
}

#[tokio::test]
async fn the_admin_preview_runs_the_same_resolver() {
    let dir = ProfileDirectory::default();
    dir.add_email(
        "john@example.com",
        profile(JOHN, "john@example.com", json!({"vip": true})),
    );
    let store = store_with(&dir, &[]).await;
    let preview = |email: &str| {
        store
            .app
            .http
            .post(format!("{}/api/v1/preview", store.app.address))
            .bearer_auth(&store.session)
            .json(&json!({"email": email}))
            .send()
    };
    let answer: Value = preview(" John@Example.com ")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["profile_id"], JOHN);
    assert_eq!(answer["rule_contexts"], json!(["vip", "known"]));
    assert!(answer.get("api_key").is_none() && !answer.to_string().contains("api_key"));
    let bad = preview("not an email").await.unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["field"],
        "email"
    );
}

#[tokio::test]
async fn resolve_metrics_are_exported() {
    let dir = ProfileDirectory::default();
    let store = store_with(&dir, &[]).await;
    store.resolve(json!({"store_hash": "abc123", "customer_token": customer_token("abc123", "m@example.com")})).await;
    store.resolve(json!({"store_hash": "abc123", "customer_token": customer_token("abc123", "m@example.com")})).await;
    let text = store.app.get("/metrics").await.text().await.unwrap();
    for needle in [
        "resolve_outcomes_total{outcome=\"no_profile\"}",
        "profile_cache_total{result=\"hit\"}",
        "profile_cache_total{result=\"miss\"}",
        "klaviyo_calls_total{status=\"200\"}",
        "resolve_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}
