//! The admin page as the control panel shows it: inside an iframe of another origin (allowed through
//! ADMIN_FRAME_ANCESTORS), driven like a merchant in headless Chromium. Screenshots go to test-artifacts/.

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fake_bigcommerce::FakeBigCommerce;
use crate::helpers::*;
use crate::webdriver::Browser;

/// A stand-in control panel on another origin (`localhost` vs the app's `127.0.0.1`, another port).
/// Returns its origin and a slot for the app's address (known only once the app is built with that origin).
async fn control_panel() -> (String, std::sync::Arc<std::sync::Mutex<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let slot = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let shared = slot.clone();
    let server = HttpServer::new(move || {
        let shared = shared.clone();
        App::new().route(
            "/manage/app",
            web::get().to(move || {
                let app_address = shared.lock().unwrap().clone();
                let src = format!("{app_address}/load?signed_payload_jwt={}", signed(&callback_claims("abc123", 1, 1)));
                async move {
                    HttpResponse::Ok().content_type("text/html").body(format!(
                        r#"<!doctype html><meta charset="utf-8"><title>Control panel</title><body style="margin:0;background:#f6f7fc">
                        <div style="height:56px;background:#34313f;color:#fff;font:16px sans-serif;padding:16px">BigCommerce · Apps · Profile Bridge</div>
                        <iframe id="app" src="{src}" style="border:0;width:100%;height:1700px"></iframe></body>"#
                    ))
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://localhost:{port}"), slot)
}

async fn platforms() -> MockServer {
    let mock = MockServer::start().await;
    for p in ["/api/profiles", "/api/segments", "/api/lists"] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": [], "links": {}})),
            )
            .mount(&mock)
            .await;
    }
    Mock::given(method("GET"))
        .and(path_regex("^/1/keys/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": "k", "acl": ["search"], "indexes": ["products"]})),
        )
        .mount(&mock)
        .await;
    mock
}

#[tokio::test]
async fn a_merchant_configures_the_store_inside_the_control_panel_iframe_and_finds_it_saved() {
    let mock = platforms().await;
    let (panel, app_slot) = control_panel().await;
    let app = spawn_app_with(|env| {
        env.insert("KLAVIYO_API_URL".into(), mock.uri());
        env.insert("ALGOLIA_API_URL".into(), mock.uri());
        env.insert("ADMIN_FRAME_ANCESTORS".into(), panel.clone());
    })
    .await;
    *app_slot.lock().unwrap() = app.address.clone();
    FakeBigCommerce::mount(&app.bc, "tok").await;
    app.install("abc123", "tok").await;
    let browser = Browser::start(1280, 1000).await;

    browser.goto(&format!("{panel}/manage/app")).await;
    browser.enter_frame("#app").await;
    browser
        .wait_for(r#"document.querySelector('#pb-api-state').dataset.state === 'ready'"#)
        .await;
    browser.screenshot("admin-1-fresh.png").await;

    // Klaviyo: a wrong key first (refused locally), then a real-looking one.
    browser.type_into("#private_key", "6CHARS").await;
    browser.click("#klaviyo-form button[type=submit]").await;
    browser
        .wait_for(r#"!document.querySelector('[data-error-for="private_key"]').hidden"#)
        .await;
    assert!(
        browser
            .text(r#"[data-error-for="private_key"]"#)
            .await
            .contains("pk_")
    );
    browser
        .type_into("#private_key", "pk_0123456789abcdef0123456789abcdefa1b2")
        .await;
    browser.click("#klaviyo-form button[type=submit]").await;
    browser
        .wait_for(r#"document.querySelector('#klaviyo-status').textContent.includes('pk_…a1b2')"#)
        .await;

    browser.type_into("#app_id", "APPID123").await;
    browser.type_into("#index", "products").await;
    browser
        .type_into("#search_key", "0123456789abcdef0123456789abcdef")
        .await;
    browser.click("#algolia-form button[type=submit]").await;
    browser
        .wait_for(r#"document.querySelector('#algolia-status').textContent.includes('products')"#)
        .await;

    // A rule with a bad context is flagged as you type; fixed, it saves.
    browser.click("#rules-add").await;
    browser
        .type_into(r#"input[name="rules[0].context"]"#, "vip club")
        .await;
    browser.wait_for(r#"document.querySelector('input[name="rules[0].context"]').getAttribute('aria-invalid') === 'true'"#).await;
    browser
        .type_into(r#"input[name="rules[0].context"]"#, "vip")
        .await;
    browser
        .type_into(r#"input[name="rules[0].when.property"]"#, "vip")
        .await;
    browser
        .type_into(r#"input[name="rules[0].when.equals"]"#, "true")
        .await;
    browser.click("#rules-add").await;
    browser
        .type_into(r#"input[name="rules[1].context"]"#, "wholesale")
        .await;
    browser.script(r#"var s = document.querySelector('select[name="rules[1].when.subject"]'); s.value = 'customer_group'; s.dispatchEvent(new Event('change'));"#).await;
    browser
        .type_into(r#"input[name="rules[1].when.customer_group"]"#, "2")
        .await;
    browser.click("#rules-save").await;
    browser
        .wait_for(r#"document.querySelector('#pb-notice').textContent === 'Rules saved.'"#)
        .await;
    browser
        .wait_for(r#"document.querySelector('[data-step="rules"]').dataset.done === 'true'"#)
        .await;
    browser.screenshot("admin-2-configured.png").await;

    // Reopen the app (a fresh /load, as the control panel does) and find everything persisted.
    browser.leave_frames().await;
    browser.goto(&format!("{panel}/manage/app")).await;
    browser.enter_frame("#app").await;
    browser
        .wait_for(r#"document.querySelector('#pb-api-state').dataset.state === 'ready'"#)
        .await;
    assert!(
        browser
            .text("#klaviyo-status")
            .await
            .contains("Connected with private key pk_…a1b2")
    );
    assert!(
        browser
            .text("#algolia-status")
            .await
            .contains("Searching index products of application APPID123")
    );
    let contexts = browser
        .script(r#"return Array.from(document.querySelectorAll('input[name$=".context"]')).map(function (i) { return i.value; });"#)
        .await;
    assert_eq!(contexts, json!(["vip", "wholesale"]));
    assert_eq!(
        browser
            .script(r#"return document.querySelector('input[name="rules[0].when.equals"]').value;"#)
            .await,
        json!("true")
    );
    let stored: serde_json::Value = sqlx::query_scalar("SELECT rules FROM store_settings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        stored,
        json!([
            {"context": "vip", "when": {"property": "vip", "equals": true}},
            {"context": "wholesale", "when": {"customer_group": "2"}}
        ])
    );
    let all_done = browser
        .script(r#"return Array.from(document.querySelectorAll('#pb-checklist li')).map(function (li) { return li.dataset.done; });"#)
        .await;
    assert_eq!(all_done, json!(["true", "true", "true", "true"]));
    browser.screenshot("admin-3-reopened.png").await;

    // The user is removed while the page is open: the next action says so instead of failing silently.
    app.remove_user(&signed(&callback_claims("abc123", 1, 1)))
        .await;
    browser.click("#rules-save").await;
    browser.wait_for(r#"document.querySelector('#pb-alert').textContent.includes('Session expired — reopen Profile Bridge from the Apps menu')"#).await;
    browser.screenshot("admin-4-session-expired.png").await;
    browser.quit().await;
}

#[tokio::test]
async fn the_admin_page_fits_a_narrow_iframe() {
    let mock = platforms().await;
    let app = spawn_app_with(|env| {
        env.insert("KLAVIYO_API_URL".into(), mock.uri());
        env.insert("ALGOLIA_API_URL".into(), mock.uri());
    })
    .await;
    FakeBigCommerce::mount(&app.bc, "tok").await;
    app.install("abc123", "tok").await;
    let browser = Browser::start(400, 900).await;
    browser
        .goto(&format!(
            "{}/load?signed_payload_jwt={}",
            app.address,
            signed(&callback_claims("abc123", 1, 1))
        ))
        .await;
    browser
        .wait_for(r#"document.querySelector('#pb-api-state').dataset.state === 'ready'"#)
        .await;
    browser.click("#rules-add").await;
    let overflow = browser
        .script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        )
        .await;
    assert_eq!(overflow, json!(0), "no horizontal scrolling at 400 px");
    browser.screenshot("admin-narrow.png").await;
    browser.quit().await;
}
