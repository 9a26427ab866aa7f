//! `campaign bench`: measured speed and memory of the local engine on the SQLite store,
//! and cold start and size of the deployable binaries. Prints a table (or JSON).
//!
//! 1. orchestration overhead — end to end minus the critical path (slowest agent + audit in
//!    parallel; the sum of agents and audits in sequential), with simulated latencies,
//!    each run submitted and followed (its events) from a task of the runtime, as a
//!    client of `campaign serve` is;
//! 2. time to first artifact and total time, same runs;
//! 3. throughput — runs per second to `completed`, instant agents;
//! 4. event delivery — commit of a state change → received by a WebSocket subscriber of
//!    `campaign serve`;
//! 5. memory — resident memory per run in flight;
//! 6. time to first artifact and total time with every agent on a simulated model server
//!    (OpenAI-compatible SSE at a model's pace: first token 400 ms, 40 tokens/s);
//! 7. backpressure — a burst 10× over `--max-in-flight`: accepted, refused with 429, and
//!    lost (must be 0: nothing created unadmitted, every admitted run completes);
//! 8. cold start — process exec → first Runtime API `next`, and stripped binary size;
//! 9. floors measured in the same run, which the figures are judged against: overhead and
//!    throughput on an in-memory store, the simulated waits of a run alone (no work: what
//!    this machine's timers and scheduler add by themselves), the latency phase with every
//!    simulated latency zero (nothing idles between steps), reading 1 MiB hot and after
//!    idling, durable single-row commits per second on this disk (and, from it, the
//!    throughput were each of a run's writes one such commit), and the spawn of an empty
//!    process;
//! 10. the store's requests, refused requests, writes and transactions per run (the same
//!     on every machine).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};

use campaign_shared::adapters::faults::Faults;
use campaign_shared::adapters::generators::{GeneratorChoice, GeneratorPlan};
use campaign_shared::adapters::local::sqlite::StoreCounts;
use campaign_shared::adapters::openai::OpenAiConfig;
use campaign_shared::domain::{Agent, Brief, ExecutionMode, RunId, Scope, Status};
use campaign_shared::runtime::local::{LocalApp, LocalConfig};
use campaign_shared::usecases;

use crate::model_sim::{self, Pace};
use crate::runtime_api::{RuntimeApi, spawn_function};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Runs per mode for the latency figures.
    pub latency_runs: usize,
    pub throughput_runs: usize,
    /// Runs for the in-memory floor's throughput (the table's ratio to it is of two
    /// rates, so the counts may differ).
    pub floor_throughput_runs: usize,
    pub in_flight: usize,
    pub event_runs: usize,
    pub spawns: usize,
    /// Where the release function binaries are (`target/release`).
    pub bin_dir: PathBuf,
    /// Simulated latencies, ms: copy, social, visual, audit.
    pub latencies: [u64; 4],
    /// Runs per mode with every agent on the simulated model.
    pub model_runs: usize,
    /// The `--max-in-flight` of the backpressure burst, which submits ten times as many
    /// at once; 0 skips the burst.
    pub burst_limit: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            latency_runs: 200,
            throughput_runs: 10_000,
            floor_throughput_runs: 10_000,
            in_flight: 10_000,
            event_runs: 200,
            spawns: 100,
            bin_dir: PathBuf::from("target/release"),
            latencies: [50, 80, 120, 30],
            model_runs: 20,
            burst_limit: 20,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

fn stats(mut xs: Vec<f64>) -> Stats {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if xs.is_empty() {
            return 0.0;
        }
        let i = ((xs.len() as f64 - 1.0) * q).round() as usize;
        xs[i]
    };
    Stats {
        n: xs.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: xs.last().copied().unwrap_or(0.0),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeLatency {
    pub critical_path_ms: f64,
    pub overhead_ms: Stats,
    pub time_to_first_artifact_ms: Stats,
    pub total_ms: Stats,
    /// The store's work per measured run (see [`StorePerRun`]).
    pub store: StorePerRun,
}

/// A store's requests, refused requests, requests that wrote, and groups (transactions)
/// per run, over a phase: the same on every machine, unlike the times.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StorePerRun {
    pub requests: f64,
    pub refused: f64,
    /// A run's atomic writes: the durable commits it needs, were each its own transaction.
    pub writes: f64,
    pub transactions: f64,
}

impl StorePerRun {
    fn between(before: StoreCounts, after: StoreCounts, runs: usize) -> StorePerRun {
        let per = |a: u64, b: u64| (b - a) as f64 / runs.max(1) as f64;
        StorePerRun {
            requests: per(before.requests, after.requests),
            refused: per(before.refused, after.refused),
            writes: per(before.writes, after.writes),
            transactions: per(before.groups, after.groups),
        }
    }
}

/// A model-backed run's latencies.
#[derive(Debug, Clone, Serialize)]
pub struct ModelTtfa {
    pub time_to_first_artifact_ms: Stats,
    pub total_ms: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub binary: String,
    pub size_bytes: u64,
    pub cold_start_ms: Stats,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: String,
    pub latencies_ms: BTreeMap<String, u64>,
    pub parallel: ModeLatency,
    pub sequential: ModeLatency,
    pub throughput_runs: usize,
    pub throughput_runs_per_s: f64,
    /// The store's work per run under the throughput load (requests grouped).
    pub throughput_store: StorePerRun,
    /// Floors measured in the same run: overhead and throughput on an in-memory store,
    /// single-row durable commits per second on this disk, an empty process's spawn (and
    /// the waits, zero-latency runs and memory reads below).
    pub floor_parallel_overhead_ms: Stats,
    pub floor_sequential_overhead_ms: Stats,
    /// A run's simulated waits alone, in a spawned task awaited like a run: time beyond
    /// the critical path that no engine work causes.
    pub floor_parallel_waits_ms: Stats,
    pub floor_sequential_waits_ms: Stats,
    /// The same runs on the SQLite file with every simulated latency zero: the engine's
    /// work with nothing idle between steps, so caches stay warm.
    pub warm_parallel_overhead_ms: Stats,
    pub warm_sequential_overhead_ms: Stats,
    /// Reading 1 MiB once, right after reading it (hot) and after `idle_ms` asleep:
    /// what idling costs any work that follows it on this machine.
    pub idle_ms: u64,
    pub memory_read_hot_ms: Stats,
    pub memory_read_after_idle_ms: Stats,
    pub floor_throughput_runs: usize,
    pub floor_throughput_runs_per_s: f64,
    pub commit_floor_per_s: f64,
    /// The durable-commit floor of throughput: runs per second were each of a run's writes
    /// under the throughput load (`throughput_store.writes`) one single-row commit at
    /// `commit_floor_per_s` — what the disk alone allows, with nothing else done.
    pub commit_floor_runs_per_s: f64,
    /// One store request answered, alone (`get_state` of a run, one after another): what
    /// each of a run's ~40 store requests costs at least.
    pub store_round_trip_ms: Stats,
    pub spawn_floor_ms: Stats,
    pub event_delivery_ms: Stats,
    pub in_flight_runs: usize,
    pub memory_per_run_in_flight_kib: f64,
    /// The simulated model's first-token delay and tokens/s.
    pub model_first_token_ms: u64,
    pub model_tokens_per_s: f64,
    pub model_parallel: ModelTtfa,
    pub model_sequential: ModelTtfa,
    /// Backpressure: `--max-in-flight` and the burst's outcome.
    pub burst_limit: usize,
    pub burst_accepted: usize,
    pub burst_refused: usize,
    pub burst_lost: usize,
    pub cold_starts: Vec<ColdStart>,
    pub cold_start_note: Option<String>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn brief(mode: ExecutionMode) -> Brief {
    let mut b = Brief::from_value(&serde_json::from_str::<Value>(EXAMPLE).unwrap_or(Value::Null))
        .unwrap_or_else(|_| panic!("the bundled example brief is valid"));
    b.execution_mode = mode;
    b
}

const EXAMPLE: &str = include_str!("../../examples/brief.json");

fn temp_db(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("campaign-bench-{tag}-{}.db", std::process::id()))
}

fn remove_db(p: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
}

async fn app(tag: &str, faults: &[String]) -> Result<(Arc<LocalApp>, PathBuf), Error> {
    app_with(tag, faults, GeneratorPlan::new(), Store::File).await
}

/// Where a measured app keeps its runs: the SQLite file (as deployed), or an in-memory
/// SQLite database — the floor without persistence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    File,
    Memory,
}

async fn app_with(
    tag: &str,
    faults: &[String],
    generators: GeneratorPlan,
    store: Store,
) -> Result<(Arc<LocalApp>, PathBuf), Error> {
    let mut f = Faults::default();
    for s in faults {
        f.add(s)?;
    }
    let db = temp_db(tag);
    remove_db(&db);
    let app = LocalApp::start(LocalConfig {
        db: (store == Store::File).then(|| db.clone()),
        faults: f,
        time_scale: 1.0,
        generators,
        limits: Default::default(),
        mode_policy: Default::default(),
    })
    .await?;
    Ok((Arc::new(app), db))
}

/// Runs one campaign; returns (total, time to first artifact) as measured by the caller.
async fn one_run(app: &LocalApp, mode: ExecutionMode) -> Result<(f64, f64), Error> {
    let mut bus = app.bus.subscribe();
    let start = Instant::now();
    let id = usecases::submit(&app.deps, brief(mode), None).await?;
    let mut first = None;
    loop {
        let e = bus.recv().await?;
        if e.run_id != id {
            continue;
        }
        if first.is_none() && e.scope != Scope::Run && e.status == Status::Generated {
            first = Some(start.elapsed());
        }
        if e.scope == Scope::Run && e.status.is_terminal() {
            if e.status != Status::Completed {
                return Err(format!("run {id} ended {}", e.status).into());
            }
            let total = start.elapsed();
            return Ok((ms(total), ms(first.unwrap_or(total))));
        }
    }
}

/// [`one_run`] as a client of `campaign serve` makes it: submitted and followed from a
/// task of the runtime, as the server's request handlers and event streams are — not from
/// the bench's own thread, outside the runtime's workers, which every event of the run
/// would wake (a thread more on the machine's two cores at each step). Every phase that
/// times single runs (latency, its floors, the simulated model) runs them this way.
async fn one_run_in_task(app: &Arc<LocalApp>, mode: ExecutionMode) -> Result<(f64, f64), Error> {
    let app = Arc::clone(app);
    tokio::spawn(async move { one_run(&app, mode).await }).await?
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn latency(
    opts: &BenchOptions,
    mode: ExecutionMode,
    store: Store,
    latencies: [u64; 4],
) -> Result<ModeLatency, Error> {
    let [c, s, v, a] = latencies;
    let faults = vec![
        format!("copy=slow:{c}ms"),
        format!("social=slow:{s}ms"),
        format!("visual=slow:{v}ms"),
        format!("audit=slow:{a}ms"),
    ];
    let (app, db) = app_with(
        &format!("latency-{}", mode.as_str()),
        &faults,
        GeneratorPlan::new(),
        store,
    )
    .await?;
    let critical = match mode {
        ExecutionMode::Parallel | ExecutionMode::Auto => c.max(s).max(v) + a,
        ExecutionMode::Sequential => c + s + v + 3 * a,
    } as f64;
    // Warm up caches, the SQLite file and the allocator.
    for _ in 0..5 {
        one_run_in_task(&app, mode).await?;
    }
    let (mut totals, mut firsts, mut overheads) = (Vec::new(), Vec::new(), Vec::new());
    let counted = app.store.counts();
    for _ in 0..opts.latency_runs {
        let (total, first) = one_run_in_task(&app, mode).await?;
        totals.push(total);
        firsts.push(first);
        overheads.push(total - critical);
    }
    let store_per_run = StorePerRun::between(counted, app.store.counts(), opts.latency_runs);
    app.shutdown().await;
    remove_db(&db);
    Ok(ModeLatency {
        critical_path_ms: critical,
        overhead_ms: stats(overheads),
        time_to_first_artifact_ms: stats(firsts),
        total_ms: stats(totals),
        store: store_per_run,
    })
}

/// The simulated waits of a run in `mode`, nothing else: in a spawned task (as an
/// execution is), awaited from this one (as a run's last event is), as many times as the
/// latency phase runs, after 5 warm-up ones; each minus the critical path.
async fn wait_floor(opts: &BenchOptions, mode: ExecutionMode) -> Result<Stats, Error> {
    use campaign_shared::adapters::faults::precise_sleep;
    let [c, s, v, a] = opts.latencies.map(Duration::from_millis);
    let critical = match mode {
        ExecutionMode::Parallel | ExecutionMode::Auto => c.max(s).max(v) + a,
        ExecutionMode::Sequential => c + s + v + 3 * a,
    };
    let mut overshoots = Vec::with_capacity(opts.latency_runs);
    for i in 0..opts.latency_runs + 5 {
        let start = Instant::now();
        tokio::spawn(async move {
            match mode {
                ExecutionMode::Parallel | ExecutionMode::Auto => {
                    futures::join!(precise_sleep(c), precise_sleep(s), precise_sleep(v));
                    futures::join!(precise_sleep(a), precise_sleep(a), precise_sleep(a));
                }
                ExecutionMode::Sequential => {
                    for d in [c, a, s, a, v, a] {
                        precise_sleep(d).await;
                    }
                }
            }
        })
        .await?;
        if i >= 5 {
            overshoots.push(ms(start.elapsed()) - ms(critical));
        }
    }
    Ok(stats(overshoots))
}

/// Reading 1 MiB (one load per cache line), `n` times right after reading it and `n`
/// times after sleeping `idle`: on a host whose caches other work fills while this
/// process idles, every step that follows a wait starts cold.
async fn memory_after_idle(idle: Duration, n: usize) -> (Stats, Stats) {
    let buf: Vec<u64> = (0..128 * 1024).collect();
    let read = |buf: &[u64]| {
        let start = Instant::now();
        let sum = buf.iter().step_by(8).fold(0u64, |a, x| a.wrapping_add(*x));
        std::hint::black_box(sum);
        ms(start.elapsed())
    };
    let (mut hot, mut cold) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        read(&buf);
        hot.push(read(&buf));
        tokio::time::sleep(idle).await;
        cold.push(read(&buf));
    }
    (stats(hot), stats(cold))
}

/// Time to first artifact with every agent on a simulated model at `pace` (streamed over
/// the OpenAI-compatible generator, through HTTP on loopback), in one mode.
async fn model_ttfa(runs: usize, pace: Pace, mode: ExecutionMode) -> Result<ModelTtfa, Error> {
    let base_url = model_sim::serve(pace).await?;
    let config = OpenAiConfig {
        base_url,
        model: "simulated".into(),
        api_key: None,
        timeout: Duration::from_secs(45),
    };
    let plan = Agent::ALL
        .into_iter()
        .map(|a| (a, GeneratorChoice::OpenAi(config.clone())))
        .collect();
    let (app, db) = app_with(&format!("model-{}", mode.as_str()), &[], plan, Store::File).await?;
    let (mut totals, mut firsts) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (total, first) = one_run_in_task(&app, mode).await?;
        totals.push(total);
        firsts.push(first);
    }
    app.shutdown().await;
    remove_db(&db);
    Ok(ModelTtfa {
        time_to_first_artifact_ms: stats(firsts),
        total_ms: stats(totals),
    })
}

async fn throughput(n: usize, store: Store) -> Result<(f64, StorePerRun), Error> {
    let (app, db) = app_with("throughput", &[], GeneratorPlan::new(), store).await?;
    let counted = app.store.counts();
    let start = Instant::now();
    let b = brief(ExecutionMode::Parallel);
    // All submitted at once, as by many clients: one client submitting one after another
    // would measure its own round trips, not how many runs the system completes.
    let mut submissions = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (deps, b) = (app.deps.clone(), b.clone());
        submissions.spawn(async move { usecases::submit(&deps, b, None).await });
    }
    while let Some(submitted) = submissions.join_next().await {
        submitted.map_err(|e| format!("a submission panicked: {e}"))??;
    }
    // Done when the store has no unfinished run (the bus may drop events under this
    // load, the store does not) — asked once no execution is in flight, so the list of
    // thousands of unfinished runs is not read every few milliseconds on the store's one
    // writing thread while the measured runs need it.
    loop {
        if app.workflow.in_flight() == 0 && app.deps.store.unfinished_runs().await?.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let store_per_run = StorePerRun::between(counted, app.store.counts(), n);
    let page = app.deps.store.list_runs(1, None, None).await?;
    if page
        .runs
        .first()
        .is_some_and(|r| r.status != Status::Completed)
    {
        return Err("the last run did not complete".into());
    }
    app.shutdown().await;
    remove_db(&db);
    Ok((n as f64 / elapsed, store_per_run))
}

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

async fn memory(n: usize) -> Result<f64, Error> {
    // Agents that take a minute keep every run in flight while memory is read.
    let faults: Vec<String> = ["copy", "social", "visual"]
        .iter()
        .map(|a| format!("{a}=slow:50s"))
        .collect();
    let (app, db) = app("memory", &faults).await?;
    for _ in 0..20 {
        usecases::submit(&app.deps, brief(ExecutionMode::Parallel), None).await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let b = brief(ExecutionMode::Parallel);
    // One after another: what is read is the memory a run in flight holds, not the peak of
    // ten thousand submissions in progress at once.
    for _ in 0..n {
        usecases::submit(&app.deps, b.clone(), None).await?;
    }
    // Wait until every execution has started its agents.
    loop {
        if app.workflow.in_flight() >= n + 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    app.shutdown().await;
    remove_db(&db);
    Ok((after - before) / n as f64)
}

async fn event_delivery(runs: usize, latencies: [u64; 4]) -> Result<Stats, Error> {
    let [c, s, v, a] = latencies;
    let mut faults = Faults::default();
    for f in [
        format!("copy=slow:{c}ms"),
        format!("social=slow:{s}ms"),
        format!("visual=slow:{v}ms"),
        format!("audit=slow:{a}ms"),
    ] {
        faults.add(&f)?;
    }
    let db = temp_db("events");
    remove_db(&db);
    let served = crate::serve(
        "127.0.0.1:0".parse()?,
        LocalConfig {
            db: Some(db.clone()),
            faults,
            time_scale: 1.0,
            ..Default::default()
        },
    )
    .await?;
    let addr = served.addr;
    let tcp = tokio::net::TcpStream::connect(served.addr).await?;
    tcp.set_nodelay(true)?;
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{}/ws", served.addr), tcp).await?;
    let mut samples = Vec::new();
    for _ in 0..runs {
        let post_start = time::OffsetDateTime::now_utc();
        let run_id = submit_http(addr, EXAMPLE).await?;
        let subscribed_at = time::OffsetDateTime::now_utc();
        if std::env::var_os("BENCH_DEBUG").is_some() {
            eprintln!(
                "post took {:.1} ms",
                (subscribed_at - post_start).as_seconds_f64() * 1000.0
            );
        }
        let sub = json!({"action": "subscribe", "runId": run_id, "after": 0}).to_string();
        ws.send(tokio_tungstenite::tungstenite::Message::Text(sub.into()))
            .await?;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await?
                .ok_or("socket closed")??;
            let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
                continue;
            };
            let received = time::OffsetDateTime::now_utc();
            let e: campaign_shared::domain::Event = serde_json::from_str(&t)?;
            // Events committed before the subscription are replays, not deliveries.
            if e.at > subscribed_at {
                let ms = (received - e.at).as_seconds_f64() * 1000.0;
                if ms > 10.0 && std::env::var_os("BENCH_DEBUG").is_some() {
                    eprintln!(
                        "slow delivery {ms:.1} ms: seq {} {} {}; committed {:.1} ms after subscribing",
                        e.seq,
                        e.scope,
                        e.status,
                        (e.at - subscribed_at).as_seconds_f64() * 1000.0
                    );
                }
                samples.push(ms);
            }
            if e.scope == Scope::Run && e.status.is_terminal() {
                break;
            }
        }
    }
    served.stop().await;
    remove_db(&db);
    Ok(stats(samples))
}

/// A minimal HTTP/1.1 POST over loopback (the CLI needs no HTTP client otherwise).
/// `POST /campaigns` with `body` over a fresh loopback connection: status and JSON body.
async fn post_campaign(addr: std::net::SocketAddr, body: &str) -> Result<(u16, Value), Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "POST /campaigns HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    let status: u16 = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    let json_start = resp.find("\r\n\r\n").ok_or("bad response")? + 4;
    Ok((status, serde_json::from_str(&resp[json_start..])?))
}

/// The run id of an accepted `POST /campaigns`.
async fn submit_http(addr: std::net::SocketAddr, body: &str) -> Result<RunId, Error> {
    let (status, v) = post_campaign(addr, body).await?;
    if status != 202 {
        return Err(format!("POST /campaigns answered {status}: {v}").into());
    }
    Ok(RunId::parse(v["runId"].as_str().ok_or("no runId")?)?)
}

/// Backpressure: a burst of `10 × limit` submissions at once against `--max-in-flight
/// limit`; returns (accepted, refused, lost), where lost counts runs created but not
/// admitted and admitted runs that did not complete — it must be 0.
async fn admission_burst(limit: usize) -> Result<(usize, usize, usize), Error> {
    let db = temp_db("burst");
    remove_db(&db);
    let mut faults = Faults::default();
    faults.add("copy=slow:300ms")?;
    let served = crate::serve(
        "127.0.0.1:0".parse()?,
        LocalConfig {
            db: Some(db.clone()),
            faults,
            time_scale: 1.0,
            limits: campaign_shared::adapters::local::admission::Limits {
                max_in_flight: Some(limit),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;
    let addr = served.addr;
    let answers =
        futures::future::join_all((0..10 * limit).map(|_| post_campaign(addr, EXAMPLE))).await;
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for a in answers {
        match a? {
            (202, v) => accepted.push(RunId::parse(v["runId"].as_str().ok_or("no runId")?)?),
            (429, _) => refused += 1,
            (other, v) => return Err(format!("unexpected {other}: {v}").into()),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lost = 0;
    for id in &accepted {
        loop {
            let run = served.app.deps.store.get_run(*id).await?;
            if run.status.is_terminal() {
                if run.status != Status::Completed {
                    lost += 1;
                }
                break;
            }
            if Instant::now() > deadline {
                lost += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let stored = served
        .app
        .deps
        .store
        .list_runs(100, None, None)
        .await?
        .runs
        .len();
    lost += stored.saturating_sub(accepted.len());
    served.stop().await;
    remove_db(&db);
    Ok((accepted.len(), refused, lost))
}

/// The function binaries (each started with the environment of `function_env`).
pub const BINARIES: &[&str] = &[
    "api",
    "copy-agent",
    "social-agent",
    "visual-agent",
    "audit",
    "finalize",
    "notifier",
    "ws",
    "execution-events",
    "trigger",
    "deferred-audit",
    "sweeper",
];

fn function_env() -> Vec<(String, String)> {
    [
        ("TABLE_NAME", "campaigns"),
        ("STATUS_QUEUE_URL", "http://127.0.0.1:9/queue/status"),
        (
            "DEFERRED_AUDIT_QUEUE_URL",
            "http://127.0.0.1:9/queue/deferred",
        ),
        (
            "STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:flow",
        ),
        ("WEBSOCKET_ENDPOINT", "http://127.0.0.1:9"),
        ("WEBSOCKET_URL", "ws://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `n` store requests one after another (a run's `get_state`), each timed: the store's
/// own latency, without the engine around it.
async fn store_round_trip(n: usize) -> Result<Stats, Error> {
    use campaign_shared::ports::{NewRun, RunStore};
    let db = temp_db("round-trip");
    remove_db(&db);
    let store = campaign_shared::adapters::local::sqlite::SqliteStore::open(&db)?;
    let new = NewRun::first(
        brief(ExecutionMode::Parallel),
        ExecutionMode::Parallel,
        time::OffsetDateTime::now_utc(),
    );
    let run_id = new.run_id;
    store.create_run(new).await?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n + n / 10 {
        let started = Instant::now();
        store.get_state(run_id).await?;
        samples.push(ms(started.elapsed()));
    }
    drop(store);
    remove_db(&db);
    // The first tenth warms caches up.
    Ok(stats(samples.split_off(n / 10)))
}

/// The spawn floor: exec of `/bin/true` to its exit, `n` times.
fn spawn_floor(n: usize) -> Result<Stats, Error> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let status = std::process::Command::new("/bin/true").status()?;
        samples.push(ms(started.elapsed()));
        if !status.success() {
            return Err("/bin/true failed".into());
        }
    }
    Ok(stats(samples))
}

async fn cold_starts(dir: &std::path::Path, spawns: usize) -> Result<Vec<ColdStart>, Error> {
    let mut out = Vec::new();
    for name in BINARIES {
        let path = dir.join(name);
        if !path.exists() {
            return Err(format!("{} is missing: build the functions as deployed with `cargo build --release -p campaign-api -p campaign-tasks -p campaign-notifier -p campaign-ws -p campaign-execution-events -p campaign-trigger -p campaign-deferred-audit -p campaign-sweeper`", path.display()).into());
        }
        let mut samples = Vec::new();
        for _ in 0..spawns {
            let api = RuntimeApi::start().await;
            let started = Instant::now();
            let mut child = spawn_function(&path, &api, &function_env());
            let deadline = started + Duration::from_secs(10);
            let first = loop {
                if let Some(t) = api.first_next_at() {
                    break t;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{name} never asked for work").into());
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            };
            samples.push(ms(first.duration_since(started)));
            let _ = child.kill();
            let _ = child.wait();
        }
        out.push(ColdStart {
            binary: (*name).into(),
            size_bytes: std::fs::metadata(&path)?.len(),
            cold_start_ms: stats(samples),
        });
    }
    Ok(out)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!(
        "{cpus} CPU ({model}), {mem}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Runs every measurement, printing progress to stderr.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport, Error> {
    eprintln!("bench: memory, {} runs in flight…", opts.in_flight);
    let memory_per_run = memory(opts.in_flight).await?;
    eprintln!("bench: latency, parallel, {} runs…", opts.latency_runs);
    let parallel = latency(opts, ExecutionMode::Parallel, Store::File, opts.latencies).await?;
    eprintln!("bench: latency, sequential, {} runs…", opts.latency_runs);
    let sequential = latency(opts, ExecutionMode::Sequential, Store::File, opts.latencies).await?;
    eprintln!("bench: throughput, {} runs…", opts.throughput_runs);
    let (tput, tput_store) = throughput(opts.throughput_runs, Store::File).await?;
    eprintln!("bench: floors: the same latency and throughput on an in-memory store…");
    let floor_parallel =
        latency(opts, ExecutionMode::Parallel, Store::Memory, opts.latencies).await?;
    let floor_sequential = latency(
        opts,
        ExecutionMode::Sequential,
        Store::Memory,
        opts.latencies,
    )
    .await?;
    let (floor_tput, _) = throughput(opts.floor_throughput_runs, Store::Memory).await?;
    eprintln!(
        "bench: floors: a run's simulated waits alone; runs without waits; memory after idling…"
    );
    let floor_parallel_waits = wait_floor(opts, ExecutionMode::Parallel).await?;
    let floor_sequential_waits = wait_floor(opts, ExecutionMode::Sequential).await?;
    let warm_parallel = latency(opts, ExecutionMode::Parallel, Store::File, [0; 4]).await?;
    let warm_sequential = latency(opts, ExecutionMode::Sequential, Store::File, [0; 4]).await?;
    let idle = Duration::from_millis(opts.latencies.into_iter().max().unwrap_or(0).max(1));
    let (memory_hot, memory_cold) = memory_after_idle(idle, 100).await;
    eprintln!("bench: floors: durable single-row commits on this disk, empty process spawns…");
    let commit_db = temp_db("commit-floor");
    remove_db(&commit_db);
    let commit_floor = campaign_shared::adapters::local::sqlite::SqliteStore::commit_floor(
        &commit_db,
        opts.throughput_runs.max(1000),
    )?;
    remove_db(&commit_db);
    let store_round_trip = store_round_trip(2_000).await?;
    let spawn_floor = spawn_floor(opts.spawns)?;
    eprintln!(
        "bench: event delivery over WebSocket, {} runs…",
        opts.event_runs
    );
    let events = event_delivery(opts.event_runs, opts.latencies).await?;
    let pace = Pace::REALISTIC;
    eprintln!(
        "bench: time to first artifact on a simulated model (first token {} ms, {} tokens/s), {} runs per mode…",
        pace.first_token.as_millis(),
        pace.tokens_per_s,
        opts.model_runs
    );
    let model_parallel = model_ttfa(opts.model_runs, pace, ExecutionMode::Parallel).await?;
    let model_sequential = model_ttfa(opts.model_runs, pace, ExecutionMode::Sequential).await?;
    let burst_limit = opts.burst_limit;
    let (burst_accepted, burst_refused, burst_lost) = if burst_limit == 0 {
        eprintln!("bench: no burst (--burst-limit 0)");
        (0, 0, 0)
    } else {
        eprintln!(
            "bench: a burst of {} submissions against --max-in-flight {burst_limit}…",
            10 * burst_limit
        );
        admission_burst(burst_limit).await?
    };
    eprintln!("bench: cold starts, {} spawns per binary…", opts.spawns);
    let (cold, note) = match cold_starts(&opts.bin_dir, opts.spawns).await {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let [c, s, v, a] = opts.latencies;
    Ok(BenchReport {
        machine: machine(),
        latencies_ms: [("copy", c), ("social", s), ("visual", v), ("audit", a)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        parallel,
        sequential,
        throughput_runs: opts.throughput_runs,
        throughput_runs_per_s: tput,
        throughput_store: tput_store,
        floor_parallel_overhead_ms: floor_parallel.overhead_ms,
        floor_sequential_overhead_ms: floor_sequential.overhead_ms,
        floor_parallel_waits_ms: floor_parallel_waits,
        floor_sequential_waits_ms: floor_sequential_waits,
        warm_parallel_overhead_ms: warm_parallel.overhead_ms,
        warm_sequential_overhead_ms: warm_sequential.overhead_ms,
        idle_ms: idle.as_millis() as u64,
        memory_read_hot_ms: memory_hot,
        memory_read_after_idle_ms: memory_cold,
        floor_throughput_runs: opts.floor_throughput_runs,
        floor_throughput_runs_per_s: floor_tput,
        commit_floor_per_s: commit_floor,
        commit_floor_runs_per_s: commit_floor / tput_store.writes.max(f64::MIN_POSITIVE),
        store_round_trip_ms: store_round_trip,
        spawn_floor_ms: spawn_floor,
        event_delivery_ms: events,
        in_flight_runs: opts.in_flight,
        memory_per_run_in_flight_kib: memory_per_run,
        model_first_token_ms: pace.first_token.as_millis() as u64,
        model_tokens_per_s: pace.tokens_per_s,
        model_parallel,
        model_sequential,
        burst_limit,
        burst_accepted,
        burst_refused,
        burst_lost,
        cold_starts: cold,
        cold_start_note: note,
    })
}

/// A phase's store work per run, as a table row.
fn store_row(phase: &str, s: &StorePerRun) -> String {
    format!(
        "| store work per run, {phase}: requests / refused / writes / transactions | {:.1} / {:.1} / {:.1} / {:.1} | | (context) | |\n",
        s.requests, s.refused, s.writes, s.transactions
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// The orchestration overhead's p99 targets, ms: parallel, sequential.
const OVERHEAD_P99_MS: (f64, f64) = (2.0, 3.0);

/// The table `campaign bench` prints.
pub fn table(r: &BenchReport) -> String {
    let mut o = String::new();
    o.push_str(&format!("machine: {}\n", r.machine));
    o.push_str(&format!(
        "simulated latencies: copy {} ms, social {} ms, visual {} ms, audit {} ms\n\n",
        r.latencies_ms["copy"],
        r.latencies_ms["social"],
        r.latencies_ms["visual"],
        r.latencies_ms["audit"]
    ));
    o.push_str("| figure | p50 | p99 | target | |\n|---|---|---|---|---|\n");
    // The absolute targets of the overhead; the floor rows below judge it against the
    // in-memory floor too.
    for (name, m, target) in [
        ("parallel", &r.parallel, OVERHEAD_P99_MS.0),
        ("sequential", &r.sequential, OVERHEAD_P99_MS.1),
    ] {
        o.push_str(&format!(
            "| orchestration overhead, {name} (critical path {:.0} ms, n={}) | {:.2} ms | {:.2} ms | p99 ≤ {target} ms | {} |\n",
            m.critical_path_ms,
            m.overhead_ms.n,
            m.overhead_ms.p50,
            m.overhead_ms.p99,
            verdict(m.overhead_ms.p99 <= target)
        ));
        o.push_str(&format!(
            "| time to first artifact, {name} | {:.1} ms | {:.1} ms | | |\n| total time, {name} | {:.1} ms | {:.1} ms | | |\n",
            m.time_to_first_artifact_ms.p50, m.time_to_first_artifact_ms.p99, m.total_ms.p50, m.total_ms.p99
        ));
        o.push_str(&store_row(name, &m.store));
    }
    o.push_str(&format!(
        "| throughput, {} runs to completed, instant agents | {:.0} runs/s | | judged against its floors below | |\n",
        r.throughput_runs, r.throughput_runs_per_s,
    ));
    o.push_str(&store_row("throughput", &r.throughput_store));
    for (name, m, floor, waits, target) in [
        (
            "parallel",
            &r.parallel,
            &r.floor_parallel_overhead_ms,
            &r.floor_parallel_waits_ms,
            OVERHEAD_P99_MS.0,
        ),
        (
            "sequential",
            &r.sequential,
            &r.floor_sequential_overhead_ms,
            &r.floor_sequential_waits_ms,
            OVERHEAD_P99_MS.1,
        ),
    ] {
        let ratio = m.overhead_ms.p99 / floor.p99.max(0.001);
        o.push_str(&format!(
            "| floor: overhead, {name}, in-memory store | {:.2} ms | {:.2} ms | | |\n| overhead, {name}, p99 ÷ in-memory p99 | {ratio:.2}× | | ≤ 2× and p99 ≤ {target} ms | {} |\n| floor: a {name} run's simulated waits alone, beyond the critical path (no work; n={}) | {:.2} ms | {:.2} ms | (context) | |\n",
            floor.p50,
            floor.p99,
            verdict(ratio <= 2.0 && m.overhead_ms.p99 <= target),
            waits.n,
            waits.p50,
            waits.p99,
        ));
    }
    for (name, m) in [
        ("parallel", &r.warm_parallel_overhead_ms),
        ("sequential", &r.warm_sequential_overhead_ms),
    ] {
        o.push_str(&format!(
            "| floor: overhead, {name}, every simulated latency zero (nothing idles between steps) | {:.2} ms | {:.2} ms | (context) | |\n",
            m.p50, m.p99
        ));
    }
    o.push_str(&format!(
        "| reading 1 MiB once, hot / after {} ms idle | {:.3} / {:.3} ms | {:.3} / {:.3} ms | (context) | |\n",
        r.idle_ms,
        r.memory_read_hot_ms.p50,
        r.memory_read_after_idle_ms.p50,
        r.memory_read_hot_ms.p99,
        r.memory_read_after_idle_ms.p99,
    ));
    o.push_str(&format!(
        "| floor: throughput, in-memory store, {} runs | {:.0} runs/s | | | |\n| throughput ÷ in-memory floor | {:.2} | | ≥ 0.5 | {} |\n| floor: durable single-row commits on this disk (WAL, synchronous=NORMAL) | {:.0} commits/s | | | |\n| floor: throughput, a run's {:.1} writes each one such commit | {:.0} runs/s | | | |\n| throughput ÷ durable-commit floor | {:.2} | | ≥ 0.5 | {} |\n| one run to completed, in single-row commits' time | {:.1} commits | | (context) | |\n",
        r.floor_throughput_runs,
        r.floor_throughput_runs_per_s,
        r.throughput_runs_per_s / r.floor_throughput_runs_per_s,
        verdict(r.throughput_runs_per_s * 2.0 >= r.floor_throughput_runs_per_s),
        r.commit_floor_per_s,
        r.throughput_store.writes,
        r.commit_floor_runs_per_s,
        r.throughput_runs_per_s / r.commit_floor_runs_per_s,
        verdict(r.throughput_runs_per_s * 2.0 >= r.commit_floor_runs_per_s),
        r.commit_floor_per_s / r.throughput_runs_per_s,
    ));
    o.push_str(&format!(
        "| store round trip: one request answered, alone (`get_state`, n={}) | {:.3} ms | {:.3} ms | (context) | |\n",
        r.store_round_trip_ms.n, r.store_round_trip_ms.p50, r.store_round_trip_ms.p99
    ));
    o.push_str(&format!(
        "| floor: spawn of an empty process (`/bin/true`, exec → exit; n={}) | {:.2} ms | {:.2} ms | | |\n",
        r.spawn_floor_ms.n, r.spawn_floor_ms.p50, r.spawn_floor_ms.p99
    ));
    o.push_str(&format!(
        "| event delivery, commit → WebSocket subscriber (n={}) | {:.2} ms | {:.2} ms | p99 ≤ 5 ms | {} |\n",
        r.event_delivery_ms.n,
        r.event_delivery_ms.p50,
        r.event_delivery_ms.p99,
        verdict(r.event_delivery_ms.p99 <= 5.0)
    ));
    o.push_str(&format!(
        "| resident memory per run in flight ({} in flight) | {:.1} KiB | | ≤ 64 KiB | {} |\n",
        r.in_flight_runs,
        r.memory_per_run_in_flight_kib,
        verdict(r.memory_per_run_in_flight_kib <= 64.0)
    ));
    for (name, m) in [
        ("parallel", &r.model_parallel),
        ("sequential", &r.model_sequential),
    ] {
        o.push_str(&format!(
            "| time to first artifact, {name}, every agent on a simulated model (first token {} ms, {} tokens/s; n={}) | {:.0} ms | {:.0} ms | < 15 s | {} |\n| total time, {name}, simulated model | {:.0} ms | {:.0} ms | | |\n",
            r.model_first_token_ms,
            r.model_tokens_per_s,
            m.time_to_first_artifact_ms.n,
            m.time_to_first_artifact_ms.p50,
            m.time_to_first_artifact_ms.p99,
            verdict(m.time_to_first_artifact_ms.p99 < 15_000.0),
            m.total_ms.p50,
            m.total_ms.p99
        ));
    }
    if r.burst_limit == 0 {
        o.push_str("| burst of submissions at once against --max-in-flight | not run (--burst-limit 0) | | lost = 0 | |\n");
    } else {
        o.push_str(&format!(
            "| burst of {} submissions at once against --max-in-flight {}: accepted / refused (429) / lost | {} / {} / {} | | lost = 0 | {} |\n",
            r.burst_accepted + r.burst_refused,
            r.burst_limit,
            r.burst_accepted,
            r.burst_refused,
            r.burst_lost,
            verdict(r.burst_lost == 0)
        ));
    }
    for c in &r.cold_starts {
        o.push_str(&format!(
            "| cold start `{}` ({} spawns; {:.1} MiB stripped) | {:.2} ms | {:.2} ms | p99 ≤ 15 ms | {} |\n",
            c.binary,
            c.cold_start_ms.n,
            c.size_bytes as f64 / 1024.0 / 1024.0,
            c.cold_start_ms.p50,
            c.cold_start_ms.p99,
            verdict(c.cold_start_ms.p99 <= 15.0)
        ));
    }
    if let Some(n) = &r.cold_start_note {
        o.push_str(&format!("\ncold starts not measured: {n}\n"));
    }
    o
}
