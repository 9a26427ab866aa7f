//! The local workflow: runs `statemachine.asl.json` on the in-process ASL engine, one
//! tokio task per execution, with Task resources resolved to the same use-case functions
//! the Lambdas wrap.
//!
//! Two halves, because the use cases' dependencies hold the workflow: [`LocalWorkflow`],
//! the [`Workflow`] port (start, stop, describe), and [`Executor`], which holds those
//! dependencies and runs the executions the port asks for over a channel.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::domain::RunId;
use crate::errors::names;
use crate::ports::{Deps, ExecutionState, Workflow, WorkflowError};
use crate::usecases::{self, ExecutionEnd, TaskFunction};
use campaign_asl::{ExecutionError, StateMachine, TaskError, TaskInvoker};

/// Resolves `${…FunctionArn}` resources to use cases, in process. A panic inside a step is
/// caught and reported as `AgentFailed`, as a crashed Lambda would be.
#[derive(Debug)]
pub struct LocalInvoker {
    deps: Deps,
}

#[async_trait]
impl TaskInvoker for LocalInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let Some(function) = TaskFunction::from_resource(resource) else {
            return Err(lambda_error(
                names::INVALID_INPUT,
                &format!("no local function for resource `{resource}`"),
            ));
        };
        match AssertUnwindSafe(function.call(&self.deps, input))
            .catch_unwind()
            .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(lambda_error(e.name(), &e.to_string())),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                error!(resource, cause = %msg, "task panicked");
                Err(lambda_error(
                    names::AGENT_FAILED,
                    &format!("the function panicked: {msg}"),
                ))
            }
        }
    }
}

/// A failed function as Step Functions reports a Lambda Task's failure: `Error` is the
/// function's `errorType`, `Cause` the function's error document as a JSON string — so a
/// Catch stores the same thing locally as on AWS.
fn lambda_error(name: &str, message: &str) -> TaskError {
    TaskError {
        error: name.into(),
        cause: serde_json::json!({ "errorType": name, "errorMessage": message }).to_string(),
    }
}

/// How many ended executions [`Workflow::describe`] remembers.
const ENDED_REMEMBERED: usize = 10_000;

/// What the port and the executor share: the executions in flight and how recent ones
/// ended.
struct Executions {
    running: Mutex<HashMap<RunId, CancellationToken>>,
    /// How finished executions of this process ended (for `describe`).
    ended: Mutex<HashMap<RunId, (ExecutionEnd, time::OffsetDateTime)>>,
    tasks: tokio_util::task::TaskTracker,
    shutdown: CancellationToken,
}

/// One execution to run, from [`LocalWorkflow::start`] to the [`Executor`].
struct Start {
    run_id: RunId,
    input: Value,
    token: CancellationToken,
}

/// [`Workflow`] over the local ASL engine. Its executions run in the [`Executor`] made
/// with it.
pub struct LocalWorkflow {
    shared: Arc<Executions>,
    starts: mpsc::UnboundedSender<Start>,
}

/// Runs the executions its [`LocalWorkflow`] starts, with the use cases' dependencies.
pub struct Executor {
    machine: StateMachine,
    shared: Arc<Executions>,
    starts: mpsc::UnboundedReceiver<Start>,
}

impl std::fmt::Debug for LocalWorkflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWorkflow").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

impl LocalWorkflow {
    /// The port, and the executor that runs its executions of `machine` (spawn it with
    /// the dependencies once they are built; starts made before wait for it).
    pub fn new(machine: StateMachine) -> (LocalWorkflow, Executor) {
        let shared = Arc::new(Executions {
            running: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
            tasks: tokio_util::task::TaskTracker::new(),
            shutdown: CancellationToken::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        (
            LocalWorkflow {
                shared: shared.clone(),
                starts: tx,
            },
            Executor {
                machine,
                shared,
                starts: rx,
            },
        )
    }

    /// Executions in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.running.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Stops every execution without touching the runs (they stay unfinished and are
    /// resumed at the next start), then waits for the executions to wind down.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

impl Executor {
    /// Runs, until the workflow shuts down, every execution it starts, its Tasks calling
    /// the use cases with `deps`. (The task holds `deps`, which hold the workflow and so the
    /// channel's sender: it ends at [`LocalWorkflow::shutdown`], not when the app is dropped.)
    pub fn spawn(mut self, deps: Deps) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let start = tokio::select! {
                    biased;
                    _ = self.shared.shutdown.cancelled() => break,
                    start = self.starts.recv() => match start {
                        Some(s) => s,
                        None => break,
                    },
                };
                self.execute(start, &deps);
            }
            // Starts accepted but not yet picked up end as every execution does at
            // shutdown (their token is cancelled): recorded as stopped, no longer running.
            self.starts.close();
            while let Ok(start) = self.starts.try_recv() {
                self.execute(start, &deps);
            }
        })
    }

    fn execute(&self, start: Start, deps: &Deps) {
        let Start {
            run_id,
            input,
            token,
        } = start;
        let machine = self.machine.clone();
        let invoker: Arc<dyn TaskInvoker> = Arc::new(LocalInvoker { deps: deps.clone() });
        let deps = deps.clone();
        let shared = self.shared.clone();
        self.shared.tasks.spawn(async move {
            let result = machine
                .execute(&run_id.to_string(), input, invoker, token)
                .await;
            let stopped = matches!(result, Err(ExecutionError::Cancelled));
            let end = match result {
                Ok(_) => ExecutionEnd::Succeeded,
                // Stopped by a cancel (the use case closed the run) or by shutdown (the run
                // stays unfinished and is resumed at the next start).
                Err(ExecutionError::Cancelled) => ExecutionEnd::Succeeded,
                Err(ExecutionError::Failed { error, cause }) if error == names::STATES_TIMEOUT => {
                    info!(run_id = %run_id, %cause, "execution timed out");
                    ExecutionEnd::TimedOut
                }
                Err(ExecutionError::Failed { error, cause }) => ExecutionEnd::Failed { error, cause },
            };
            if !shared.shutdown.is_cancelled() {
                if let Err(e) = usecases::execution_ended(&deps, run_id, end.clone()).await {
                    error!(run_id = %run_id, error = %crate::errors::Chain(&e), "could not record how the execution ended");
                }
            }
            if let Ok(mut ended) = shared.ended.lock() {
                // Bounded: a long-lived server remembers the recent ends only.
                if ended.len() >= ENDED_REMEMBERED {
                    ended.clear();
                }
                let end = if stopped { ExecutionEnd::Aborted } else { end };
                ended.insert(run_id, (end, time::OffsetDateTime::now_utc()));
            }
            if let Ok(mut running) = shared.running.lock() {
                running.remove(&run_id);
            }
        });
    }
}

fn poisoned<T>(_: T) -> WorkflowError {
    WorkflowError::Unavailable("poisoned".into())
}

#[async_trait]
impl Workflow for LocalWorkflow {
    async fn start(&self, run_id: RunId, input: Value) -> Result<(), WorkflowError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(WorkflowError::Unavailable("shutting down".into()));
        }
        let token = self.shared.shutdown.child_token();
        {
            let mut running = self.shared.running.lock().map_err(poisoned)?;
            if running.contains_key(&run_id) {
                return Err(WorkflowError::AlreadyStarted(run_id));
            }
            running.insert(run_id, token.clone());
        }
        let start = Start {
            run_id,
            input,
            token,
        };
        if self.starts.send(start).is_err() {
            self.shared
                .running
                .lock()
                .map_err(poisoned)?
                .remove(&run_id);
            return Err(WorkflowError::Unavailable(
                "the local executor has stopped".into(),
            ));
        }
        Ok(())
    }

    async fn stop(&self, run_id: RunId, _cause: &str) -> Result<(), WorkflowError> {
        if let Ok(running) = self.shared.running.lock() {
            if let Some(t) = running.get(&run_id) {
                t.cancel();
            }
        }
        Ok(())
    }

    async fn describe(&self, run_id: RunId) -> Result<ExecutionState, WorkflowError> {
        if self
            .shared
            .running
            .lock()
            .map_err(poisoned)?
            .contains_key(&run_id)
        {
            return Ok(ExecutionState::Running);
        }
        Ok(
            match self.shared.ended.lock().map_err(poisoned)?.get(&run_id) {
                Some((end, at)) => ExecutionState::Ended {
                    end: end.clone(),
                    at: Some(*at),
                },
                None => ExecutionState::Missing,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_task_carries_the_lambda_error_document_as_its_cause() {
        let e = lambda_error("AgentFailed", "the model refused");
        assert_eq!(e.error, "AgentFailed");
        let doc: Value = serde_json::from_str(&e.cause).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"errorType": "AgentFailed", "errorMessage": "the model refused"})
        );
    }
}
