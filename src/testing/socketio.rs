//! A Socket.IO v4 client for tests and benchmarks, over the WebSocket transport: connect to one namespace
//! with `auth`, emit with an acknowledgement, and wait for server events. Only what the tests
//! use of the protocol (Engine.IO open/ping/pong/message, Socket.IO connect, connect_error,
//! event, ack). Crate clients bring a TLS stack and a blocking HTTP client; this is the test's
//! own view of the wire, as seed 002's browser dashboard speaks it.

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Acks = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct SocketIoClient {
    namespace: String,
    outgoing: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedReceiver<(String, Value)>,
    acks: Acks,
    next_ack: u64,
}

/// Splits `/ns,rest` into the namespace and the rest (no namespace = `/`).
fn split_namespace(packet: &str) -> (&str, &str) {
    if packet.starts_with('/') {
        match packet.find(',') {
            Some(comma) => (&packet[..comma], &packet[comma + 1..]),
            None => (packet, ""),
        }
    } else {
        ("/", packet)
    }
}

impl SocketIoClient {
    /// Connects to `namespace` at `addr` with `auth`; `Err(message)` when the server refuses
    /// the namespace connection (`connect_error`).
    pub async fn connect(
        addr: std::net::SocketAddr,
        namespace: &str,
        auth: Value,
    ) -> Result<Self, String> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("websocket: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        // Engine.IO open packet.
        match stream.next().await {
            Some(Ok(Message::Text(open))) if open.starts_with('0') => {}
            other => return Err(format!("no open packet: {other:?}")),
        }
        sink.send(Message::Text(format!("40{namespace},{auth}").into()))
            .await
            .map_err(|e| e.to_string())?;
        // Until the namespace answers: connect (40) or connect_error (44).
        loop {
            let Some(Ok(Message::Text(text))) = stream.next().await else {
                return Err("closed before the namespace answered".into());
            };
            let text = text.to_string();
            if text == "2" {
                sink.send(Message::Text("3".into()))
                    .await
                    .map_err(|e| e.to_string())?;
                continue;
            }
            if let Some(rest) = text.strip_prefix("44") {
                let (_, body) = split_namespace(rest);
                let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                return Err(body["message"].as_str().unwrap_or("refused").to_owned());
            }
            if text.starts_with("40") {
                break;
            }
        }

        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        let (event_tx, events) = mpsc::unbounded_channel();
        let acks: Acks = Arc::default();
        let pong = outgoing.clone();
        tokio::spawn(async move {
            while let Some(text) = to_send.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        });
        let reader_acks = acks.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let text = text.to_string();
                if text == "2" {
                    let _ = pong.send("3".into());
                } else if let Some(rest) = text.strip_prefix("42") {
                    let (_, body) = split_namespace(rest);
                    let body = body.trim_start_matches(|c: char| c.is_ascii_digit());
                    if let Ok(Value::Array(mut parts)) = serde_json::from_str::<Value>(body) {
                        if !parts.is_empty() {
                            let name = parts.remove(0).as_str().unwrap_or_default().to_owned();
                            let data = parts.into_iter().next().unwrap_or(Value::Null);
                            let _ = event_tx.send((name, data));
                        }
                    }
                } else if let Some(rest) = text.strip_prefix("43") {
                    let (_, body) = split_namespace(rest);
                    let digits: String = body.chars().take_while(|c| c.is_ascii_digit()).collect();
                    let data = serde_json::from_str::<Value>(&body[digits.len()..])
                        .ok()
                        .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
                        .unwrap_or(Value::Null);
                    if let Ok(id) = digits.parse::<u64>() {
                        if let Some(reply) = reader_acks.lock().unwrap().remove(&id) {
                            let _ = reply.send(data);
                        }
                    }
                }
            }
        });
        Ok(Self {
            namespace: namespace.to_owned(),
            outgoing,
            events,
            acks,
            next_ack: 0,
        })
    }

    /// Emits `event` with `data` and waits (bounded) for the server's acknowledgement.
    pub async fn emit_with_ack(&mut self, event: &str, data: Value) -> Value {
        self.next_ack += 1;
        let id = self.next_ack;
        let (reply, answer) = oneshot::channel();
        self.acks.lock().unwrap().insert(id, reply);
        let packet = format!(
            "42{},{id}{}",
            self.namespace,
            Value::Array(vec![Value::String(event.into()), data])
        );
        self.outgoing.send(packet).expect("socket open");
        tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .unwrap_or_else(|_| panic!("no acknowledgement of {event}"))
            .expect("acknowledged")
    }

    /// The next server event named `name` within `timeout` (others are passed over).
    pub async fn next_event(&mut self, name: &str, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some((event, data))) if event == name => return Some(data),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }
}
