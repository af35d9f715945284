//! The real processes of a fault scenario, each on loopback ports of its own: the `fleetstream`
//! binary, a private `nats-server` from the repository's `nats.conf`, a database of its own on
//! the test Postgres or a private Postgres that a scenario may stop and start. Every process is
//! killed when its handle drops, so a failing scenario leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use uuid::Uuid;

pub const JWT_SECRET: &str = "fault-suite-secret-that-is-long-enough-for-hs256";
pub const ADMIN_EMAIL: &str = "admin@fault.test";
pub const ADMIN_PASSWORD: &str = "fault-suite-admin";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fleet-fault-{label}-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

fn log_file(path: &Path) -> (Stdio, Stdio) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file");
    let err = file.try_clone().expect("log file clone");
    (Stdio::from(file), Stdio::from(err))
}

/// The last lines of a process log, for a failure message.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// --- NATS ------------------------------------------------------------------------------------

fn nats_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nats-server");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("nats-server")
    }
}

/// Ports of one node of a loopback cluster: its own route port and its peers'.
#[derive(Clone)]
pub struct ClusterRoutes {
    pub listen: u16,
    pub peers: Vec<u16>,
}

/// The repository's `nats.conf` with this node's name, port and store, without the MQTT block
/// (Mosquitto holds 1883 here and no scenario speaks MQTT), plus cluster routes when given.
pub fn nats_config(
    name: &str,
    port: u16,
    monitor_port: u16,
    store_dir: &Path,
    cluster: Option<&ClusterRoutes>,
) -> String {
    let repo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/nats.conf"))
        .expect("nats.conf");
    let mut out = String::new();
    let mut in_mqtt = false;
    for line in repo.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("mqtt {") {
            in_mqtt = true;
            continue;
        }
        if in_mqtt {
            in_mqtt = trimmed != "}";
            continue;
        }
        let rewritten = if trimmed.starts_with("server_name:") {
            format!("server_name: {name}")
        } else if trimmed.starts_with("listen: 127.0.0.1:4222") {
            format!("listen: 127.0.0.1:{port}")
        } else if trimmed.starts_with("store_dir:") {
            format!("  store_dir: \"{}\"", store_dir.display())
        } else {
            line.to_owned()
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    assert!(
        out.contains(&format!("listen: 127.0.0.1:{port}")),
        "nats.conf changed shape:\n{out}"
    );
    // The monitoring endpoint tells which client connection publishes (`/connz`).
    out.push_str(&format!("http: 127.0.0.1:{monitor_port}\n"));
    if let Some(cluster) = cluster {
        let routes: Vec<String> = cluster
            .peers
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        out.push_str(&format!(
            "cluster {{\n  name: fleet-fault\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
            cluster.listen,
            routes.join(", ")
        ));
    }
    out
}

/// A private nats-server; `stop` and `start` keep its port and store, as a restart would.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    pub monitor_port: u16,
    conf: PathBuf,
    log: PathBuf,
    _dir: Scratch,
}

impl Nats {
    pub async fn start() -> Self {
        Self::start_node("fleet-fault", free_port(), None).await
    }

    /// A private server with `max_payload` set to `bytes` instead of nats.conf's value.
    pub async fn start_with_max_payload(bytes: usize) -> Self {
        Self::launch("fleet-fault", free_port(), None, Some(bytes)).await
    }

    pub async fn start_node(name: &str, port: u16, cluster: Option<ClusterRoutes>) -> Self {
        Self::launch(name, port, cluster, None).await
    }

    async fn launch(
        name: &str,
        port: u16,
        cluster: Option<ClusterRoutes>,
        max_payload: Option<usize>,
    ) -> Self {
        let dir = Scratch::new("nats");
        let store = dir.0.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let conf = dir.0.join("nats.conf");
        let monitor_port = free_port();
        let mut config = nats_config(name, port, monitor_port, &store, cluster.as_ref());
        if let Some(bytes) = max_payload {
            config = config
                .lines()
                .filter(|l| !l.trim_start().starts_with("max_payload"))
                .chain([format!("max_payload: {bytes}").as_str()])
                .collect::<Vec<_>>()
                .join("\n");
        }
        std::fs::write(&conf, config).unwrap();
        let mut nats = Self {
            child: None,
            port,
            monitor_port,
            log: dir.0.join("nats.log"),
            conf,
            _dir: dir,
        };
        nats.resume().await;
        nats
    }

    /// Starts the server again on the same port and store.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "nats-server is running already");
        let (out, err) = log_file(&self.log);
        let child = Command::new(nats_binary())
            .arg("-c")
            .arg(&self.conf)
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server (install nats-server or put it on PATH)");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(15)).await,
            "nats-server did not listen on {}:\n{}",
            self.port,
            tail(&self.log, 20)
        );
    }

    /// kill -9: no goodbye to clients, as a crashed or partitioned node.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Client connections (id, name, messages published) from the monitoring `/connz`.
    pub async fn publishers(&self) -> Vec<(u64, String, u64)> {
        let url = format!("http://127.0.0.1:{}/connz", self.monitor_port);
        let connz: serde_json::Value = reqwest::get(url)
            .await
            .expect("nats monitoring")
            .json()
            .await
            .expect("connz json");
        connz["connections"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|c| {
                        (
                            c["cid"].as_u64().unwrap_or(0),
                            c["name"].as_str().unwrap_or("").to_owned(),
                            c["in_msgs"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

// --- Postgres --------------------------------------------------------------------------------

/// The test Postgres (`DATABASE_URL`, as scripts/dev-env.sh exports it).
pub fn test_postgres_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/fleetstream".into())
}

fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("DATABASE_URL has a database");
    format!("{base}/{db}")
}

/// A database of its own on a Postgres server, dropped by `drop_now`.
pub struct Database {
    pub url: String,
    name: String,
    admin_url: String,
}

impl Database {
    pub async fn create(server_url: &str) -> Self {
        let name = format!("fault_{}", Uuid::now_v7().simple());
        let admin_url = with_database(server_url, "postgres");
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("admin connection");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        Self {
            url: with_database(server_url, &name),
            name,
            admin_url,
        }
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await
            .expect("connect to the scenario database")
    }

    pub async fn drop_now(self) {
        if let Ok(admin) = sqlx::PgPool::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&admin)
            .await;
            admin.close().await;
        }
    }
}

fn pg_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql (install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
        .expect("a Postgres with initdb under /usr/lib/postgresql")
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A Postgres of the scenario's own (initdb under a temp dir, run as the `postgres` OS user
/// when we are root, as Postgres refuses to run as root), so it can be stopped and started.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    root: bool,
    running: bool,
    _dir: Scratch,
}

impl PrivatePostgres {
    fn command(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        if self.root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        }
    }

    pub async fn start() -> Self {
        let dir = Scratch::new("pg");
        let root = running_as_root();
        if root {
            let status = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir.0)
                .status()
                .expect("chown");
            assert!(status.success(), "chown postgres {}", dir.0.display());
        }
        let mut pg = Self {
            port: free_port(),
            bin: pg_bin_dir(),
            data: dir.0.join("data"),
            log: dir.0.join("postgres.log"),
            root,
            running: false,
            _dir: dir,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args([
                "--auth=trust",
                "--username=postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.resume().await;
        pg
    }

    pub async fn resume(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c lc_messages=C",
            self.port,
            self.data.parent().unwrap().display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-o", &options, "start"])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log, 20)
        );
        self.running = true;
    }

    /// `pg_ctl stop -m fast`: open sessions are terminated, as in an operator's restart.
    pub async fn stop(&mut self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .expect("pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

// --- fleetstream -----------------------------------------------------------------------------

/// One `fleetstream serve` process. `kill` is kill -9; `resume` starts it again on its port.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    database_url: String,
    nats_url: String,
    pub log: PathBuf,
    _dir: Scratch,
}

impl Server {
    pub async fn start(database_url: &str, nats_url: &str) -> Self {
        let dir = Scratch::new("server");
        let mut server = Self {
            child: None,
            port: free_port(),
            database_url: database_url.to_owned(),
            nats_url: nats_url.to_owned(),
            log: dir.0.join("server.log"),
            _dir: dir,
        };
        server.resume().await;
        server
    }

    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "server is running already");
        let (out, err) = log_file(&self.log);
        let child = Command::new(env!("CARGO_BIN_EXE_fleetstream"))
            .arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("NATS_URL", &self.nats_url)
            .env("FLEET_JWT_SECRET", JWT_SECRET)
            .env("FLEET_MASTER_KEY", JWT_SECRET)
            .env("FLEET_HTTP_ADDR", format!("127.0.0.1:{}", self.port))
            .env("FLEET_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("FLEET_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info,sqlx=warn,tower_http=warn")
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("the fleetstream binary");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = http
                .get(self.url("/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("fleetstream exited with {status}:\n{}", tail(&self.log, 30));
            }
            assert!(
                Instant::now() < deadline,
                "fleetstream did not answer /health within 60 s:\n{}",
                tail(&self.log, 30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9: no shutdown hook runs, in-flight requests and batches are cut off.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn base(&self) -> String {
        self.url("")
    }

    /// Whether the process is still alive (a panic in a task does not end it; an abort would).
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Lines of the server log that hold `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}
