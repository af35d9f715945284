//! Socket.IO at `/socket.io/` (seed 002): `/monitoring` (live telemetry and status of the
//! devices a socket subscribed to), `/device` (commands to devices and their responses),
//! `/notification` (alert notifications). A connection authenticates with an access token of
//! any door (`auth: {token}`) and sees only what its account may see. What sockets receive is
//! fed from NATS (the relay's `fleet.>` events, see [`feed`]), so a socket connected to one
//! server instance receives what another instance recorded.

pub mod feed;

use crate::auth::Caller;
use crate::device_messages::{self, Outgoing, SendFailure};
use crate::devices::views;
use crate::state::AppState;
use fleetstream_events::{DeviceChannel, EventMetadata};
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;

pub const MONITORING: &str = "/monitoring";
pub const DEVICE: &str = "/device";
pub const NOTIFICATION: &str = "/notification";
/// Room of everyone allowed to see every notification (managers and above).
pub const MANAGERS_ROOM: &str = "managers";

pub fn device_room(uid: &str) -> String {
    format!("device:{uid}")
}

pub fn user_room(account_id: i64) -> String {
    format!("user:{account_id}")
}

/// The layer to put on the router, and the handle the feed emits through.
pub fn build(state: AppState) -> (SocketIoLayer, SocketIo) {
    let (layer, io) = SocketIo::builder().with_state(state).build_layer();
    // Everything happens in the connect middleware, which runs before the client is told it is
    // connected: event handlers registered in the connect handler (which runs after) would miss
    // an event a client emits right away.
    io.ns(MONITORING, connected.with(join_monitoring));
    io.ns(DEVICE, connected.with(join_device));
    io.ns(NOTIFICATION, connected.with(join_notification));
    (layer, io)
}

#[derive(Debug)]
pub struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn connected(_socket: SocketRef) {}

async fn join_monitoring(
    socket: SocketRef,
    State(state): State<AppState>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    authenticate(&socket, &state, auth.ok()).await?;
    socket.on("subscribe_device", subscribe_device);
    socket.on("unsubscribe_device", unsubscribe_device);
    Ok(())
}

async fn join_notification(
    socket: SocketRef,
    State(state): State<AppState>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    authenticate(&socket, &state, auth.ok()).await?;
    socket.on("join_user_room", join_user_room);
    Ok(())
}

/// Refuses a connection without a valid access token (none, forged, expired, a refresh
/// token, or a deactivated account); the rest of a socket's life uses the caller stored here.
async fn authenticate(
    socket: &SocketRef,
    state: &AppState,
    auth: Option<Value>,
) -> Result<Caller, Refused> {
    let token = auth
        .and_then(|auth| auth.get("token").and_then(Value::as_str).map(str::to_owned))
        .filter(|t| !t.trim().is_empty())
        .ok_or(Refused("Not authenticated"))?;
    let token = token.trim().trim_start_matches("Bearer ").trim();
    let caller = Caller::from_token(state, token)
        .await
        .map_err(|_| Refused("Could not validate credentials"))?;
    socket.extensions.insert(caller.clone());
    Ok(caller)
}

fn caller(socket: &SocketRef) -> Option<Caller> {
    socket.extensions.get::<Caller>()
}

fn reply(ack: AckSender, body: Value) {
    // A client that asked for no acknowledgement gets none.
    let _ = ack.send(&body);
}

fn refuse(ack: AckSender, error: &str) {
    reply(ack, json!({ "ok": false, "error": error }));
}

fn device_uid(body: &Value) -> Option<String> {
    match body.get("device_uid") {
        Some(Value::String(uid)) if !uid.trim().is_empty() => Some(uid.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Joins the device's room when the account may see the device (its owner, the account of its
/// paired patient, managers and above); otherwise the same answer as for a missing device.
async fn subscribe_device(
    socket: SocketRef,
    State(state): State<AppState>,
    TryData(body): TryData<Value>,
    ack: AckSender,
) {
    let (Some(caller), Some(uid)) = (caller(&socket), body.ok().as_ref().and_then(device_uid))
    else {
        return refuse(ack, "device_uid is required");
    };
    let visible = async {
        let mut conn = state.pool().acquire().await?;
        let Some(device) = views::by_unique_id(&mut conn, &uid).await? else {
            return Ok::<_, sqlx::Error>(false);
        };
        Ok(
            views::visible_by_id(&mut conn, device.id, caller.account_id, caller.is_manager())
                .await?
                .is_some(),
        )
    }
    .await;
    match visible {
        Ok(true) => {
            socket.join(device_room(&uid));
            reply(ack, json!({ "ok": true, "device_uid": uid }));
        }
        Ok(false) => refuse(ack, "Device not found"),
        Err(err) => {
            tracing::error!(error = %err, "subscribe_device failed");
            refuse(ack, "Internal Server Error")
        }
    }
}

async fn unsubscribe_device(socket: SocketRef, TryData(body): TryData<Value>, ack: AckSender) {
    match body.ok().as_ref().and_then(device_uid) {
        Some(uid) => {
            socket.leave(device_room(&uid));
            reply(ack, json!({ "ok": true, "device_uid": uid }));
        }
        None => refuse(ack, "device_uid is required"),
    }
}

/// Every socket of `/device` is in its account's room: responses to the commands the account
/// sent come back there.
async fn join_device(
    socket: SocketRef,
    State(state): State<AppState>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    let caller = authenticate(&socket, &state, auth.ok()).await?;
    socket.join(user_room(caller.account_id));
    socket.on(
        "send_command",
        async |s: SocketRef, st: State<AppState>, d: TryData<Value>, a: AckSender| {
            send(s, st, d, a, DeviceChannel::Command).await
        },
    );
    socket.on(
        "send_config",
        async |s: SocketRef, st: State<AppState>, d: TryData<Value>, a: AckSender| {
            send(s, st, d, a, DeviceChannel::Config).await
        },
    );
    socket.on(
        "send_ota",
        async |s: SocketRef, st: State<AppState>, d: TryData<Value>, a: AckSender| {
            send(s, st, d, a, DeviceChannel::Ota).await
        },
    );
    Ok(())
}

/// `{device_uid, command}` (for `send_command`, an optional `type` of `config|ota` chooses
/// that channel instead).
async fn send(
    socket: SocketRef,
    State(state): State<AppState>,
    TryData(body): TryData<Value>,
    ack: AckSender,
    channel: DeviceChannel,
) {
    let body = body.unwrap_or(Value::Null);
    let (Some(caller), Some(uid)) = (caller(&socket), device_uid(&body)) else {
        return refuse(ack, "device_uid is required");
    };
    let channel = match body.get("type").and_then(Value::as_str) {
        Some("config") if channel == DeviceChannel::Command => DeviceChannel::Config,
        Some("ota") if channel == DeviceChannel::Command => DeviceChannel::Ota,
        _ => channel,
    };
    let command = body
        .get("command")
        .or_else(|| body.get("config"))
        .or_else(|| body.get("ota"))
        .cloned()
        .unwrap_or(Value::Null);
    let metadata = EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    };
    let sent = device_messages::send(
        &state.store,
        state.nats.as_ref(),
        metadata,
        Outgoing {
            account_id: caller.account_id,
            is_manager: caller.is_manager(),
            device_uid: uid.clone(),
            channel,
            command,
        },
    )
    .await;
    match sent {
        Ok(command_id) => reply(
            ack,
            json!({ "ok": true, "command_id": command_id, "device_uid": uid }),
        ),
        Err(SendFailure::Refused(refusal)) => refuse(ack, refusal.message()),
        Err(SendFailure::Unreachable) => refuse(ack, "Device unreachable"),
        Err(SendFailure::Failed(err)) => {
            tracing::error!(error = %err, "send_command failed");
            refuse(ack, "Internal Server Error")
        }
    }
}

/// Only the caller's own room; managers and above also join the managers' room.
async fn join_user_room(socket: SocketRef, TryData(body): TryData<Value>, ack: AckSender) {
    let Some(caller) = caller(&socket) else {
        return refuse(ack, "Not authenticated");
    };
    let wanted = body.ok().and_then(|b| match b.get("user_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    });
    match wanted {
        Some(id) if id == caller.account_id => {
            socket.join(user_room(id));
            if caller.is_manager() {
                socket.join(MANAGERS_ROOM);
            }
            reply(ack, json!({ "ok": true, "user_id": id }));
        }
        Some(_) => refuse(ack, "Forbidden"),
        None => refuse(ack, "user_id is required"),
    }
}
