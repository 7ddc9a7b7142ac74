use profile_bridge::crypto::{EncryptionKey, Keyring, rotation};
use profile_bridge::db;
use profile_bridge::domain::StoreHash;
use secrecy::ExposeSecret;

use crate::helpers::*;

#[tokio::test]
async fn a_data_only_dump_of_the_whole_database_holds_no_secret_in_plaintext() {
    let setup = crate::settings_api::setup().await;
    crate::settings_api::mount_klaviyo_ok(&setup.platforms).await;
    crate::settings_api::mount_algolia_key(
        &setup.platforms,
        serde_json::json!(["search"]),
        serde_json::json!([]),
    )
    .await;
    assert_eq!(setup.put_klaviyo(crate::settings_api::KEY).await.0, 200);
    let algolia = serde_json::json!({"app_id": "APPID1", "search_key": crate::settings_api::SEARCH_KEY, "index": "products"});
    assert_eq!(setup.put_algolia(algolia).await.0, 200);
    let app = &setup.app;
    let code = "ONE-TIME-CODE-abcdef";
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/oauth2/token"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(token_response(
                "def456",
                "SUPER-SECRET-ACCESS-TOKEN",
                1,
                1,
            )),
        )
        .mount(&app.bc)
        .await;
    let page = app.get_auth(code, "def456").await.text().await.unwrap();
    let session = session_from_page(&page);
    let load_token = signed(&callback_claims("def456", 5, 1));
    assert_eq!(app.load(&load_token).await.status(), 200);

    let bin = db::embedded::find_bin_dir(
        std::env::var_os("PG_BIN_DIR")
            .map(std::path::PathBuf::from)
            .as_deref(),
    )
    .unwrap();
    let output = std::process::Command::new(bin.join("pg_dump"))
        .args(["--data-only", "--dbname", &cluster().url(&app.db_name)])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8_lossy(&output.stdout);
    assert!(dump.contains("abc123"), "the dump has the store row");
    for secret in [
        "SUPER-SECRET-ACCESS-TOKEN",
        CLIENT_SECRET,
        code,
        &session,
        &load_token,
        &app.encryption_key,
    ] {
        assert!(
            !dump.contains(secret),
            "plaintext secret in pg_dump: {secret}"
        );
    }
}

#[tokio::test]
async fn rotate_keys_reseals_every_token_with_the_active_key() {
    let setup = crate::settings_api::setup().await;
    crate::settings_api::mount_klaviyo_ok(&setup.platforms).await;
    assert_eq!(setup.put_klaviyo(crate::settings_api::KEY).await.0, 200);
    let app = &setup.app;
    app.install("abc123", "TOKEN-A").await;
    app.install("def456", "TOKEN-B").await;
    let old_key = app.encryption_key.clone();
    let new_key = profile_bridge::crypto::generate_key_base64();

    let rotated = Keyring::new(
        EncryptionKey::parse(&new_key).unwrap(),
        vec![EncryptionKey::parse(&old_key).unwrap()],
    );
    assert_eq!(
        rotation::reseal_all(&app.pool, &rotated).await.unwrap(),
        3,
        "two store tokens and a Klaviyo key"
    );
    assert_eq!(
        rotation::reseal_all(&app.pool, &rotated).await.unwrap(),
        0,
        "nothing left to re-seal"
    );

    let new_only = Keyring::new(EncryptionKey::parse(&new_key).unwrap(), vec![]);
    for (hash, token) in [("abc123", "TOKEN-A"), ("def456", "TOKEN-B")] {
        let store_hash = StoreHash::parse(hash).unwrap();
        let sealed = db::stores::sealed_access_token(&app.pool, &store_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sealed.key_id, new_only.active_key_id());
        let opened = new_only
            .open(&sealed, &db::stores::access_token_aad(&store_hash))
            .unwrap();
        assert_eq!(opened.expose_secret(), token);
    }
    let klaviyo = db::settings::klaviyo_secrets(&app.pool, 1)
        .await
        .unwrap()
        .unwrap();
    let hash = StoreHash::parse("abc123").unwrap();
    let opened = new_only
        .open(&klaviyo.secret, &db::settings::aad("klaviyo_secret", &hash))
        .unwrap();
    assert_eq!(opened.expose_secret(), crate::settings_api::KEY);
}

#[tokio::test]
async fn rotation_without_the_old_key_fails_and_changes_nothing() {
    let app = spawn_app().await;
    app.install("abc123", "TOKEN-A").await;
    let before = app.snapshot().await;
    let stranger = Keyring::new(
        EncryptionKey::parse(&profile_bridge::crypto::generate_key_base64()).unwrap(),
        vec![],
    );
    assert!(rotation::reseal_all(&app.pool, &stranger).await.is_err());
    assert_eq!(app.snapshot().await, before);
}
