//! The whole story in a real headless Chromium, as a person would drive `profile-bridge demo`: install from the
//! emulated control panel, configure inside the iframe, then shop as a VIP, a guest, and a guest from a Klaviyo
//! email; uninstall and see the script gone. Screenshots go to test-artifacts/.

use profile_bridge::sandbox::demo::{Demo, DemoOptions};
use profile_bridge::sandbox::{ALGOLIA_APP, ALGOLIA_INDEX, ALGOLIA_SEARCH_KEY, KLAVIYO_KEY};

use crate::helpers::server_options;
use crate::webdriver::Browser;

async fn storefront_state(browser: &Browser) -> (String, String) {
    browser
        .wait_for(r#"document.querySelector('#hits').dataset.state === 'ready'"#)
        .await;
    let contexts = browser
        .script("return document.querySelector('#pb-state').dataset.contexts || '';")
        .await;
    let first = browser
        .script("var h = document.querySelector('#hits li'); return h ? h.dataset.objectId : '';")
        .await;
    (
        contexts.as_str().unwrap_or("").to_string(),
        first.as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn the_demo_tells_the_whole_story_in_a_browser() {
    let demo = Demo::start(DemoOptions {
        database: Some(server_options()),
        pg_bin_dir: None,
    })
    .await
    .unwrap();
    let cp = demo.sandbox.control_panel_url.clone();
    let storefront = demo.sandbox.storefront_url.clone();
    let browser = Browser::start(1280, 1000).await;

    // Install from the control panel: the app's admin page answers inside the iframe.
    browser.goto(&format!("{cp}/")).await;
    assert_eq!(browser.text("#demo-klaviyo-key").await, KLAVIYO_KEY);
    browser.click("#install-app").await;
    browser.enter_frame("#app-frame").await;
    browser
        .wait_for(r#"document.querySelector('#pb-api-state').dataset.state === 'ready'"#)
        .await;
    browser
        .wait_for(r#"document.querySelector('[data-step="script"]').dataset.done === 'true'"#)
        .await;

    browser.type_into("#private_key", KLAVIYO_KEY).await;
    browser.click("#klaviyo-form button[type=submit]").await;
    browser
        .wait_for(r#"document.querySelector('#klaviyo-status').textContent.includes('Connected')"#)
        .await;
    browser.type_into("#app_id", ALGOLIA_APP).await;
    browser.type_into("#index", ALGOLIA_INDEX).await;
    browser.type_into("#search_key", ALGOLIA_SEARCH_KEY).await;
    browser.click("#algolia-form button[type=submit]").await;
    browser
        .wait_for(r#"document.querySelector('#algolia-status').textContent.includes('products')"#)
        .await;
    browser.click("#rules-add").await;
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
        .type_into(r#"input[name="rules[1].context"]"#, "guest")
        .await;
    browser.script(r#"var s = document.querySelector('select[name="rules[1].when.subject"]'); s.value = 'profile'; s.dispatchEvent(new Event('change'));"#).await;
    browser.script(r#"var s = document.querySelector('select[name="rules[1].when.profile"]'); s.value = 'missing'; s.dispatchEvent(new Event('change'));"#).await;
    browser.click("#rules-save").await;
    browser
        .wait_for(r#"document.querySelector('#pb-notice').textContent === 'Rules saved.'"#)
        .await;
    browser.type_into("#email", "alice@demo.test").await;
    browser.click("#preview-form button[type=submit]").await;
    browser
        .wait_for(r#"document.querySelector('#preview-result').textContent.includes('vip')"#)
        .await;
    browser.screenshot("demo-1-admin-configured.png").await;
    browser.leave_frames().await;

    // The storefront, as a logged-in VIP: personalized results.
    browser.goto(&format!("{storefront}/")).await;
    browser.click("#as-alice").await;
    let (contexts, first) = storefront_state(&browser).await;
    let debug = browser.text("#pb-state").await;
    let signed = browser.text("#signed-in").await;
    assert_eq!(
        (contexts.as_str(), first.as_str()),
        ("vip", "p-vip-tent"),
        "Alice sees VIP picks first: {debug} / {signed}"
    );
    browser.screenshot("demo-2-storefront-vip.png").await;

    // As a guest: the default order, and the guest context.
    browser.click("#as-guest").await;
    let (contexts, first) = storefront_state(&browser).await;
    assert_eq!(
        (contexts.as_str(), first.as_str()),
        ("guest", "p-starter-kit"),
        "the guest rule pins the starter kit"
    );
    browser.screenshot("demo-3-storefront-guest.png").await;

    // As a guest arriving from a Klaviyo email (_kx): that shopper's results.
    browser.click("#from-email").await;
    let (contexts, first) = storefront_state(&browser).await;
    assert_eq!(
        (contexts.as_str(), first.as_str()),
        ("vip", "p-vip-tent"),
        "Carol is a VIP in Klaviyo"
    );
    browser
        .screenshot("demo-4-storefront-klaviyo-link.png")
        .await;

    // Uninstall: the script is gone from the storefront.
    browser.goto(&format!("{cp}/")).await;
    browser.click("#uninstall-app").await;
    browser
        .wait_for("!!document.querySelector('#install-app')")
        .await;
    browser.screenshot("demo-5-uninstalled.png").await;
    browser.goto(&format!("{storefront}/")).await;
    let (contexts, _) = storefront_state(&browser).await;
    assert_eq!(contexts, "");
    let scripts = browser
        .script("return document.querySelectorAll('script[src*=\"storefront.js\"]').length;")
        .await;
    assert_eq!(scripts, serde_json::json!(0));
    browser.quit().await;
    demo.stop().await;
}
