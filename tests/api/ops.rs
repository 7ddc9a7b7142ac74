use profile_bridge::settings::Settings;
use profile_bridge::startup::Application;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.get("/load").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{route="/load",method="GET",status="401"}"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn readyz_is_503_while_the_database_is_unreachable() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let env = base_env(
        "http://127.0.0.1:9",
        &profile_bridge::crypto::generate_key_base64(),
    );
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
    let pool = profile_bridge::db::lazy_pool(
        profile_bridge::db::connect_options(
            &format!("postgres://postgres@127.0.0.1:{port}/x").into(),
        )
        .unwrap(),
    );
    let app = Application::build(settings, pool).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    assert_eq!(
        reqwest::get(format!("{address}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{address}/readyz"))
            .await
            .unwrap()
            .status(),
        503
    );
}

#[tokio::test]
async fn unknown_routes_answer_in_the_shape_of_their_audience() {
    let app = spawn_app().await;
    let api = app.get("/api/v1/nope").await;
    assert_eq!(api.status(), 404);
    assert_eq!(
        api.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    let wrong_method = app.get("/api/v1/resolve").await;
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
    let page = app.get("/no/such/page").await;
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("Profile Bridge"));
}
