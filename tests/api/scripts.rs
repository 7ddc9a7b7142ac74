use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_bigcommerce::{FakeBigCommerce, channel};
use crate::helpers::*;

async fn settings(app: &TestApp, session: &str) -> Value {
    let response = app.get_settings(Some(session)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn repair(app: &TestApp, session: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/api/v1/script/repair", app.address))
        .bearer_auth(session)
        .send()
        .await
        .unwrap()
}

async fn put_script(app: &TestApp, session: &str, body: Value) -> reqwest::Response {
    app.http
        .put(format!("{}/api/v1/settings/script", app.address))
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn open(app: &TestApp) -> (reqwest::StatusCode, String) {
    let response = app.load(&signed(&callback_claims("abc123", 1, 1))).await;
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn install_creates_one_script_per_active_or_prelaunch_storefront_with_the_documented_fields()
{
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    let session = app.install("abc123", "tok").await;

    let scripts = bc.scripts();
    assert_eq!(scripts.len(), 2, "{scripts:#?}");
    let version = scripts[0]["src"]
        .as_str()
        .unwrap()
        .split("v=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    for (script, channel_id) in scripts.iter().zip([1, 2]) {
        assert_eq!(script["name"], "Profile Bridge");
        assert_eq!(script["kind"], "src");
        assert_eq!(script["load_method"], "defer");
        assert_eq!(script["location"], "footer");
        assert_eq!(script["visibility"], "storefront");
        assert_eq!(script["auto_uninstall"], true);
        assert_eq!(script["consent_category"], "targeting");
        assert_eq!(script["channel_id"], channel_id);
        assert_eq!(
            script["src"],
            format!("https://pb.example.test/storefront.js?v={version}&store=abc123")
        );
        assert!(script.get("html").is_none());
    }
    let body = settings(&app, &session).await;
    assert_eq!(body["script"]["consent_category"], "targeting");
    let channels = body["script"]["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2);
    assert!(
        channels
            .iter()
            .all(|c| c["installed"] == true && c["drift"] == false && c["last_error"].is_null())
    );

    let served = app
        .get(&format!("/storefront.js?v={version}&store=abc123"))
        .await;
    assert_eq!(served.status(), 200);
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
}

#[tokio::test]
async fn reinstall_and_load_never_duplicate_and_find_scripts_by_name_when_the_uuid_is_unknown() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    app.install("abc123", "tok").await;
    app.install("abc123", "tok").await;
    assert_eq!(open(&app).await.0, 200);
    assert_eq!(bc.scripts().len(), 2);
    assert_eq!(bc.count("POST /v3/content/scripts"), 2);

    // Our own record lost (e.g. uninstall without BigCommerce removing them): found by name, updated in place.
    sqlx::query("DELETE FROM storefront_channels")
        .execute(&app.pool)
        .await
        .unwrap();
    app.install("abc123", "tok").await;
    assert_eq!(bc.scripts().len(), 2);
    assert_eq!(bc.count("POST /v3/content/scripts"), 2);
}

#[tokio::test]
async fn load_reports_drift_without_restoring_and_repair_restores() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    let session = app.install("abc123", "tok").await;

    // The merchant deletes channel 1's script and re-categorizes channel 2's in Script Manager.
    bc.with(|s| {
        s.scripts.retain(|x| x["channel_id"] != 1);
        s.scripts[0]["consent_category"] = json!("analytics");
    });
    let (status, html) = open(&app).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Changed in Script Manager"),
        "the admin page shows the drift"
    );
    assert_eq!(bc.scripts().len(), 1, "load does not restore");
    let body = settings(&app, &session).await;
    let channels = body["script"]["channels"].as_array().unwrap();
    assert!(
        channels
            .iter()
            .all(|c| c["drift"] == true && c["installed"] == false),
        "{channels:#?}"
    );

    let repaired = repair(&app, &session).await;
    assert_eq!(repaired.status(), 200);
    let body: Value = repaired.json().await.unwrap();
    assert_eq!(body["warnings"], json!([]));
    assert!(
        body["script"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["drift"] == false && c["installed"] == true)
    );
    let scripts = bc.scripts();
    assert_eq!(scripts.len(), 2);
    assert!(scripts.iter().all(|s| s["consent_category"] == "targeting"));
}

#[tokio::test]
async fn load_creates_scripts_only_for_new_channels() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    app.install("abc123", "tok").await;
    let puts_before = bc.count("PUT ");
    bc.with(|s| {
        s.channels
            .push(channel(7, "New brand", "storefront", "active"))
    });
    assert_eq!(open(&app).await.0, 200);
    let channels: Vec<i64> = bc
        .scripts()
        .iter()
        .map(|s| s["channel_id"].as_i64().unwrap())
        .collect();
    assert_eq!(channels, vec![1, 2, 7]);
    assert_eq!(
        bc.count("PUT "),
        puts_before,
        "existing scripts untouched on load"
    );
}

#[tokio::test]
async fn a_429_then_success_still_installs_the_scripts() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    bc.with(|s| s.throttle = 2);
    app.install("abc123", "tok").await;
    assert_eq!(bc.scripts().len(), 2);
}

#[tokio::test]
async fn a_scripts_api_failure_never_fails_the_install_is_shown_and_retried_at_the_next_load() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    bc.with(|s| s.scripts_fail_with = Some(403));
    let session = app.install("abc123", "tok").await;

    let body = settings(&app, &session).await;
    let channels = body["script"]["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2);
    for c in channels {
        assert_eq!(c["installed"], false);
        assert!(c["last_error"].as_str().unwrap().contains("403"), "{c}");
    }
    let (status, html) = open(&app).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Not installed") && html.contains("Content scope"),
        "the admin page shows the failure"
    );

    bc.with(|s| s.scripts_fail_with = None);
    let (status, html) = open(&app).await;
    assert_eq!(status, 200);
    assert_eq!(bc.scripts().len(), 2, "retried at the next load");
    assert!(!html.contains("Not installed"));
    let body = settings(&app, &session).await;
    assert!(
        body["script"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["installed"] == true && c["last_error"].is_null())
    );
}

#[tokio::test]
async fn a_5xx_on_create_is_recorded_not_retried_and_the_install_succeeds() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    bc.with(|s| s.create_fails_with = Some(500));
    let session = app.install("abc123", "tok").await;
    assert_eq!(
        bc.count("POST /v3/content/scripts"),
        2,
        "one attempt per channel: a POST is not retried on 5xx"
    );
    let body = settings(&app, &session).await;
    for channel in body["script"]["channels"].as_array().unwrap() {
        assert!(
            channel["last_error"].as_str().unwrap().contains("500"),
            "{channel}"
        );
    }
    // A failing list (a GET) is retried, then recorded.
    bc.with(|s| {
        s.create_fails_with = None;
        s.scripts_fail_with = Some(503);
    });
    let lists_before = bc.count("GET /v3/content/scripts");
    assert_eq!(open(&app).await.0, 200);
    assert_eq!(bc.count("GET /v3/content/scripts") - lists_before, 3);
}

#[tokio::test]
async fn bigcommerce_retries_inside_one_request_stay_within_five_seconds() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    bc.with(|s| {
        s.throttle = 1000;
        s.throttle_reset_ms = 1500;
    });
    let started = Instant::now();
    let session = app.install("abc123", "tok").await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(6000), "install took {took:?}");
    let body = settings(&app, &session).await;
    assert!(
        body["script"]["sync_error"]
            .as_str()
            .unwrap()
            .contains("rate limit"),
        "{body}"
    );
}

#[tokio::test]
async fn the_consent_category_is_validated_saved_audited_and_applied_to_every_script() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    let session = app.install("abc123", "tok").await;

    let bad = put_script(&app, &session, json!({"consent_category": "marketing"})).await;
    assert_eq!(bad.status(), 422);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["field"], "consent_category");
    let unknown = put_script(
        &app,
        &session,
        json!({"consent_category": "functional", "extra": 1}),
    )
    .await;
    assert_eq!(unknown.status(), 400);
    assert!(
        bc.scripts()
            .iter()
            .all(|s| s["consent_category"] == "targeting"),
        "nothing changed on failure"
    );

    let ok = put_script(&app, &session, json!({"consent_category": "functional"})).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["script"]["consent_category"], "functional");
    assert!(
        bc.scripts()
            .iter()
            .all(|s| s["consent_category"] == "functional")
    );
    let audit: Value =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'settings_changed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        json!({"setting": "script.consent_category", "from": "targeting", "to": "functional"})
    );
    // A later /load sees no drift: the category on BigCommerce is the chosen one.
    let (_, html) = open(&app).await;
    assert!(!html.contains("Changed in Script Manager"));
}

#[tokio::test]
async fn storefront_origins_are_stored_per_store_and_forgotten_on_uninstall() {
    let app = spawn_app().await;
    FakeBigCommerce::mount(&app.bc, "tok").await;
    app.install("abc123", "tok").await;
    let origins: Vec<String> =
        sqlx::query_scalar("SELECT origin FROM store_origins ORDER BY origin")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        origins,
        vec![
            "https://outlet.example.com",
            "https://shop.example.com",
            "https://store-abc123.mybigcommerce.com"
        ],
        "store URLs and storefront-channel site URLs; not the marketplace channel"
    );
    app.uninstall(&signed(&callback_claims("abc123", 1, 1)))
        .await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM store_origins")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let channels: i64 = sqlx::query_scalar("SELECT count(*) FROM storefront_channels")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((left, channels), (0, 0));
}

#[tokio::test]
async fn the_storefront_script_is_served_with_its_type_etag_and_cache_rules() {
    let app = spawn_app().await;
    let response = app.get("/storefront.js?v=old&store=abc123").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=300",
        "a stale version is not cached long"
    );
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let body = response.text().await.unwrap();
    assert!(body.contains(&format!("var CLIENT_ID = \"{CLIENT_ID}\";")));
    assert!(!body.contains("__PB_CLIENT_ID__"));
    let again = app
        .http
        .get(format!("{}/storefront.js", app.address))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn the_admin_page_shows_each_channel_and_its_error_in_chromium() {
    let app = spawn_app().await;
    let bc = FakeBigCommerce::mount(&app.bc, "tok").await;
    app.install("abc123", "tok").await;
    // Channel 2's script vanishes; a new channel cannot get one because the Scripts API now refuses.
    bc.with(|s| {
        s.scripts.retain(|x| x["channel_id"] != 2);
        s.channels
            .push(channel(9, "Pop-up shop", "storefront", "active"));
        s.create_fails_with = Some(500);
    });
    let url = |app: &TestApp| {
        format!(
            "{}/load?signed_payload_jwt={}",
            app.address,
            signed(&callback_claims("abc123", 1, 1))
        )
    };

    let dom = crate::browser::dump_dom(&url(&app)).await;
    assert!(
        dom.contains(r#"data-state="ready""#),
        "the page script reached the API with its session:\n{dom}"
    );
    assert!(dom.contains("Main store") && dom.contains("Installed"));
    assert!(dom.contains("Changed in Script Manager"));
    assert!(dom.contains("Pop-up shop") && dom.contains("BigCommerce answered 500"));

    for (name, width) in [
        ("admin-scripts-wide.png", 1200),
        ("admin-scripts-narrow.png", 420),
    ] {
        crate::browser::screenshot(&url(&app), name, width, 1000).await;
    }
}
