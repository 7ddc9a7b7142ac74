//! The embedded database: `serve` without DATABASE_URL starts its own Postgres and leaves nothing behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use profile_bridge::db::embedded::{EmbeddedOptions, EmbeddedPostgres};

fn postgres_processes_under(dir: &std::path::Path) -> usize {
    let out = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.contains("postgres") && l.contains(&*dir.to_string_lossy()) && !l.contains("sleep")
        })
        .count()
}

/// A dependency-free GET (no async runtime in these tests).
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_throwaway_cluster_starts_serves_and_is_removed_on_stop() {
    let root = std::env::temp_dir().join(format!("pb-embedded-{}", uuid::Uuid::new_v4().simple()));
    let mut cluster = EmbeddedPostgres::start(EmbeddedOptions {
        root: root.clone(),
        bin_dir: None,
        ephemeral: true,
        allow_fallback: false,
    })
    .unwrap();
    let port = cluster.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(postgres_processes_under(&root) > 0);
    cluster.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(postgres_processes_under(&root), 0);
    assert!(!root.exists());
}

#[test]
fn serve_without_database_url_runs_on_an_embedded_cluster_and_stops_it_on_exit() {
    let workdir = std::env::temp_dir().join(format!("pb-serve-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&workdir).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_profile-bridge"))
        .arg("serve")
        .current_dir(&workdir)
        .env_remove("DATABASE_URL")
        .env("BC_CLIENT_ID", "id")
        .env("BC_CLIENT_SECRET", "secret")
        .env(
            "ENCRYPTION_KEY",
            profile_bridge::crypto::generate_key_base64(),
        )
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        let ok = http_get_status(port, "/readyz") == Some(200);
        if ok || Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let data =
        std::fs::canonicalize(workdir.join(".data")).unwrap_or_else(|_| workdir.join(".data"));
    let had_postgres = postgres_processes_under(&data) > 0;

    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();

    assert!(ready, "serve became ready on the embedded database");
    assert!(had_postgres, "a Postgres ran under ./.data");
    assert!(status.success(), "serve exited cleanly: {status:?}");
    assert!(
        data.join("pg/PG_VERSION").exists(),
        "the cluster is kept for the next start"
    );
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "Postgres was stopped"
    );
    assert_eq!(
        postgres_processes_under(&data),
        0,
        "no Postgres left behind"
    );
    let _ = std::fs::remove_dir_all(&workdir);
}

#[test]
fn serve_names_a_missing_variable_in_one_line() {
    let workdir = std::env::temp_dir().join(format!("pb-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&workdir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_profile-bridge"))
        .arg("serve")
        .current_dir(&workdir)
        .env("BC_CLIENT_ID", "id")
        .env_remove("BC_CLIENT_SECRET")
        .env(
            "ENCRYPTION_KEY",
            profile_bridge::crypto::generate_key_base64(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("BC_CLIENT_SECRET"), "{stderr}");
    let _ = std::fs::remove_dir_all(&workdir);
}

#[test]
fn the_demo_prints_its_start_url_and_ctrl_c_leaves_no_postgres_behind() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_profile-bridge"))
        .arg("demo")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .take(20)
        .find_map(|line| {
            line.trim()
                .strip_prefix("http://127.0.0.1:")
                .map(|rest| rest.trim_end_matches('/').to_string())
        })
        .expect("a start URL");
    let port: u16 = url.parse().unwrap();
    assert_eq!(
        http_get_status(port, "/"),
        Some(200),
        "the control panel answers"
    );
    let demo_clusters = || {
        let out = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("profile-bridge-demo-") && l.contains("postgres"))
            .count()
    };
    assert!(demo_clusters() > 0, "the demo runs its own Postgres");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(demo_clusters(), 0, "no Postgres left behind");
}
