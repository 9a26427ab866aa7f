//! The local composition root: everything one process needs to run the flow —
//! the SQLite store, the in-process bus, the ASL engine running `statemachine.asl.json`
//! through the local workflow, and the deferred-audit worker — for `campaign serve` and
//! `campaign run`. `runtime::aws` is the same for the Lambda functions.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::adapters::builtin::RuleAuditor;
use crate::adapters::faults::{Faults, FaultyAuditor};
use crate::adapters::generators::{self, GeneratorPlan};
use crate::adapters::local::admission;
use crate::adapters::local::bus::Bus;
use crate::adapters::local::sqlite::SqliteStore;
use crate::adapters::local::workflow::LocalWorkflow;
use crate::domain::RunId;
use crate::errors::FlowError;
use crate::ports::{DeferredAudits, Deps, GeneratorError, StoreError, SystemClock};
use crate::usecases::{self, TaskFunction};

/// The flow definition, compiled in: the local engine runs exactly this file.
pub const STATE_MACHINE: &str = include_str!("../../../statemachine.asl.json");
/// The name the local executions report (`$$.StateMachine.Name`); in AWS the template names
/// it after the stack.
pub const STATE_MACHINE_NAME: &str = "campaign-flow";

#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// SQLite file; `None` for a private in-memory database.
    pub db: Option<PathBuf>,
    pub faults: Faults,
    /// Multiplies every wait of the flow (Retry intervals, TimeoutSeconds, deferred-audit
    /// delays). 1.0 in normal use; tests shrink it to run fast.
    pub time_scale: f64,
    /// Who writes each agent's artifacts (built-in for an agent not named).
    pub generators: GeneratorPlan,
    /// Backpressure on new runs through the API (none by default; `campaign serve` sets
    /// its own defaults).
    pub limits: admission::Limits,
    /// The default execution mode and how `auto` decides.
    pub mode_policy: crate::domain::ModePolicy,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            db: None,
            faults: Faults::default(),
            time_scale: 1.0,
            generators: GeneratorPlan::new(),
            limits: admission::Limits::default(),
            mode_policy: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("statemachine.asl.json: {0}")]
    Definition(#[source] crate::ports::Cause),
    #[error("generator: {0}")]
    Generator(#[from] GeneratorError),
}

/// Scales the delays of the deferred-audit queue along with the flow's other waits.
struct ScaledDeferred {
    store: SqliteStore,
    scale: f64,
}

#[async_trait]
impl DeferredAudits for ScaledDeferred {
    async fn enqueue(&self, run_id: RunId, delay: Duration) -> Result<(), StoreError> {
        self.store.enqueue(run_id, delay.mul_f64(self.scale)).await
    }
}

/// A running local instance: use its `deps` with the use cases.
#[derive(Debug)]
pub struct LocalApp {
    pub deps: Deps,
    pub store: SqliteStore,
    pub bus: Bus,
    pub workflow: Arc<LocalWorkflow>,
    /// The API's admission of new runs (limits of `LocalConfig`).
    pub admission: Arc<admission::LocalAdmission>,
    auditor: Arc<FaultyAuditor<RuleAuditor>>,
    stop: CancellationToken,
    /// The deferred-audit worker and the workflow's executor.
    workers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Runs found unfinished at start-up and resumed.
    pub recovered: Vec<RunId>,
}

impl LocalApp {
    /// Opens the store, loads the state machine (refusing constructs the engine does not
    /// implement), resumes unfinished runs and starts the deferred-audit worker.
    pub async fn start(cfg: LocalConfig) -> Result<LocalApp, StartError> {
        let store = match &cfg.db {
            Some(p) => SqliteStore::open(p)?,
            None => SqliteStore::in_memory()?,
        };
        let machine = campaign_asl::StateMachine::load(STATE_MACHINE_NAME, STATE_MACHINE)
            .map_err(|e| StartError::Definition(Box::new(e)))?
            .with_time_scale(cfg.time_scale);
        for r in machine.task_resources() {
            if TaskFunction::from_resource(&r).is_none() {
                return Err(StartError::Definition(
                    format!("no local function for Task resource `{r}`").into(),
                ));
            }
        }
        let bus = Bus::default();
        let (workflow, executor) = LocalWorkflow::new(machine);
        let workflow = Arc::new(workflow);
        let auditor = Arc::new(FaultyAuditor {
            inner: RuleAuditor,
            unavailable: AtomicBool::new(cfg.faults.audit_unavailable),
            delay: cfg.faults.audit_delay,
        });
        let deps = Deps {
            store: Arc::new(store.clone()),
            keys: Arc::new(store.clone()),
            brands: Arc::new(store.clone()),
            mode_policy: cfg.mode_policy,
            publisher: Arc::new(bus.clone()),
            workflow: workflow.clone(),
            deferred: Arc::new(ScaledDeferred {
                store: store.clone(),
                scale: cfg.time_scale,
            }),
            generator: generators::build(&cfg.generators, &cfg.faults.agents).await?,
            auditor: auditor.clone(),
            clock: Arc::new(SystemClock),
        };
        let executions = executor.spawn(deps.clone());
        let recovered = match usecases::recover(&deps).await {
            Ok(r) => r,
            Err(e) => {
                workflow.shutdown().await;
                let _ = executions.await;
                return Err(e.into());
            }
        };
        if !recovered.is_empty() {
            info!(count = recovered.len(), "resumed unfinished runs");
        }
        let stop = CancellationToken::new();
        let worker = tokio::spawn(deferred_worker(
            deps.clone(),
            store.clone(),
            stop.clone(),
            cfg.time_scale,
        ));
        Ok(LocalApp {
            deps,
            store,
            bus,
            admission: Arc::new(admission::LocalAdmission::new(cfg.limits, workflow.clone())),
            workflow,
            auditor,
            stop,
            workers: std::sync::Mutex::new(vec![worker, executions]),
            recovered,
        })
    }

    /// Turns the injected audit outage on or off (tests and demos of the deferred path).
    pub fn set_audit_unavailable(&self, unavailable: bool) {
        self.auditor
            .unavailable
            .store(unavailable, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops executions (their runs stay unfinished, to be resumed at the next start) and
    /// the workers. The store is consistent at every commit, so nothing else is needed.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.workflow.shutdown().await;
        let workers = self
            .workers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for w in workers {
            let _ = w.await;
        }
    }
}

/// Polls the local deferred-audit queue: audits what is due, backs off while the audit is
/// still unavailable (30 s doubling to 10 min, scaled).
async fn deferred_worker(deps: Deps, store: SqliteStore, stop: CancellationToken, scale: f64) {
    let poll = Duration::from_millis(500)
        .mul_f64(scale.clamp(0.001, 1.0))
        .max(Duration::from_millis(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        let due = match store.due_deferred(time::OffsetDateTime::now_utc()).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %crate::errors::Chain(&e), "deferred-audit queue unreadable");
                continue;
            }
        };
        for (run_id, attempts) in due {
            match usecases::deferred_audit(&deps, run_id).await {
                Ok(_) | Err(FlowError::Cancelled(_)) | Err(FlowError::InvalidInput(_)) => {
                    let _ = store.remove_deferred(run_id).await;
                }
                Err(e) => {
                    let backoff = usecases::DEFERRED_AUDIT_DELAY
                        .saturating_mul(1 << attempts.min(5))
                        .min(Duration::from_secs(600))
                        .mul_f64(scale);
                    warn!(run_id = %run_id, error = %crate::errors::Chain(&e), retry_in_ms = backoff.as_millis() as u64, "deferred audit failed; will retry");
                    let _ = store
                        .reschedule_deferred(run_id, time::OffsetDateTime::now_utc() + backoff)
                        .await;
                }
            }
        }
    }
}
