//! logport: an edge log-ingest gateway. Shippers send syslog (and, as they land, Beats, GELF and
//! Fluent forward); every event is committed to a sink (the embedded store by default) before
//! anything is acknowledged.
//!
//! The [`Gateway`] is the whole program minus its command line, so another Rust program can
//! embed it:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = logport::config::Config::default();
//! let running = logport::Gateway::new(config).start().await?;
//! // ... later, e.g. on SIGTERM:
//! running.shutdown();
//! running.wait().await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod admission;
pub mod batch;
pub mod config;
pub mod event;
pub mod sink;
pub mod source;
pub mod transport;
pub mod warn_limit;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{Phase, Readiness};
use crate::admission::{Admission, Budget};
use crate::batch::Sink;
use crate::config::{Config, ListenerConfig, ProtocolName, SinkKind, Transport};
use crate::sink::kafka::KafkaSink;
use crate::sink::store::{StoreConfig, StoreSink};
use crate::source::{ListenerMetrics, Pipeline};
use crate::transport::tcp::StreamListener;

/// Batches queued between the sources and the sink. The in-flight byte budget is the real bound;
/// this only keeps the queue itself from growing without limit.
const SINK_QUEUE: usize = 4096;

pub struct Gateway {
    config: Config,
}

/// A listener as bound (with the real port when the config asked for port 0).
#[derive(Clone, Debug)]
pub struct BoundListener {
    pub name: String,
    pub protocol: ProtocolName,
    pub transport: Transport,
    pub address: SocketAddr,
}

/// A started gateway.
pub struct Running {
    admission: Arc<Admission>,
    pub listeners: Vec<BoundListener>,
    pub admin_address: SocketAddr,
    shutdown: CancellationToken,
    skip_grace: CancellationToken,
    done: JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    pub fn new(config: Config) -> Gateway {
        Gateway { config }
    }

    /// Opens the sink, binds every listener and the admin API, and starts serving. Errors (a
    /// port in use, an unreadable certificate, a locked data dir) surface here, before anything
    /// is accepted.
    pub async fn start(self) -> anyhow::Result<Running> {
        let config = self.config;
        let metrics = admin::metrics_handle();
        metrics::gauge!("logport_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let readiness = Readiness::default();

        let sink: Box<dyn Sink> = match config.sink.kind {
            SinkKind::Store => Box::new(StoreSink::open(StoreConfig {
                dir: config.data_dir.join("store"),
                segment_bytes: config.store.segment_bytes.0,
                retention_bytes: config.store.retention_bytes.0,
                ..StoreConfig::default()
            })?),
            SinkKind::Kafka => Box::new(KafkaSink::open(&config, readiness.sink.clone())?),
        };
        let sink_name = sink.name();
        let (batches, queue) = mpsc::channel(SINK_QUEUE);
        let pipeline = Pipeline {
            batches,
            budget: Budget::new(config.in_flight_bytes.0),
            admission: Arc::new(Admission::new(&config.limits, config.in_flight_bytes.0)),
            can_wait: true,
        };

        let stop_accepting = CancellationToken::new();
        let drain = CancellationToken::new();
        // If starting fails half way, the listeners already running must stop (an embedding
        // program may go on, and try again).
        let stop_on_error = (
            stop_accepting.clone().drop_guard(),
            drain.clone().drop_guard(),
        );
        let connections = TaskTracker::new();
        let mut listener_tasks = Vec::new();
        let mut bound = Vec::new();
        for listener in &config.listeners {
            let (address, task) =
                spawn_listener(listener, &pipeline, &stop_accepting, &drain, &connections)
                    .with_context(|| {
                        format!(
                            "listener `{}` ({} over {} on {})",
                            listener.display_name(),
                            listener.protocol.as_str(),
                            listener.transport.as_str(),
                            listener.address
                        )
                    })?;
            tracing::info!(listener = %listener.display_name(), protocol = listener.protocol.as_str(), transport = listener.transport.as_str(), %address, "listening");
            bound.push(BoundListener {
                name: listener.display_name(),
                protocol: listener.protocol,
                transport: listener.transport,
                address,
            });
            listener_tasks.push(task);
        }
        // The sink ends when every sender is gone: the listeners' and connections' clones, and this one.
        let budget = pipeline.budget.clone();
        let admission = pipeline.admission.clone();
        drop(pipeline);
        let sink_readiness = readiness.clone();
        let sink_task = tokio::spawn(async move {
            let result = sink.run(queue).await;
            // The sink ends on its own only when every source is gone (a drain) or it failed.
            if sink_readiness.phase() != Phase::Draining {
                sink_readiness.set(Phase::Failed);
                match &result {
                    Ok(()) => tracing::error!(
                        sink = sink_name,
                        "the sink stopped; nothing can be committed"
                    ),
                    Err(e) => {
                        tracing::error!(sink = sink_name, error = %format!("{e:#}"), "the sink failed; nothing can be committed")
                    }
                }
            }
            result
        });

        let admin_listener = tokio::net::TcpListener::bind(config.admin.address)
            .await
            .with_context(|| format!("admin API on {}", config.admin.address))?;
        let admin_address = admin_listener.local_addr()?;
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(admin::serve(
            admin_listener,
            admin::router(metrics, readiness.clone()),
            admin_stop.clone(),
        ));
        tracing::info!(address = %admin_address, "admin API: /metrics /health /ready");

        let gauges_stop = admin_stop.clone();
        let housekeeping = admission.clone();
        tokio::spawn(async move {
            let in_flight = metrics::gauge!("logport_in_flight_bytes");
            metrics::gauge!("logport_in_flight_bytes_limit").set(budget.total() as f64);
            for tick in 0u64.. {
                in_flight.set(budget.in_flight() as f64);
                if tick % 60 == 59 {
                    housekeeping.forget_idle();
                }
                tokio::select! {
                    _ = gauges_stop.cancelled() => break,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        });

        let (guard_stop, guard_drain) = stop_on_error;
        guard_stop.disarm();
        guard_drain.disarm();
        readiness.mark_ready();
        tracing::info!(sink = sink_name, data_dir = %config.data_dir.display(), "logport is ready");

        let shutdown = CancellationToken::new();
        let skip_grace = CancellationToken::new();
        let done = tokio::spawn(drain_on(
            shutdown.clone(),
            (config.drain_grace, skip_grace.clone()),
            readiness,
            stop_accepting,
            drain,
            connections,
            listener_tasks,
            sink_task,
            admin_stop,
            admin_task,
        ));
        Ok(Running {
            admission,
            listeners: bound,
            admin_address,
            shutdown,
            skip_grace,
            done,
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn drain_on(
    shutdown: CancellationToken,
    (grace, skip_grace): (std::time::Duration, CancellationToken),
    readiness: Readiness,
    stop_accepting: CancellationToken,
    drain: CancellationToken,
    connections: TaskTracker,
    listener_tasks: Vec<JoinHandle<()>>,
    sink_task: JoinHandle<anyhow::Result<()>>,
    admin_stop: CancellationToken,
    admin_task: JoinHandle<()>,
) -> anyhow::Result<()> {
    shutdown.cancelled().await;
    readiness.set(Phase::Draining);
    if !grace.is_zero() {
        // Still accepting: a balancer that has not yet seen /ready turn 503 may send shippers
        // here, and refusing them would make them back off for nothing.
        tracing::info!(drain_grace = ?grace, "draining: /ready answers 503; listeners close after drain_grace");
        tokio::select! {
            _ = tokio::time::sleep(grace) => {}
            _ = skip_grace.cancelled() => tracing::info!("drain_grace skipped"),
        }
    }
    tracing::info!("draining: listeners closed, committing what is in flight");
    stop_accepting.cancel();
    for task in listener_tasks {
        let _ = task.await;
    }
    drain.cancel();
    connections.close();
    connections.wait().await;
    // Every sender is gone now, so the sink commits what it holds and returns.
    let result = match sink_task.await {
        Ok(result) => result.context("sink failed while draining"),
        Err(e) => Err(anyhow::anyhow!("sink task panicked: {e}")),
    };
    admin_stop.cancel();
    let _ = admin_task.await;
    if result.is_ok() {
        tracing::info!("drained: everything accepted is committed");
    }
    result
}

fn spawn_listener(
    listener: &ListenerConfig,
    pipeline: &Pipeline,
    stop: &CancellationToken,
    drain: &CancellationToken,
    connections: &TaskTracker,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let name: Arc<str> = listener.display_name().into();
    let datagrams;
    let pipeline = if listener.transport == Transport::Udp {
        datagrams = pipeline.for_datagrams();
        &datagrams
    } else {
        pipeline
    };
    match listener.protocol {
        ProtocolName::Syslog => {
            let shaper = source::syslog::Shaper::new(listener)?;
            let metrics = ListenerMetrics::new(&name, "syslog");
            match listener.transport {
                Transport::Udp => {
                    let socket = transport::udp::bind(
                        listener.address,
                        listener.receive_buffer_bytes.0 as usize,
                    )?;
                    let address = socket.local_addr()?;
                    transport::udp::warn_if_capped(&name, &socket, listener.receive_buffer_bytes.0);
                    let handler =
                        source::syslog::SyslogDatagrams::new(shaper, pipeline.clone(), metrics);
                    // UDP has no connections: it stops with the listeners, after reading what is queued.
                    Ok((
                        address,
                        tokio::spawn(transport::udp::run(name, socket, handler, stop.clone())),
                    ))
                }
                Transport::Tcp | Transport::Tls => {
                    let tls = match (&listener.tls, listener.transport) {
                        (Some(tls), Transport::Tls) => Some(transport::tls::acceptor(tls)?),
                        _ => None,
                    };
                    let socket = transport::tcp::bind(listener.address)?;
                    let address = socket.local_addr()?;
                    let handler = Arc::new(source::syslog::SyslogStream {
                        shaper,
                        max_message: listener.max_message_bytes.0 as usize,
                        pipeline: pipeline.clone(),
                        metrics,
                    });
                    let run =
                        StreamListener::configured(listener, name, "syslog", socket, tls, handler)
                            .run(stop.clone(), drain.clone(), connections.clone());
                    Ok((address, tokio::spawn(run)))
                }
            }
        }
        ProtocolName::Beats | ProtocolName::Gelf | ProtocolName::Forward => {
            let context = source::SpawnContext {
                pipeline,
                stop,
                drain,
                connections,
            };
            match listener.protocol {
                ProtocolName::Beats => source::beats::spawn(listener, name, context),
                ProtocolName::Gelf => source::gelf::spawn(listener, name, context),
                _ => source::forward::spawn(listener, name, context),
            }
        }
    }
}

impl Running {
    /// Applies the `[limits]` of a reloaded configuration (SIGHUP); connections stay open.
    pub fn reload_limits(&self, limits: &config::LimitsConfig) {
        self.admission.reload(limits);
    }

    /// Starts the drain: `/ready` turns 503, listeners close, what was accepted is committed.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Ends `drain_grace` early (a second SIGTERM/SIGINT: someone at a terminal is waiting).
    pub fn skip_drain_grace(&self) -> impl Fn() + Send + 'static {
        let skip = self.skip_grace.clone();
        move || skip.cancel()
    }

    /// Waits until the gateway has drained (after [`Running::shutdown`]) or failed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("gateway task panicked")?
    }

    /// The address a listener is bound to, by name.
    pub fn address(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.address)
    }
}
