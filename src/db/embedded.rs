//! The embedded database: a private Postgres cluster started from the machine's Postgres binaries.
//!
//! `serve` uses it when `DATABASE_URL` is unset (under `./.data/`), and the tests use it for throwaway clusters.
//! Postgres refuses to run as root, so when launched as root every Postgres command runs as the `postgres` user
//! through `setpriv` (which execs in place, so signals reach Postgres directly). A detached watchdog stops the
//! cluster if this process dies without stopping it, so no Postgres is ever left behind.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

pub struct EmbeddedOptions {
    /// Folder that holds the cluster (`pg/`) and its log.
    pub root: PathBuf,
    /// `PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// Throwaway clusters skip fsync and are deleted when stopped.
    pub ephemeral: bool,
    /// When root and the `postgres` user cannot reach `root`, fall back to a per-project folder under /var/tmp.
    pub allow_fallback: bool,
}

pub struct EmbeddedPostgres {
    root: PathBuf,
    pgdata: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as: Option<PgUser>,
    ephemeral: bool,
    watchdog: Option<Child>,
    stopped: bool,
}

#[derive(Clone)]
struct PgUser {
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    pub fn start(options: EmbeddedOptions) -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir(options.bin_dir.as_deref())?;
        let run_as = if running_as_root()? {
            Some(postgres_user()?)
        } else {
            None
        };
        let root = prepare_root(&options.root, run_as.as_ref(), options.allow_fallback)?;
        let pgdata = root.join("pg");

        let mut cluster = Self {
            root,
            pgdata,
            bin_dir,
            port: 0,
            run_as,
            ephemeral: options.ephemeral,
            watchdog: None,
            stopped: false,
        };
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        // A cluster left running by a crashed earlier run would hold the data directory.
        if cluster
            .pg_ctl(&["status"])
            .map(|s| s.success())
            .unwrap_or(false)
        {
            let _ = cluster.pg_ctl(&["stop", "-m", "fast", "-w"]);
        }
        cluster.start_server()?;
        cluster.spawn_watchdog()?;
        Ok(cluster)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` as the cluster's superuser (trust authentication on loopback only).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Stops the cluster and the watchdog; deletes a throwaway cluster's files.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "30"]);
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.ephemeral {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={}", user.uid))
                    .arg(format!("--regid={}", user.gid))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(path);
                c
            }
            None => Command::new(path),
        };
        // Postgres checks that it can read its working directory; ours may be unreadable to `postgres`.
        cmd.current_dir(&self.root);
        cmd
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.pgdata).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        if self.ephemeral {
            cmd.arg("-N");
        }
        run_quietly(cmd, "initdb")
    }

    fn start_server(&mut self) -> anyhow::Result<()> {
        let mut last_error = None;
        for _ in 0..3 {
            self.port = free_port()?;
            let mut options = format!(
                "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories='' -c max_connections=200",
                self.port
            );
            if self.ephemeral {
                options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
            }
            let log = self.root.join("postgres.log");
            let mut cmd = self.command("pg_ctl");
            cmd.arg("-D")
                .arg(&self.pgdata)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"]);
            match run_quietly(cmd, "pg_ctl start") {
                Ok(()) => return Ok(()),
                Err(e) => last_error = Some(e.context(format!("see {}", log.display()))),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    fn pg_ctl(&self, args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
        self.command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    }

    /// A detached shell that waits for this process to end, then stops the cluster (and deletes a throwaway one).
    fn spawn_watchdog(&mut self) -> anyhow::Result<()> {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let mut script = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; '{pg_ctl}' -D '{pgdata}' -m immediate -w stop >/dev/null 2>&1",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            pgdata = self.pgdata.display(),
        );
        if self.ephemeral {
            script.push_str(&format!("; rm -rf '{}'", self.root.display()));
        }
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={}", user.uid))
                    .arg(format!("--regid={}", user.gid))
                    .arg("--init-groups")
                    .args(["--", "sh", "-c", &script]);
                c
            }
            None => {
                let mut c = Command::new("sh");
                c.args(["-c", &script]);
                c
            }
        };
        // Its own process group: a Ctrl-C in the terminal must not kill the watchdog before it has done its job.
        cmd.process_group(0)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.watchdog = Some(
            cmd.spawn()
                .context("Failed to start the embedded Postgres watchdog")?,
        );
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_quietly(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("Failed to run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("Failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn running_as_root() -> anyhow::Result<bool> {
    Ok(std::fs::metadata("/proc/self")
        .context("Failed to read /proc/self")?
        .uid()
        == 0)
}

fn postgres_user() -> anyhow::Result<PgUser> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("Failed to read /etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == "postgres").then(|| {
                Some(PgUser {
                    uid: fields[2].parse().ok()?,
                    gid: fields[3].parse().ok()?,
                })
            })?
        })
        .context(
            "Running as root needs the `postgres` user, which does not exist: run `apt-get install -y postgresql`",
        )
}

/// Postgres server binaries: `PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
pub fn find_bin_dir(configured: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = configured {
        if dir.join("initdb").exists() {
            return Ok(dir.to_path_buf());
        }
        bail!("PG_BIN_DIR={} has no initdb", dir.display());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .context(
            "Postgres server binaries not found: install them with `apt-get install -y postgresql` \
             (or set PG_BIN_DIR, or DATABASE_URL to use an existing server)",
        )
}

fn prepare_root(
    preferred: &Path,
    run_as: Option<&PgUser>,
    allow_fallback: bool,
) -> anyhow::Result<PathBuf> {
    let preferred =
        std::path::absolute(preferred).context("Failed to resolve the database folder")?;
    let Some(user) = run_as else {
        std::fs::create_dir_all(&preferred)
            .with_context(|| format!("Failed to create {}", preferred.display()))?;
        return Ok(preferred);
    };
    if own_for_postgres(&preferred, user).is_ok() && postgres_can_write(&preferred, user) {
        return Ok(preferred);
    }
    if !allow_fallback {
        bail!("the postgres user cannot write to {}", preferred.display());
    }
    // Same project folder -> same fallback folder, so the data survives restarts.
    let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        preferred.as_os_str().as_encoded_bytes(),
    ));
    let tag: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let fallback = PathBuf::from(format!("/var/tmp/profile-bridge-{tag}"));
    own_for_postgres(&fallback, user)?;
    eprintln!(
        "The postgres user cannot reach {}; the embedded database lives in {} instead.",
        preferred.display(),
        fallback.display()
    );
    Ok(fallback)
}

fn own_for_postgres(dir: &Path, user: &PgUser) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
        .with_context(|| format!("Failed to hand {} to the postgres user", dir.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("Failed to restrict {}", dir.display()))
}

fn postgres_can_write(dir: &Path, user: &PgUser) -> bool {
    Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--init-groups")
        .args(["--", "test", "-w"])
        .arg(dir)
        .current_dir("/")
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
