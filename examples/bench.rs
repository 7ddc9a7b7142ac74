//! The benchmark behind BENCHMARKS.md: `scripts/bench` (or `cargo run --release --example bench`).
//!
//! It starts a throwaway Postgres, the sandbox Klaviyo (60 ms latency, Klaviyo's fixed-window limits) seeded
//! with 20,000 shoppers, and the release `profile-bridge serve` as its own process; then, in one run:
//! 1. closed-loop `wrk` runs, side by side: warm resolves (valid customer tokens, cached profiles) and a bare
//!    JSON route of the same server (`/healthz`);
//! 2. a fixed-rate run (300 resolves/s, 40 s, Zipf s = 1.1 over 20,000 shoppers, every token valid) counting
//!    Klaviyo calls per 1000 resolves, Klaviyo 429s, and degraded answers after the first 10 s;
//! 3. the server's peak RSS.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use profile_bridge::crypto::{EncryptionKey, Keyring, generate_key_base64};
use profile_bridge::db::{
    self,
    embedded::{EmbeddedOptions, EmbeddedPostgres},
};
use profile_bridge::domain::StoreHash;
use profile_bridge::sandbox::klaviyo::SandboxProfile;
use profile_bridge::sandbox::{self, Sandbox, SandboxOptions};
use secrecy::SecretString;
use serde_json::json;

const SHOPPERS: usize = 20_000;
const RATE: u64 = 300;
const ZIPF_SECONDS: u64 = 40;
const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-client-secret";
const STORE: &str = "bench1";

fn email(i: usize) -> String {
    format!("shopper{i}@bench.test")
}

fn token(i: usize) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"customer": {"id": i, "email": email(i), "group_id": "1"}, "iss": "bc/apps", "sub": STORE,
        "iat": now, "exp": now + 3600, "version": 1, "aud": CLIENT_ID, "application_id": CLIENT_ID, "store_hash": STORE,
        "operation": "current_customer"});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn profiles() -> Vec<SandboxProfile> {
    (0..SHOPPERS)
        .map(|i| SandboxProfile {
            id: format!("01BENCH{i:019}"),
            email: email(i),
            external_id: None,
            exchange_id: None,
            first_name: format!("Shopper {i}"),
            properties: json!({"vip": i % 10 == 0}),
            location: json!({"country": "United Kingdom"}),
            predictive: json!({"historic_clv": i as f64}),
        })
        .collect()
}

async fn configure_store(pool: &sqlx::PgPool, keyring: &Keyring) -> anyhow::Result<()> {
    let hash = StoreHash::parse(STORE)?;
    let mut tx = pool.begin().await?;
    let sealed = keyring.seal(
        &SecretString::from("bench-bc-token".to_string()),
        &db::stores::access_token_aad(&hash),
    );
    let store_id = db::stores::upsert_install(
        &mut tx,
        &db::stores::NewInstall {
            store_hash: &hash,
            access_token: &sealed,
            scope: "store_v2_content",
            account_uuid: None,
            owner_bc_user_id: 1,
            owner_email: "owner@bench.test",
            install_id: uuid::Uuid::new_v4(),
        },
    )
    .await?;
    let key = keyring.seal(
        &SecretString::from(sandbox::KLAVIYO_KEY.to_string()),
        &db::settings::aad("klaviyo_secret", &hash),
    );
    db::settings::save_klaviyo(
        &mut tx,
        store_id,
        &db::settings::NewKlaviyoCredentials {
            method: "private_key",
            secret: &key,
            refresh: None,
            expires_at: None,
            scope: None,
            hint: Some("pk_…abcd"),
        },
    )
    .await?;
    let algolia = keyring.seal(
        &SecretString::from(sandbox::ALGOLIA_SEARCH_KEY.to_string()),
        &db::settings::aad("algolia_key", &hash),
    );
    db::settings::save_algolia(
        &mut tx,
        store_id,
        sandbox::ALGOLIA_APP,
        sandbox::ALGOLIA_INDEX,
        &algolia,
        "…0001",
    )
    .await?;
    db::settings::save_rules(
        &mut tx,
        store_id,
        &json!([
            {"context": "vip", "when": {"property": "vip", "equals": true}},
            {"context": "uk", "when": {"location": "country", "equals": "United Kingdom"}},
            {"context": "known", "when": {"profile": "exists"}}
        ]),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

struct Wrk {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wrk(url: &str, script: Option<&std::path::Path>) -> anyhow::Result<Wrk> {
    let report = std::env::temp_dir().join(format!("pb-wrk-{}.lua", uuid::Uuid::new_v4().simple()));
    let mut lua = script
        .map(std::fs::read_to_string)
        .transpose()?
        .unwrap_or_default();
    lua.push_str(
        r#"
done = function(summary, latency, requests)
  io.write(string.format("PBRESULT %f %f %f\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"#,
    );
    std::fs::write(&report, lua)?;
    let output = Command::new("wrk")
        .args(["-t2", "-c32", "-d10s", "--latency", "-s"])
        .arg(&report)
        .arg(url)
        .output()
        .context("wrk is needed: apt-get install -y wrk")?;
    let _ = std::fs::remove_file(&report);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("PBRESULT"))
        .with_context(|| format!("wrk said: {text}"))?;
    let numbers: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    Ok(Wrk {
        requests_per_sec: numbers[0],
        p50_ms: numbers[1],
        p99_ms: numbers[2],
    })
}

/// Ranks 0..n drawn with probability ∝ 1/(rank+1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let mut cdf = Vec::with_capacity(n);
        for k in 1..=n {
            total += 1.0 / (k as f64).powf(s);
            cdf.push(total);
        }
        cdf.iter_mut().for_each(|c| *c /= total);
        Self { cdf }
    }

    fn sample(&self) -> usize {
        let u: f64 = rand::random();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

/// The server's user + system CPU time so far, in seconds (`/proc/<pid>/stat`, clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cluster = EmbeddedPostgres::start(EmbeddedOptions {
        root: std::env::temp_dir().join(format!("pb-bench-{}", uuid::Uuid::new_v4().simple())),
        bin_dir: std::env::var_os("PG_BIN_DIR").map(Into::into),
        ephemeral: true,
        allow_fallback: false,
    })?;
    let database_url = cluster.url("bench");
    db::ensure_database(
        db::connect_options(&SecretString::from(cluster.url("postgres")))?,
        "bench",
    )
    .await?;
    let pool = db::lazy_pool(db::connect_options(&SecretString::from(
        database_url.clone(),
    ))?);
    db::migrate(&pool).await?;
    let key = generate_key_base64();
    configure_store(
        &pool,
        &Keyring::new(
            EncryptionKey::parse(&key).map_err(anyhow::Error::msg)?,
            vec![],
        ),
    )
    .await?;

    let sandbox = Sandbox::start(SandboxOptions {
        app_url: "http://127.0.0.1:9".into(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        klaviyo_profiles: profiles(),
        klaviyo_latency: Duration::from_millis(60),
    })
    .await?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .context("target dir")?
        .join("profile-bridge");
    let mut server = Command::new(&binary)
        .arg("serve")
        .env("DATABASE_URL", &database_url)
        .env("BC_CLIENT_ID", CLIENT_ID)
        .env("BC_CLIENT_SECRET", CLIENT_SECRET)
        .env("ENCRYPTION_KEY", &key)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("KLAVIYO_API_URL", &sandbox.klaviyo_url)
        .env("ALGOLIA_API_URL", &sandbox.algolia_url)
        .env("RESOLVE_LIMIT_PER_IP_PER_MIN", "0")
        .env("RESOLVE_LIMIT_PER_STORE_PER_SEC", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "start {} (build it with cargo build --release)",
                binary.display()
            )
        })?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let started = Instant::now();
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resolve_url = format!("{base}/api/v1/resolve");

    // 1. Warm resolves beside a bare JSON route, closed loop.
    let warm: Vec<String> = (0..100).map(token).collect();
    for t in &warm {
        http.post(&resolve_url)
            .json(&json!({"store_hash": STORE, "customer_token": t}))
            .send()
            .await?;
    }
    let bodies: Vec<String> = warm
        .iter()
        .map(|t| format!("[[{}]]", json!({"store_hash": STORE, "customer_token": t})))
        .collect();
    let lua = std::env::temp_dir().join("pb-resolve.lua");
    std::fs::write(
        &lua,
        format!(
            "local bodies = {{{}}}\nlocal i = 0\nwrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nrequest = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n",
            bodies.join(",")
        ),
    )?;
    let cpu0 = cpu_seconds(server.id());
    let bare = wrk(&format!("{base}/healthz"), None)?;
    let cpu1 = cpu_seconds(server.id());
    let resolve = wrk(&resolve_url, Some(&lua))?;
    let cpu2 = cpu_seconds(server.id());
    let bare_us = (cpu1 - cpu0) * 1e6 / (bare.requests_per_sec * 10.0);
    let resolve_us = (cpu2 - cpu1) * 1e6 / (resolve.requests_per_sec * 10.0);

    // 2. Fixed rate, Zipf over 20,000 shoppers, cold start (a fresh server cache would be fairer: the 100 warm
    //    shoppers are a rounding error against 20,000).
    let (calls_before, throttled_before) = sandbox.klaviyo.counts();
    let zipf = Arc::new(Zipf::new(SHOPPERS, 1.1));
    let tokens: Arc<Vec<String>> = Arc::new((0..SHOPPERS).map(token).collect());
    let (total, degraded_late, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let late_total = Arc::new(AtomicU64::new(0));
    let run_start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for _ in 0..(RATE * ZIPF_SECONDS) {
        tick.tick().await;
        let (http, url, zipf, tokens) = (
            http.clone(),
            resolve_url.clone(),
            zipf.clone(),
            tokens.clone(),
        );
        let (total, degraded_late, errors, late_total) = (
            total.clone(),
            degraded_late.clone(),
            errors.clone(),
            late_total.clone(),
        );
        let late = run_start.elapsed() > Duration::from_secs(10);
        tasks.push(tokio::spawn(async move {
            let shopper = zipf.sample();
            let answer = http
                .post(&url)
                .json(&json!({"store_hash": STORE, "customer_token": tokens[shopper]}))
                .send()
                .await;
            total.fetch_add(1, Ordering::Relaxed);
            match answer {
                Ok(r) if r.status().is_success() => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if late {
                        late_total.fetch_add(1, Ordering::Relaxed);
                        if body["degraded"] == true {
                            degraded_late.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let achieved_rate = total.load(Ordering::Relaxed) as f64 / run_start.elapsed().as_secs_f64();
    let (calls_after, throttled_after) = sandbox.klaviyo.counts();
    let klaviyo_calls = calls_after - calls_before;
    let rss = peak_rss_mb(server.id());

    let resolves = total.load(Ordering::Relaxed) as f64;
    let late = late_total.load(Ordering::Relaxed).max(1) as f64;
    println!();
    println!("| measurement | value | target |");
    println!("|---|---|---|");
    println!(
        "| bare JSON route (`/healthz`), wrk -t2 -c32 10 s | {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | — |",
        bare.requests_per_sec, bare.p50_ms, bare.p99_ms
    );
    println!(
        "| warm resolve, same settings | {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | — |",
        resolve.requests_per_sec, resolve.p50_ms, resolve.p99_ms
    );
    println!(
        "| warm resolve ÷ bare route throughput | {:.2}× | ≥ 0.6× |",
        resolve.requests_per_sec / bare.requests_per_sec
    );
    println!(
        "| server CPU per request (user + system): bare / warm resolve | {bare_us:.1} µs / {resolve_us:.1} µs | — |"
    );
    println!("| warm resolve p99 | {:.2} ms | < 5 ms |", resolve.p99_ms);
    println!(
        "| Zipf run: resolves sent / achieved rate | {resolves:.0} / {achieved_rate:.0} per s over {ZIPF_SECONDS} s | 300/s |"
    );
    println!(
        "| Zipf run: Klaviyo calls per 1000 resolves | {:.1} ({klaviyo_calls} calls) | — |",
        klaviyo_calls as f64 * 1000.0 / resolves
    );
    println!(
        "| Zipf run: Klaviyo 429s | {} | 0 |",
        throttled_after - throttled_before
    );
    println!(
        "| Zipf run: degraded answers after the first 10 s | {:.3}% ({} of {late:.0}) | ≤ 0.1% |",
        degraded_late.load(Ordering::Relaxed) as f64 * 100.0 / late,
        degraded_late.load(Ordering::Relaxed)
    );
    println!(
        "| Zipf run: failed requests | {} | 0 |",
        errors.load(Ordering::Relaxed)
    );
    println!("| server peak RSS (VmHWM) | {rss:.1} MB | — |");

    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let _ = server.wait();
    sandbox.stop().await;
    cluster.stop();
    Ok(())
}
