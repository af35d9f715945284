//! The NATS relay against a real nats-server (our own, on a free port, with its own JetStream
//! store): events reach `FLEET_EVENTS` in log order with their headers; while NATS is down they
//! wait in the log and, once it is back on the same port and store, all of them arrive with no
//! duplicate for a subscriber that de-duplicates by `Nats-Msg-Id`.

use fleetstream::relay;
use fleetstream_events::store::{self, ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{EventEnvelope, StoredEvent};
use fleetstream_projections::Wakeup;
use sqlx::PgPool;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A private nats-server; killed on drop.
struct NatsServer {
    child: Child,
    port: u16,
    store_dir: PathBuf,
}

fn nats_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nats-server");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("nats-server")
    }
}

impl NatsServer {
    async fn start(port: u16, store_dir: &Path) -> Self {
        Self::start_with(port, store_dir, None).await
    }

    /// A server whose `max_payload` is `max_payload` bytes.
    async fn start_limited(port: u16, store_dir: &Path, max_payload: usize) -> Self {
        Self::start_with(port, store_dir, Some(max_payload)).await
    }

    async fn start_with(port: u16, store_dir: &Path, max_payload: Option<usize>) -> Self {
        let mut command = Command::new(nats_binary());
        if let Some(max_payload) = max_payload {
            let conf = store_dir.join("limited.conf");
            std::fs::write(&conf, format!("max_payload: {max_payload}\n")).unwrap();
            command.arg("-c").arg(conf);
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (install nats-server or put it on PATH)");
        let server = Self {
            child,
            port,
            store_dir: store_dir.to_owned(),
        };
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
        server
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn restart(mut self) -> Self {
        self.stop();
        Self::start(self.port, &self.store_dir.clone()).await
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// Appends `n` events, one per transaction, alternating over two streams of category `order`.
async fn append_orders(pool: &PgPool, from: i64, n: i64) -> Vec<StoredEvent> {
    let mut stored = Vec::new();
    for i in from..from + n {
        let mut tx = pool.begin().await.unwrap();
        stored.extend(
            store::append(
                &mut tx,
                &[StreamAppend {
                    stream_id: format!("order-{}", i % 2),
                    expected: ExpectedVersion::Any,
                    events: vec![NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: "OrderPlaced".into(),
                        schema_version: 2,
                        data: serde_json::json!({ "n": i }),
                        metadata: serde_json::json!({ "actor": 7 }),
                    }],
                }],
            )
            .await
            .unwrap(),
        );
        tx.commit().await.unwrap();
    }
    stored
}

/// Every message in FLEET_EVENTS, in stream order (bounded wait until at least `distinct`
/// distinct Msg-Ids are there). Returns the de-duplicated messages.
async fn dedup_messages(
    js: &async_nats::jetstream::Context,
    distinct: usize,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let collect = async {
        loop {
            if let Ok(mut stream) = js.get_stream(relay::STREAM_NAME).await {
                if let Ok(info) = stream.info().await {
                    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
                    let mut seen = HashSet::new();
                    let mut unique = Vec::new();
                    for seq in first.max(1)..=last {
                        let Ok(message) = stream.get_raw_message(seq).await else {
                            continue;
                        };
                        let id = message
                            .headers
                            .get(async_nats::header::NATS_MESSAGE_ID)
                            .map(|v| v.as_str().to_owned())
                            .unwrap_or_else(|| panic!("no Nats-Msg-Id: {:?}", message.headers));
                        if seen.insert(id) {
                            unique.push(message);
                        }
                    }
                    if unique.len() >= distinct {
                        return unique;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(45), collect)
        .await
        .unwrap_or_else(|_| panic!("FLEET_EVENTS never held {distinct} distinct events"))
}

fn assert_in_log_order(
    messages: &[async_nats::jetstream::message::StreamMessage],
    events: &[StoredEvent],
) {
    let got: Vec<String> = messages
        .iter()
        .map(|m| {
            m.headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .unwrap()
                .as_str()
                .to_owned()
        })
        .collect();
    let want: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(got, want, "events out of log order, lost or duplicated");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn relay_publishes_in_log_order_and_survives_a_nats_restart(pool: PgPool) {
    let store_dir = std::env::temp_dir().join(format!("fleet-relay-test-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&store_dir).unwrap();
    let nats = NatsServer::start(free_port(), &store_dir).await;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .connect(nats.url())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client.clone());

    let mut events = append_orders(&pool, 0, 20).await;
    let shutdown = CancellationToken::new();
    let wakeup = Wakeup::listen(&pool, shutdown.clone()).await.unwrap();
    let relay_task = tokio::spawn(relay::run(
        pool.clone(),
        nats.url(),
        wakeup,
        shutdown.clone(),
    ));

    let first = dedup_messages(&js, 20).await;
    assert_in_log_order(&first, &events);
    let (message, event) = (&first[3], &events[3]);
    assert_eq!(
        message.subject.as_str(),
        format!("fleet.order.{}.OrderPlaced", event.stream_id)
    );
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
    let msg_id = message.headers.get(async_nats::header::NATS_MESSAGE_ID);
    assert_eq!(
        msg_id.map(|v| v.to_string()),
        Some(event.event_id.to_string())
    );
    assert_eq!(
        header("Fleet-Position"),
        Some(event.global_position.to_string())
    );
    assert_eq!(
        header("Fleet-Stream-Version"),
        Some(event.stream_version.to_string())
    );
    assert_eq!(header("Fleet-Event-Type"), Some("OrderPlaced".to_owned()));
    assert_eq!(header("Fleet-Schema-Version"), Some("2".to_owned()));
    let envelope: EventEnvelope = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(envelope, EventEnvelope::from(event));

    // NATS goes away; events keep coming and wait in the log.
    let mut nats = nats;
    nats.stop();
    events.extend(append_orders(&pool, 20, 15).await);
    // Stay down past JetStream's 5 s ack timeout, so the relay's publishes fail and it goes
    // back to its checkpoint (the retry path), instead of merely buffering until reconnect.
    tokio::time::sleep(Duration::from_secs(6)).await;
    events.extend(append_orders(&pool, 35, 5).await);
    let nats = nats.restart().await;

    let all = dedup_messages(&js, 40).await;
    assert_in_log_order(&all, &events);

    // The checkpoint follows the acks to the end of the log.
    let last = events.last().unwrap().global_position;
    let checkpointed = async {
        loop {
            let at: Option<i64> = sqlx::query_scalar(
                "SELECT global_position FROM projection_checkpoints WHERE name = $1",
            )
            .bind(relay::RELAY_NAME)
            .fetch_optional(&pool)
            .await
            .unwrap();
            if at == Some(last) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), checkpointed)
        .await
        .expect("relay checkpoint never reached the last event");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), relay_task)
        .await
        .expect("relay stops on shutdown")
        .unwrap();
    drop(nats);
    let _ = std::fs::remove_dir_all(&store_dir);
}

/// Appends one event of category `order` whose payload holds `bytes` bytes of text.
async fn append_order_of_size(pool: &PgPool, n: i64, bytes: usize) -> StoredEvent {
    let mut tx = pool.begin().await.unwrap();
    let stored = store::append(
        &mut tx,
        &[StreamAppend {
            stream_id: format!("order-{}", n % 2),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "OrderPlaced".into(),
                schema_version: 1,
                data: serde_json::json!({ "n": n, "notes": "x".repeat(bytes) }),
                metadata: serde_json::json!({ "actor": 7 }),
            }],
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    stored.into_iter().next().unwrap()
}

fn header(message: &async_nats::jetstream::message::StreamMessage, name: &str) -> Option<String> {
    if name == "Nats-Msg-Id" {
        return message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned());
    }
    message.headers.get(name).map(|v| v.as_str().to_owned())
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_event_over_the_servers_max_payload_goes_out_reduced_and_the_rest_follow_in_order(
    pool: PgPool,
) {
    let metrics = fleetstream::telemetry::metrics_handle();
    let store_dir = std::env::temp_dir().join(format!("fleet-relay-test-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&store_dir).unwrap();
    // A server that takes at most 64 KiB per message: a legal 100 KB event does not fit.
    let nats = NatsServer::start_limited(free_port(), &store_dir, 64 * 1024).await;
    let mut events = append_orders(&pool, 0, 3).await;
    let large = append_order_of_size(&pool, 3, 100_000).await;
    events.push(large.clone());
    events.extend(append_orders(&pool, 4, 3).await);

    let shutdown = CancellationToken::new();
    let wakeup = Wakeup::listen(&pool, shutdown.clone()).await.unwrap();
    let relay_task = tokio::spawn(relay::run(
        pool.clone(),
        nats.url(),
        wakeup,
        shutdown.clone(),
    ));
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);

    let published = dedup_messages(&js, events.len()).await;
    assert_in_log_order(&published, &events);
    let reduced = &published[3];
    let whole_bytes = serde_json::to_vec(&EventEnvelope::from(&large))
        .unwrap()
        .len();
    assert_eq!(
        header(reduced, "Fleet-Payload-Omitted"),
        Some(whole_bytes.to_string())
    );
    assert_eq!(
        header(reduced, "Fleet-Payload-Omitted-Reason").as_deref(),
        Some("size")
    );
    assert_eq!(
        header(reduced, "Fleet-Position"),
        Some(large.global_position.to_string())
    );
    let envelope: EventEnvelope = serde_json::from_slice(&reduced.payload).unwrap();
    assert_eq!(envelope.data, serde_json::Value::Null);
    assert_eq!(envelope.event_id, large.event_id);
    assert_eq!(
        envelope.payload_omitted.map(|o| (o.bytes, o.reason)),
        Some((whole_bytes as u64, "size".to_owned()))
    );
    // The others travel whole.
    for (message, event) in published
        .iter()
        .zip(&events)
        .filter(|(_, e)| e.event_id != large.event_id)
    {
        assert_eq!(header(message, "Fleet-Payload-Omitted"), None);
        let envelope: EventEnvelope = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(envelope, EventEnvelope::from(event));
    }
    // Events appended afterwards keep flowing.
    events.extend(append_orders(&pool, 7, 2).await);
    let all = dedup_messages(&js, events.len()).await;
    assert_in_log_order(&all, &events);
    assert!(
        metrics
            .render()
            .contains("fleet_relay_events_reduced_total{reason=\"size\"}"),
        "the reduced event is counted"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), relay_task)
        .await
        .expect("relay stops on shutdown")
        .unwrap();
    drop(nats);
    let _ = std::fs::remove_dir_all(&store_dir);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_message_jetstream_refuses_is_published_reduced_and_the_batch_completes(pool: PgPool) {
    let store_dir = std::env::temp_dir().join(format!("fleet-relay-test-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&store_dir).unwrap();
    let nats = NatsServer::start(free_port(), &store_dir).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let publisher = relay::Publisher::new(client.clone()).await.unwrap();
    // The stream's limit shrinks after the publisher read it: JetStream itself refuses.
    let js = async_nats::jetstream::new(client);
    let mut config = js
        .get_stream(relay::STREAM_NAME)
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    config.max_message_size = 4096;
    js.update_stream(config).await.unwrap();

    let mut events = append_orders(&pool, 0, 2).await;
    let large = append_order_of_size(&pool, 2, 10_000).await;
    events.push(large.clone());
    events.extend(append_orders(&pool, 3, 2).await);
    publisher.publish_batch(&events).await.unwrap();

    let published = dedup_messages(&js, events.len()).await;
    let reduced = published
        .iter()
        .find(|m| header(m, "Nats-Msg-Id") == Some(large.event_id.to_string()))
        .unwrap_or_else(|| {
            let seen: Vec<_> = published
                .iter()
                .map(|m| {
                    (
                        header(m, "Nats-Msg-Id"),
                        header(m, "Fleet-Payload-Omitted-Reason"),
                    )
                })
                .collect();
            panic!(
                "the refused event is not on the stream: {seen:?}, want {}",
                large.event_id
            )
        });
    assert_eq!(
        header(reduced, "Fleet-Payload-Omitted-Reason").as_deref(),
        Some("refused")
    );
    assert_eq!(
        header(reduced, "Fleet-Position"),
        Some(large.global_position.to_string())
    );
    let envelope: EventEnvelope = serde_json::from_slice(&reduced.payload).unwrap();
    assert_eq!(envelope.data, serde_json::Value::Null);
    let ids: HashSet<String> = published
        .iter()
        .filter_map(|m| header(m, "Nats-Msg-Id"))
        .collect();
    assert!(events.iter().all(|e| ids.contains(&e.event_id.to_string())));
    drop(nats);
    let _ = std::fs::remove_dir_all(&store_dir);
}
