//! The `logport` command line. Everything but argument handling lives in the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use logport::config::Config;
use logport::sink::store::Reader;

#[derive(Parser)]
#[command(
    name = "logport",
    version,
    about = "Edge log-ingest gateway: syslog in, committed events out",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default when no command is given).
    Run(RunArgs),
    /// Validate a configuration file and print the effective configuration (defaults filled in).
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Print committed events from the embedded store as JSON lines, exactly as they go to Kafka.
    Read(ReadArgs),
}

#[derive(Args, Default)]
struct RunArgs {
    /// TOML configuration file; without one, built-in defaults (syslog on TCP and UDP 5514,
    /// admin API on 127.0.0.1:9600, store in ./data).
    #[arg(short, long, env = "LOGPORT_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `data_dir` of the configuration.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Commit to Kafka at these bootstrap brokers (`host:port,...`) instead of the embedded
    /// store (the config's `[kafka]` table supplies the rest).
    #[arg(long, value_name = "BROKERS")]
    kafka: Option<String>,
    /// The Kafka topic, fixed or a template over {app} and {protocol} (with --kafka).
    #[arg(long, value_name = "TEMPLATE", requires = "kafka")]
    topic: Option<String>,
}

#[derive(Args)]
struct ReadArgs {
    /// The data directory of the gateway (its `data_dir`).
    #[arg(long, default_value = "./data", conflicts_with = "config")]
    data_dir: PathBuf,
    /// Take the data directory from this configuration file instead.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Only events of this app.
    #[arg(long)]
    app: Option<String>,
    /// Keep printing events as they are committed.
    #[arg(short, long)]
    follow: bool,
    /// Start from the oldest event kept instead of the last `--lines`.
    #[arg(long)]
    from_start: bool,
    /// How many of the latest events to start from (like `tail -n`).
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: u64,
}

/// glibc serves a large allocation with its own mmap, but once one is freed it raises that
/// threshold (up to 32 MiB) and serves later ones from the heap of the allocating thread's
/// arena, which keeps them when freed. Inflating a gzip or `C` payload happens on whichever
/// thread is free, so after a burst of large payloads every arena would keep tens of MiB: the
/// gateway stayed at 135 MiB after the hostile suite's bombs. A fixed threshold keeps buffers of
/// 1 MiB and more mapped on their own and returned when freed.
fn return_large_buffers_at_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    return_large_buffers_at_once();
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::CheckConfig { file }) => check_config(&file),
        Some(Command::Read(args)) => read(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logport: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGPORT_LOG")
        .unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    })
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(brokers) = args.kafka {
        config.sink.kind = logport::config::SinkKind::Kafka;
        config.kafka.brokers = brokers
            .split(',')
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        if let Some(topic) = args.topic {
            config.kafka.topic = topic;
        }
        config
            .check()
            .map_err(|e| anyhow::anyhow!("--kafka/--topic: {e}"))?;
    }
    let timeout = config.shutdown_timeout;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config_path = args.config.clone();
    runtime.block_on(async move {
        let running = logport::Gateway::new(config).start().await?;
        let signal = wait_for_signal(|| reload(config_path.as_deref(), &running)).await?;
        tracing::info!(signal, timeout = ?timeout, "shutting down");
        running.shutdown();
        let skip_grace = running.skip_drain_grace();
        tokio::spawn(async move {
            if wait_for_signal(|| {}).await.is_ok() {
                skip_grace();
            }
        });
        match tokio::time::timeout(timeout, running.wait()).await {
            Ok(Ok(())) => Ok(ExitCode::SUCCESS),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::error!(timeout = ?timeout, "drain did not finish within shutdown_timeout; exiting with events possibly uncommitted");
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

/// Waits for SIGTERM or SIGINT; every SIGHUP meanwhile calls `on_hangup`.
async fn wait_for_signal(on_hangup: impl Fn()) -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM"),
            _ = int.recv() => return Ok("SIGINT"),
            _ = hup.recv() => on_hangup(),
        }
    }
}

/// SIGHUP: re-reads the config file and applies its `[limits]`; a file that does not load is
/// rejected whole and the running configuration stays.
fn reload(path: Option<&Path>, running: &logport::Running) {
    let Some(path) = path else {
        tracing::warn!("SIGHUP: no configuration file to reload (started without --config)");
        return;
    };
    match Config::load(path) {
        Ok(config) => {
            running.reload_limits(&config.limits);
            tracing::info!(file = %path.display(), "SIGHUP: [limits] reloaded (other settings take effect at the next start)");
        }
        Err(e) => {
            tracing::error!(file = %path.display(), "SIGHUP: reload rejected, the running configuration stays: {e:#}")
        }
    }
}

fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(file)?;
    print!("{}", config.to_toml());
    eprintln!("logport: {} is valid", file.display());
    Ok(ExitCode::SUCCESS)
}

fn read(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let data_dir = match &args.config {
        Some(path) => Config::load(path)?.data_dir,
        None => args.data_dir.clone(),
    };
    let dir = data_dir.join("store");
    let mut reader = Reader::open(&dir)
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", dir.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let wanted = |e: &logport::event::Event| args.app.as_deref().is_none_or(|app| app == &*e.app);
    if args.from_start {
        let first = reader.first_offset()?;
        reader.seek(first);
    } else if args.app.is_none() {
        reader.seek_last(args.lines)?;
    } else {
        // The last N events *of one app* may lie anywhere: scan, keeping the latest N.
        let first = reader.first_offset()?;
        reader.seek(first);
        let mut latest = std::collections::VecDeque::new();
        while let Some(stored) = reader.next()? {
            if wanted(&stored.event) {
                if latest.len() as u64 == args.lines {
                    latest.pop_front();
                }
                latest.push_back(stored.event.value);
            }
        }
        for value in latest {
            if let Err(e) = out.write_all(&value).and_then(|_| out.write_all(b"\n")) {
                return broken_pipe_is_fine(e);
            }
        }
    }
    loop {
        match reader.next()? {
            Some(stored) => {
                if !wanted(&stored.event) {
                    continue;
                }
                if let Err(e) = out
                    .write_all(&stored.event.value)
                    .and_then(|_| out.write_all(b"\n"))
                {
                    return broken_pipe_is_fine(e);
                }
            }
            None if args.follow => {
                if let Err(e) = out.flush() {
                    return broken_pipe_is_fine(e);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            None => break,
        }
    }
    if let Err(e) = out.flush() {
        return broken_pipe_is_fine(e);
    }
    Ok(ExitCode::SUCCESS)
}

/// `logport read | head` closes our stdout early; that is the reader's choice, not a failure.
fn broken_pipe_is_fine(e: std::io::Error) -> anyhow::Result<ExitCode> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(e.into())
    }
}
