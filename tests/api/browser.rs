//! A real headless Chromium (Debian's `chromium`) driven from the command line: dump the DOM after the page's
//! scripts ran, or take a screenshot. Artifacts go to `test-artifacts/` (not committed).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        path.exists(),
        "Chromium is needed for browser tests: run scripts/test as root, or apt-get install -y chromium"
    );
    path
}

pub fn artifacts_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(extra: &[String], url: &str) -> String {
    let profile =
        std::env::temp_dir().join(format!("pb-chromium-{}", uuid::Uuid::new_v4().simple()));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The DOM after the page's scripts ran (network waits do not count against the virtual-time budget).
pub async fn dump_dom(url: &str) -> String {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || run(&["--dump-dom".into()], &url))
        .await
        .unwrap()
}

pub async fn screenshot(url: &str, name: &str, width: u32, height: u32) -> PathBuf {
    let path = artifacts_dir().join(name);
    let args = vec![
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
    ];
    let url = url.to_string();
    tokio::task::spawn_blocking(move || run(&args, &url))
        .await
        .unwrap();
    assert!(path.exists(), "screenshot {name} was written");
    path
}

/// The text inside `<pre id="out">…</pre>` of a dumped DOM, HTML entities undone.
pub fn out_text(dom: &str) -> String {
    let start = dom
        .find("<pre id=\"out\">")
        .map(|i| i + "<pre id=\"out\">".len())
        .unwrap_or(0);
    let end = dom[start..]
        .find("</pre>")
        .map(|i| i + start)
        .unwrap_or(dom.len());
    dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
