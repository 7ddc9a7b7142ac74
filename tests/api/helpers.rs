//! Test harness: one throwaway Postgres cluster per test binary (the embedded-database mechanism), a fresh
//! database per test, the app on port 0, and wiremock standing in for BigCommerce's login and API hosts.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use profile_bridge::crypto::Keyring;
use profile_bridge::db::{
    self,
    embedded::{EmbeddedOptions, EmbeddedPostgres},
};
use profile_bridge::settings::Settings;
use profile_bridge::startup::Application;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";

static CLUSTER: OnceLock<EmbeddedPostgres> = OnceLock::new();

pub fn cluster() -> &'static EmbeddedPostgres {
    CLUSTER.get_or_init(|| {
        EmbeddedPostgres::start(EmbeddedOptions {
            root: std::env::temp_dir()
                .join(format!("profile-bridge-test-{}", Uuid::new_v4().simple())),
            bin_dir: std::env::var_os("PG_BIN_DIR").map(Into::into),
            ephemeral: true,
            allow_fallback: false,
        })
        .expect("start the test Postgres cluster")
    })
}

pub fn server_options() -> PgConnectOptions {
    db::connect_options(&SecretString::from(cluster().url("postgres"))).unwrap()
}

/// A new, migrated database on the shared test cluster.
pub async fn fresh_database() -> (PgPool, String) {
    let name = format!("t_{}", Uuid::new_v4().simple());
    db::ensure_database(server_options(), &name).await.unwrap();
    let pool = db::lazy_pool(server_options().database(&name));
    db::migrate(&pool).await.unwrap();
    (pool, name)
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub db_name: String,
    pub bc: MockServer,
    pub encryption_key: String,
    pub keyring: Arc<Keyring>,
    pub http: reqwest::Client,
}

pub fn base_env(bc_uri: &str, key: &str) -> HashMap<String, String> {
    [
        ("BC_CLIENT_ID", CLIENT_ID),
        ("BC_CLIENT_SECRET", CLIENT_SECRET),
        ("ENCRYPTION_KEY", key),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("APP_URL", "https://pb.example.test"),
        ("BC_LOGIN_URL", bc_uri),
        ("BC_API_URL", bc_uri),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    let bc = MockServer::start().await;
    let (pool, db_name) = fresh_database().await;
    let key = profile_bridge::crypto::generate_key_base64();
    let mut env = base_env(&bc.uri(), &key);
    customize(&mut env);
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings");
    let keyring = settings.keyring.clone();
    let app = Application::build(settings, pool.clone())
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        pool,
        db_name,
        bc,
        encryption_key: key,
        keyring,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims as BigCommerce signs them for /load, /uninstall and /remove_user (research/bigcommerce.md §2).
pub fn callback_claims(store_hash: &str, user_id: i64, owner_id: i64) -> Value {
    let now = now();
    json!({
        "aud": CLIENT_ID, "iss": "bc", "iat": now, "nbf": now, "exp": now + 86400,
        "jti": Uuid::new_v4().to_string(), "sub": format!("stores/{store_hash}"),
        "user": { "id": user_id, "email": format!("user{user_id}@merchant.test"), "locale": "en-US" },
        "owner": { "id": owner_id, "email": format!("user{owner_id}@merchant.test") },
        "url": "/", "channel_id": null
    })
}

pub fn sign(claims: &Value, alg: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn signed(claims: &Value) -> String {
    sign(claims, Algorithm::HS256, CLIENT_SECRET)
}

/// An unsigned token (`alg: none`), which must never be accepted.
pub fn unsigned(claims: &Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    )
}

pub fn token_response(store_hash: &str, access_token: &str, user_id: i64, owner_id: i64) -> Value {
    json!({
        "access_token": access_token,
        "scope": "store_v2_content store_v2_information_read_only store_sites_read_only store_channel_settings_read_only",
        "user": { "id": user_id, "username": format!("user{user_id}@merchant.test"), "email": format!("user{user_id}@merchant.test") },
        "owner": { "id": owner_id, "username": format!("user{owner_id}@merchant.test"), "email": format!("user{owner_id}@merchant.test") },
        "context": format!("stores/{store_hash}"),
        "account_uuid": "12345678-90ab-cdef-1234-567890abcdef"
    })
}

pub fn session_from_page(html: &str) -> String {
    let marker = r#"<meta name="pb-session" content=""#;
    let start = html.find(marker).expect("pb-session meta tag") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

impl TestApp {
    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.address, path_and_query))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_auth(&self, code: &str, store_hash: &str) -> reqwest::Response {
        self.get(&format!(
            "/auth?code={code}&scope=store_v2_content+store_v2_information_read_only&context=stores%2F{store_hash}&account_uuid=12345678-90ab-cdef-1234-567890abcdef"
        ))
        .await
    }

    /// Installs `store_hash` (owner = installing user 1) with `access_token`; returns the admin page session.
    pub async fn install(&self, store_hash: &str, access_token: &str) -> String {
        self.install_as(store_hash, access_token, 1, 1).await
    }

    pub async fn install_as(
        &self,
        store_hash: &str,
        access_token: &str,
        user_id: i64,
        owner_id: i64,
    ) -> String {
        let code = format!("code-{}", Uuid::new_v4().simple());
        let _guard = Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .and(wiremock::matchers::body_string_contains(format!(
                "code={code}"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_response(
                store_hash,
                access_token,
                user_id,
                owner_id,
            )))
            .expect(1)
            .mount_as_scoped(&self.bc)
            .await;
        let response = self.get_auth(&code, store_hash).await;
        assert_eq!(response.status(), 200, "install of {store_hash}");
        session_from_page(&response.text().await.unwrap())
    }

    pub async fn load(&self, token: &str) -> reqwest::Response {
        self.get(&format!("/load?signed_payload_jwt={token}")).await
    }

    pub async fn uninstall(&self, token: &str) -> reqwest::Response {
        self.get(&format!("/uninstall?signed_payload_jwt={token}"))
            .await
    }

    pub async fn remove_user(&self, token: &str) -> reqwest::Response {
        self.get(&format!("/remove_user?signed_payload_jwt={token}"))
            .await
    }

    pub async fn get_settings(&self, session: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}/api/v1/settings", self.address));
        if let Some(token) = session {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Every row of the lifecycle tables, as JSON, to prove a refused request changed nothing.
    pub async fn snapshot(&self) -> Value {
        sqlx::query_scalar::<_, Value>(
            "SELECT json_build_object(
                'stores', (SELECT coalesce(json_agg(s ORDER BY id), '[]') FROM stores s),
                'users', (SELECT coalesce(json_agg(u ORDER BY store_id, bc_user_id), '[]') FROM store_users u),
                'jtis', (SELECT coalesce(json_agg(j ORDER BY jti), '[]') FROM consumed_load_tokens j),
                'audit', (SELECT coalesce(json_agg(a ORDER BY id), '[]') FROM audit_log a))",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}
