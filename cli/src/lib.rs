//! The `campaign` command's library: the local HTTP/WebSocket server and the one-shot
//! runner, so the integration tests can start the real thing in process.

#[cfg(feature = "bench")]
pub mod bench;
pub mod generators;
pub mod metrics;
/// A simulated model server (OpenAI-compatible) at a model's pace, for the bench.
#[cfg(feature = "bench")]
pub mod model_sim;
pub mod run;
/// A Lambda Runtime API on loopback: the bench's cold-start rows and the tests use it;
/// not part of the `campaign` a user installs (feature `bench`).
#[cfg(feature = "bench")]
pub mod runtime_api;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use campaign_shared::runtime::local::{LocalApp, LocalConfig, StartError};

/// A started `campaign serve`: its address and a handle to stop it.
#[derive(Debug)]
pub struct Served {
    pub addr: SocketAddr,
    pub app: Arc<LocalApp>,
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Graceful stop: stop accepting, finish in-flight requests, stop executions.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        self.app.shutdown().await;
    }
}

/// Starts the local app and serves its API on `addr` (port 0 picks a free port).
pub async fn serve(addr: SocketAddr, cfg: LocalConfig) -> Result<Served, ServeError> {
    metrics::handle();
    let app = Arc::new(LocalApp::start(cfg).await?);
    let state = server::AppState { app: app.clone() };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(ServeError::Bind)?;
    let addr = listener.local_addr().map_err(ServeError::Bind)?;
    // Events are small frames: without TCP_NODELAY, Nagle's algorithm and the peer's
    // delayed ACK hold a frame that follows another for up to 40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let token = shutdown.clone();
    // Access log: one INFO line per request with its method, path, status and latency.
    let access = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO))
        .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO));
    let router = server::router(state).layer(access);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
    });
    Ok(Served {
        addr,
        app,
        shutdown,
        task,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot listen: {0}")]
    Bind(#[source] std::io::Error),
}
