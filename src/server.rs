//! A running fleetstream (HTTP of every namespace, Socket.IO, workers) and the HTTP server loop: hyper directly (rather than `axum::serve`) because a client that
//! trickles its request headers must be cut after `FLEET_HEADER_TIMEOUT_SECS`, which only
//! hyper's connection builder can do. Shuts down gracefully on SIGTERM / Ctrl-C.

use crate::state::AppState;
use crate::workers::{self, WorkerSet};
use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long open connections get to finish their requests after the stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the API on `FLEET_HTTP_ADDR` (with the workers unless `with_workers` is false) until
/// SIGTERM or Ctrl-C.
pub async fn serve(state: AppState, with_workers: bool) -> anyhow::Result<()> {
    let addr = state.config.http_addr;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("FLEET_HTTP_ADDR: cannot listen on {addr}"))?;
    let set = WorkerSet {
        projections: with_workers,
        only: None,
        relay: with_workers,
        ingest: with_workers,
    };
    let running = start(state, listener, set, async {
        shutdown_signal().await;
        tracing::info!("shutting down: draining requests and finishing projection batches");
    })
    .await?;
    tracing::info!(addr = %running.addr, "fleetstream listening");
    running.shutdown.cancelled().await;
    running.stop().await;
    Ok(())
}

/// A running fleetstream: the HTTP API of every namespace, Socket.IO (fed from NATS) and the
/// background workers. `serve` runs one; integration tests run several on loopback ports.
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
    let header_timeout = state.config.header_timeout;
    let app = crate::app::router_with_realtime(state, socket_layer);
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = stop => stopping.cancel(),
            _ = stopping.cancelled() => {}
        }
    });
    handles.push(tokio::spawn(run(
        listener,
        app,
        header_timeout,
        shutdown.clone().cancelled_owned(),
    )));
    Ok(Running {
        addr,
        shutdown,
        handles,
    })
}

/// Accepts connections on `listener` and serves `app` on each until `stop` completes, then
/// drains open connections (at most [`DRAIN_TIMEOUT`]).
pub async fn run(
    listener: TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            app.clone()
                .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.map(axum::body::Body::new)
                });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, %peer, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Binds `127.0.0.1:0` and serves `app` in the background (tests and benchmarks that need a
/// real socket); returns the address. The server stops when `stop` is cancelled.
pub async fn spawn_local(
    app: axum::Router,
    header_timeout: Duration,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { run(listener, app, header_timeout, stop.cancelled_owned()).await });
    Ok(addr)
}
