//! PLACEHOLDER on main until the `asl` branch (the ASL engine) is merged.
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}
#[async_trait::async_trait]
pub trait TaskInvoker: Send + Sync {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError>;
}
#[derive(Debug, Clone)]
pub struct StateMachine;
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    pub state: Option<String>,
    pub message: String,
}
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    #[error("{error}: {cause}")]
    Failed { error: String, cause: String },
    #[error("cancelled")]
    Cancelled,
}
impl StateMachine {
    pub fn load(_d: &str) -> Result<Self, LoadError> {
        Ok(StateMachine)
    }
    pub fn with_time_scale(self, _s: f64) -> Self {
        self
    }
    pub fn task_resources(&self) -> Vec<String> {
        Vec::new()
    }
    pub async fn execute(
        &self,
        _n: &str,
        _i: Value,
        _inv: Arc<dyn TaskInvoker>,
        _c: CancellationToken,
    ) -> Result<Value, ExecutionError> {
        Err(ExecutionError::Cancelled)
    }
}
