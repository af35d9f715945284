//! A private nats-server with its own JetStream store (and, on request, an MQTT listener), on
//! free loopback ports; killed on drop. Tests that use JetStream streams and consumers of their
//! own need one: the shared server's streams would mix the tests' events.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct NatsServer {
    child: Child,
    pub port: u16,
    pub mqtt_port: Option<u16>,
    store_dir: PathBuf,
    conf: PathBuf,
}

fn nats_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nats-server");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("nats-server")
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

async fn wait_listening(port: u16) {
    let ready = async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("nats-server did not start listening");
}

impl NatsServer {
    /// JetStream only.
    pub async fn start() -> Self {
        Self::start_with(false, None).await
    }

    /// JetStream and an MQTT listener (devices publish `devices/{uid}/…` there).
    pub async fn start_with_mqtt() -> Self {
        Self::start_with(true, None).await
    }

    /// JetStream with `max_payload` bytes per message.
    pub async fn start_limited(max_payload: usize) -> Self {
        Self::start_with(false, Some(max_payload)).await
    }

    async fn start_with(mqtt: bool, max_payload: Option<usize>) -> Self {
        let store_dir = std::env::temp_dir().join(format!("fleet-nats-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&store_dir).unwrap();
        let port = free_port();
        let mqtt_port = mqtt.then(free_port);
        let mut conf = format!(
            "server_name: test_{port}\nlisten: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n",
            store_dir.display().to_string()
        );
        if let Some(max) = max_payload {
            conf.push_str(&format!("max_payload: {max}\n"));
        }
        if let Some(mqtt_port) = mqtt_port {
            conf.push_str(&format!("mqtt {{ listen: 127.0.0.1:{mqtt_port} }}\n"));
        }
        let conf_path = store_dir.join("nats.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut server = Self {
            child: spawn(&conf_path),
            port,
            mqtt_port,
            store_dir,
            conf: conf_path,
        };
        server.wait().await;
        server
    }

    async fn wait(&mut self) {
        wait_listening(self.port).await;
        if let Some(mqtt) = self.mqtt_port {
            wait_listening(mqtt).await;
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The same server again: same ports, same JetStream store.
    pub async fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.conf);
        self.wait().await;
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }
}

fn spawn(conf: &Path) -> Child {
    Command::new(nats_binary())
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (install nats-server or put it on PATH)")
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store_dir);
    }
}
