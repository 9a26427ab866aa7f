//! `campaign`: run one campaign, or serve the API, in local embedded mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::io::{IsTerminal, Read};

use clap::{Args, Parser, Subcommand, ValueEnum};

use campaign_cli::run::{RunOptions, exit};
use campaign_shared::adapters::faults::Faults;
use campaign_shared::adapters::local::admission::Limits;
use campaign_shared::domain::brief::Oversize;
use campaign_shared::domain::{Brief, BriefError, ExecutionMode};
use campaign_shared::errors::Chain;
use campaign_shared::runtime::local::LocalConfig;
use std::num::NonZeroU32;

/// mimalloc instead of the system allocator: the engine allocates and frees small strings
/// and JSON values on every step, and glibc's malloc/free were ~15% of a run's instructions
/// (callgrind; BENCHMARKS.md). SQLite's own buffers stay with the C library's malloc:
/// mimalloc's `override` feature (everything through mimalloc) and its `v2` feature (the
/// older allocator) each measured no fewer instructions per run (BENCHMARKS.md, sixteenth
/// part).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Environment variables, listed under every `--help`.
const ENVIRONMENT: &str = "\
Environment:
  CAMPAIGN_DB          SQLite database file (as --db; `:memory:` for none)
  CAMPAIGN_ADDR        address `campaign serve` listens on (as --addr)
  CAMPAIGN_MAX_IN_FLIGHT, CAMPAIGN_RATE_LIMIT, CAMPAIGN_BURST  limits of `campaign serve` (as the flags)
  CAMPAIGN_LOG         log filter, e.g. `info` or `campaign_shared=debug` (default: warn for run, info for serve)
  CAMPAIGN_MODE_POLICY the default execution mode and when `auto` goes sequential (as --mode-policy)
  CAMPAIGN_TIME_SCALE  multiply every wait of the flow (tests and demos; default 1)
  CAMPAIGN_GENERATOR   builtin (default), openai or bedrock, or AGENT=KIND, comma-separated (as --generator)
  CAMPAIGN_MODEL       the model, or AGENT=MODEL, comma-separated (as --model)
  CAMPAIGN_BASE_URL    the OpenAI-compatible API (as --base-url; default Ollama's http://127.0.0.1:11434/v1)
  OPENAI_API_KEY       sent as a bearer token to the OpenAI-compatible API, when set
  AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, ...  region and credentials for --generator bedrock
  NO_COLOR             set to anything to turn colors off (they are off anyway when not on a terminal)";

#[derive(Parser)]
#[command(
    name = "campaign",
    version,
    about = "Campaign Orchestration Core — local embedded mode",
    after_help = ENVIRONMENT,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one campaign end to end in this process and print the result.
    #[command(after_help = ENVIRONMENT)]
    Run {
        /// The brief, as JSON (see examples/brief.json); `-` reads it from stdin.
        brief: PathBuf,
        /// Override the brief's executionMode.
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// Print the run exactly as GET /campaigns/{id} returns it.
        #[arg(long)]
        json: bool,
        /// Over-long free-text fields: refuse the brief with guidance (default), or cut
        /// them at a word boundary and say which.
        #[arg(long, value_enum, default_value = "reject")]
        oversize: OversizeArg,
        #[command(flatten)]
        common: Common,
    },
    /// Measure speed and memory of the local engine and the binaries' cold start (a
    /// release build with the `bench` feature: see BENCHMARKS.md).
    #[cfg(feature = "bench")]
    Bench {
        /// Print the figures as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Runs per mode for the latency figures.
        #[arg(long, default_value_t = 200)]
        latency_runs: usize,
        /// Runs for the throughput figure.
        #[arg(long, default_value_t = 10_000)]
        throughput_runs: usize,
        /// Runs for the in-memory floor's throughput (default: as many as --throughput-runs)
        #[arg(long)]
        floor_throughput_runs: Option<usize>,
        /// Runs held in flight for the memory figure.
        #[arg(long, default_value_t = 10_000)]
        in_flight: usize,
        /// Runs watched over WebSocket for the event-delivery figure.
        #[arg(long, default_value_t = 200)]
        event_runs: usize,
        /// Spawns per function binary for the cold-start figure.
        #[arg(long, default_value_t = 100)]
        spawns: usize,
        /// Runs per mode with every agent on the simulated model server.
        #[arg(long, default_value_t = 20)]
        model_runs: usize,
        /// The --max-in-flight of the backpressure burst, which submits ten times as many
        /// at once (0 skips the burst)
        #[arg(long, default_value_t = 20)]
        burst_limit: usize,
        /// Directory of the release function binaries.
        #[arg(long, default_value = "target/release")]
        bin_dir: PathBuf,
        /// Simulated latencies of the latency figures, ms: copy,social,visual,audit (all
        /// zero: every millisecond of a run is overhead).
        #[arg(long, default_value = "50,80,120,30", value_parser = parse_latencies)]
        latencies: [u64; 4],
    },
    /// Serve the HTTP API, WebSocket /ws and SSE.
    #[command(after_help = ENVIRONMENT)]
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080", env = "CAMPAIGN_ADDR")]
        addr: SocketAddr,
        /// Most runs in flight at once; a submission over it gets 429 with Retry-After
        /// (0: no limit).
        #[arg(long, default_value_t = 1000, env = "CAMPAIGN_MAX_IN_FLIGHT")]
        max_in_flight: usize,
        /// Most submissions (new runs and retries) per second per client — a bearer token,
        /// else an IP address; over it, 429 with Retry-After (0: no limit).
        #[arg(long, default_value_t = 50, env = "CAMPAIGN_RATE_LIMIT")]
        rate_limit: u32,
        /// Submissions a client may make at once above the rate.
        #[arg(long, default_value_t = 100, env = "CAMPAIGN_BURST")]
        burst: u32,
        #[command(flatten)]
        common: Common,
    },
}

/// `--oversize`: what to do with an over-long free-text field.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OversizeArg {
    /// Refuse the brief, saying which field and its limit.
    Reject,
    /// Cut the field at a word boundary and say so.
    Truncate,
}

/// `--mode`: how the agents run.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// All agents at once, then one audit (the default of a brief).
    Parallel,
    /// One agent at a time in the brief's priority order, each audited before the next.
    Sequential,
    /// Parallel unless the agents' recent p95 latency or throttling crosses the policy's
    /// thresholds (see --mode-policy); the run records the decision and why.
    Auto,
}

impl From<Mode> for ExecutionMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Parallel => ExecutionMode::Parallel,
            Mode::Sequential => ExecutionMode::Sequential,
            Mode::Auto => ExecutionMode::Auto,
        }
    }
}

#[derive(Args, Clone)]
struct Common {
    /// SQLite database file (`:memory:` for none).
    #[arg(long, default_value = "campaign.db", env = "CAMPAIGN_DB")]
    db: String,
    /// Inject a fault: AGENT=error|error:N|throttle:N|timeout|panic|slow:DURATION, or audit=unavailable. Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<String>,
    /// Multiply every wait of the flow (retry intervals, timeouts, deferred-audit delays).
    #[arg(long, default_value_t = 1.0, env = "CAMPAIGN_TIME_SCALE", hide = true)]
    time_scale: f64,
    /// Who writes the artifacts: `builtin` (deterministic, no network), `openai` (a model
    /// behind an OpenAI-compatible API: Ollama, vLLM, LM Studio, hosted) or `bedrock`
    /// (Amazon Bedrock). For every agent, or one: `copy=bedrock`. Repeatable.
    #[arg(
        long,
        value_name = "KIND|AGENT=KIND",
        env = "CAMPAIGN_GENERATOR",
        value_delimiter = ','
    )]
    generator: Vec<String>,
    /// The model, for every model-backed agent or one: `llama3.1:8b`,
    /// `copy=amazon.nova-lite-v1:0`. Repeatable.
    #[arg(
        long,
        value_name = "MODEL|AGENT=MODEL",
        env = "CAMPAIGN_MODEL",
        value_delimiter = ','
    )]
    model: Vec<String>,
    /// Base URL of the OpenAI-compatible API, up to `/v1`.
    #[arg(
        long,
        env = "CAMPAIGN_BASE_URL",
        default_value = "http://127.0.0.1:11434/v1"
    )]
    base_url: String,
    /// Bedrock: call Converse (one answer) instead of ConverseStream, for models that do
    /// not stream.
    #[arg(long)]
    no_stream: bool,
    /// The mode of briefs that do not choose one, and when `auto` runs sequential:
    /// `default=auto,p95-ms=8000,throttle-rate=0.2,window=20,min-samples=3` (each optional;
    /// defaults: parallel, 20000 ms, 0.2, 20, 3).
    #[arg(
        long,
        value_name = "SPEC",
        env = "CAMPAIGN_MODE_POLICY",
        default_value = ""
    )]
    mode_policy: String,
}

impl Common {
    /// The local configuration, or the exit code after saying what is wrong.
    fn config(&self) -> Result<LocalConfig, ExitCode> {
        self.try_config().map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        })
    }

    fn try_config(&self) -> Result<LocalConfig, String> {
        let mut faults = Faults::default();
        for f in &self.faults {
            faults.add(f)?;
        }
        if !(self.time_scale > 0.0 && self.time_scale <= 10.0) {
            return Err(format!(
                "--time-scale is {}; allowed: greater than 0, at most 10",
                self.time_scale
            ));
        }
        let generators = campaign_cli::generators::plan(
            &self.generator,
            &self.model,
            &campaign_cli::generators::Reach {
                base_url: self.base_url.clone(),
                api_key: std::env::var("OPENAI_API_KEY")
                    .ok()
                    .filter(|k| !k.is_empty()),
                stream: !self.no_stream,
            },
        )?;
        Ok(LocalConfig {
            db: (self.db != ":memory:").then(|| PathBuf::from(&self.db)),
            faults,
            time_scale: self.time_scale,
            generators,
            limits: Limits::default(),
            mode_policy: campaign_shared::domain::ModePolicy::parse_spec(&self.mode_policy)
                .map_err(|e| format!("--mode-policy: {e}"))?,
        })
    }
}

/// Logs on stderr, in colour only on a terminal without `NO_COLOR`; written between the
/// redraws of `campaign run`'s spinners, never through them.
fn init_tracing(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAMPAIGN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!json && !no_color && std::io::stderr().is_terminal())
        .with_writer(campaign_cli::run::LogWriter);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
}

fn print_brief_error(path: &std::path::Path, e: &BriefError) {
    eprintln!("error: {} is not a valid brief", path.display());
    match e {
        BriefError::Invalid(v) => {
            for v in v {
                eprintln!("  - {}: {}", v.field, v.message);
            }
        }
        other => eprintln!("  {other}"),
    }
}

/// Transparent huge pages off for this process. mimalloc asks for them on the memory it maps,
/// and the kernel zeroing 2 MiB at the first touch of each was 12.8–13.5 % of all the CPU
/// samples of `campaign bench` (perf), with system time halved and throughput up without
/// them (BENCHMARKS.md, ninth part). The same as `MIMALLOC_ALLOW_THP=0`, which mimalloc
/// reads before `main` runs. Where the kernel refuses, the process runs as before: nothing
/// for a user to act on, so nothing is printed.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

#[tokio::main]
async fn main() -> ExitCode {
    without_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            brief,
            oversize,
            mode,
            json,
            common,
        } => {
            init_tracing("warn", false);
            let config = match common.config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let read = if brief.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::stdin().read_to_end(&mut b).map(|_| b)
            } else {
                std::fs::read(&brief)
            };
            let bytes = match read {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", brief.display());
                    return ExitCode::from(exit::INVALID);
                }
            };
            let oversize = match oversize {
                OversizeArg::Reject => Oversize::Reject,
                OversizeArg::Truncate => Oversize::Truncate,
            };
            let parsed = match Brief::parse_with(&bytes, oversize) {
                Ok((b, truncations)) => {
                    for t in truncations {
                        eprintln!(
                            "warning: {} truncated at a word boundary: {} → {} characters",
                            t.field, t.length, t.truncated_to
                        );
                    }
                    b
                }
                Err(e) => {
                    print_brief_error(&brief, &e);
                    return ExitCode::from(exit::INVALID);
                }
            };
            let mode = mode.map(ExecutionMode::from);
            match campaign_cli::run::run(RunOptions {
                brief: parsed,
                mode,
                json,
                config,
            })
            .await
            {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: {}", Chain(&*e));
                    ExitCode::from(exit::ERROR)
                }
            }
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            json,
            latency_runs,
            throughput_runs,
            floor_throughput_runs,
            in_flight,
            event_runs,
            spawns,
            model_runs,
            bin_dir,
            latencies,
            burst_limit,
        } => {
            init_tracing("error", false);
            let opts = campaign_cli::bench::BenchOptions {
                latency_runs,
                throughput_runs,
                floor_throughput_runs: floor_throughput_runs.unwrap_or(throughput_runs),
                in_flight,
                event_runs,
                spawns,
                bin_dir,
                model_runs,
                latencies,
                burst_limit,
            };
            match campaign_cli::bench::run(&opts).await {
                Ok(report) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        print!("{}", campaign_cli::bench::table(&report));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: bench: {}", Chain(&*e));
                    ExitCode::from(exit::ERROR)
                }
            }
        }
        Command::Serve {
            addr,
            max_in_flight,
            rate_limit,
            burst,
            common,
        } => {
            init_tracing("info", true);
            let mut config = match common.config() {
                Ok(c) => c,
                Err(code) => return code,
            };
            config.limits = Limits {
                max_in_flight: (max_in_flight > 0).then_some(max_in_flight),
                per_second: NonZeroU32::new(rate_limit),
                burst: NonZeroU32::new(burst.max(rate_limit)),
            };
            let served = match campaign_cli::serve(addr, config).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {}", Chain(&e));
                    return ExitCode::from(exit::ERROR);
                }
            };
            eprintln!(
                "campaign serve: listening on http://{} (resumed {} unfinished run(s))",
                served.addr,
                served.app.recovered.len()
            );
            shutdown_signal().await;
            tracing::info!("shutting down");
            served.stop().await;
            ExitCode::SUCCESS
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `--latencies`: four whole milliseconds, comma-separated.
#[cfg(feature = "bench")]
fn parse_latencies(s: &str) -> Result<[u64; 4], String> {
    let ms: Vec<u64> = s
        .split(',')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`{s}`: {e}; expected four whole milliseconds like 50,80,120,30"))?;
    ms.try_into().map_err(|v: Vec<u64>| {
        format!(
            "`{s}`: {} values; expected four (copy,social,visual,audit)",
            v.len()
        )
    })
}
