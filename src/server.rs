//! A running fleetstream: the HTTP API of every namespace, Socket.IO (fed from NATS) and the
//! background workers. `serve` runs one; integration tests run several on loopback ports.

use crate::state::AppState;
use crate::workers::{self, WorkerSet};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    handles: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, drains requests and lets the workers finish their batch.
    pub async fn stop(self) {
        self.shutdown.cancel();
        futures::future::join_all(self.handles).await;
    }
}

/// Serves on `listener` until `stop` resolves or the returned token is cancelled.
pub async fn start(
    state: AppState,
    listener: TcpListener,
    set: WorkerSet,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let mut handles = workers::spawn(&state, set, shutdown.clone()).await?;
    let (socket_layer, io) = crate::realtime::build(state.clone());
    if state.nats.is_some() {
        handles.push(tokio::spawn(crate::realtime::feed::run(
            io,
            state.clone(),
            shutdown.clone(),
        )));
    }
    let addr = listener.local_addr()?;
    let app = crate::app::router(state)
        .layer(socket_layer)
        .into_make_service_with_connect_info::<SocketAddr>();
    let stopping = shutdown.clone();
    handles.push(tokio::spawn(async move {
        let graceful = stopping.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop => graceful.cancel(),
                _ = graceful.cancelled() => {}
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopping.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "HTTP server stopped");
        }
    }));
    Ok(Running {
        addr,
        shutdown,
        handles,
    })
}
