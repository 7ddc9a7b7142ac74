//! A minimal W3C WebDriver client over Debian's chromedriver and headless Chromium: enough to drive the admin
//! page like a merchant (type, click, switch into the control panel's iframe) and take screenshots.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    profile: std::path::PathBuf,
}

pub struct Element(String);

impl Browser {
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_path =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            std::path::Path::new(&driver_path).exists(),
            "chromedriver is needed for browser tests: run scripts/test as root, or apt-get install -y chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile =
            std::env::temp_dir().join(format!("pb-webdriver-{}", uuid::Uuid::new_v4().simple()));
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while browser
            .http
            .get(format!("{}/status", browser.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let chromium = super::browser::chromium();
        let session = browser
            .post(
                "/session",
                json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                             "--hide-scrollbars", format!("--window-size={width},{height}"),
                             format!("--user-data-dir={}", browser.profile.display())]
                }}}}),
            )
            .await;
        let id = session["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        browser.base = format!("{}/session/{id}", browser.base);
        browser
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let value: Value = response.json().await.unwrap();
        if let Some(error) = value["value"].get("error") {
            panic!("WebDriver {path}: {error} {}", value["value"]["message"]);
        }
        value.get("value").cloned().unwrap_or(Value::Null)
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap();
            let value: Value = response.json().await.unwrap();
            if let Some(id) = value["value"][ELEMENT].as_str() {
                return Element(id.to_string());
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/clear", element.0), json!({}))
            .await;
        self.post(
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    pub async fn script(&self, body: &str) -> Value {
        self.post("/execute/sync", json!({ "script": body, "args": [] }))
            .await
    }

    /// Waits until the JavaScript expression is truthy.
    pub async fn wait_for(&self, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value = self
                .script(&format!(
                    "try {{ return !!({expression}); }} catch (e) {{ return false; }}"
                ))
                .await;
            if value == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {expression}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.script(&format!(
            "var e = document.querySelector({css:?}); return e ? e.textContent : null;"
        ))
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    pub async fn enter_frame(&self, css: &str) {
        let frame = self.find(css).await;
        self.post("/frame", json!({ "id": { ELEMENT: frame.0 } }))
            .await;
    }

    pub async fn leave_frames(&self) {
        self.post("/frame", json!({ "id": null })).await;
    }

    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let response = self
            .http
            .get(format!("{}/screenshot", self.base))
            .send()
            .await
            .unwrap();
        let value: Value = response.json().await.unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(value["value"].as_str().unwrap())
            .unwrap();
        let path = super::browser::artifacts_dir().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Browser {
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Whatever happened, no Chromium of this test outlives it.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.profile.as_os_str())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
