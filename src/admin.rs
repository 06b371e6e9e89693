//! The admin HTTP API on its own port: `/metrics` (Prometheus text), `/health` (the process
//! works) and `/ready` (send traffic here: listeners up, not draining).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Where the gateway is in its life, as `/ready` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Ready = 1,
    Draining = 2,
    /// The sink stopped: nothing can be committed, so nothing should be sent here.
    Failed = 3,
}

/// What the sink can do now, as `/ready` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SinkState {
    /// Events are committed where they belong.
    Committing = 0,
    /// Kafka does not take events; they are committed to the spool (degraded, still ready).
    Spooling = 1,
    /// Kafka does not take events and the spool is full: nothing can be committed now.
    SpoolFull = 2,
}

/// The sink's half of readiness: the sink sets it, `/ready` reads it.
#[derive(Clone, Default)]
pub struct SinkStatus(Arc<AtomicU8>);

impl SinkStatus {
    pub fn set(&self, state: SinkState) {
        self.0.store(state as u8, Ordering::SeqCst);
    }

    pub fn get(&self) -> SinkState {
        match self.0.load(Ordering::SeqCst) {
            1 => SinkState::Spooling,
            2 => SinkState::SpoolFull,
            _ => SinkState::Committing,
        }
    }
}

#[derive(Clone, Default)]
pub struct Readiness {
    phase: Arc<AtomicU8>,
    pub sink: SinkStatus,
}

impl Readiness {
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// Starting → Ready, unless something (a failed sink) moved it elsewhere meanwhile.
    pub fn mark_ready(&self) {
        let _ = self.phase.compare_exchange(
            Phase::Starting as u8,
            Phase::Ready as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            1 => Phase::Ready,
            2 => Phase::Draining,
            3 => Phase::Failed,
            _ => Phase::Starting,
        }
    }
}

/// The process-wide Prometheus recorder (the `metrics` facade allows one per process; a program
/// embedding several gateways shares it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Someone else's recorder may already be installed when we are embedded; then our
            // metrics go there and /metrics shows only what reaches ours.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics will be incomplete"
                );
            }
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("spawn metrics upkeep thread");
            handle
        })
        .clone()
}

#[derive(Clone)]
struct AdminState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

pub fn router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(AdminState { metrics, readiness })
}

async fn render_metrics(
    State(state): State<AdminState>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    match state.readiness.phase() {
        Phase::Ready => match state.readiness.sink.get() {
            SinkState::Committing => (StatusCode::OK, "ready\n"),
            SinkState::Spooling => (StatusCode::OK, "degraded: Kafka unavailable, spooling\n"),
            SinkState::SpoolFull => (
                StatusCode::SERVICE_UNAVAILABLE,
                "spool full: Kafka unavailable\n",
            ),
        },
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
        Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        Phase::Failed => (StatusCode::SERVICE_UNAVAILABLE, "sink failed\n"),
    }
}

/// Serves the admin API until `stop` fires.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, stop: CancellationToken) {
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "admin API failed");
    }
}
