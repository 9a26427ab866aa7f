//! Shared by every function: JSON logs, the one conversion of failures to Lambda error
//! names (`Diagnostic.error_type`, matched by the ASL's Retry/Catch), and dependency wiring
//! done once per cold start from the typed configuration.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lambda_runtime::Diagnostic;
use metrics_cloudwatch_embedded::Collector;
use serde_json::Value;

use campaign_shared::adapters::aws::config::{
    BEDROCK_MODEL_ID, Config, ConfigError, DEFERRED_AUDIT_QUEUE_URL, FAULTS, MODE_POLICY,
    STATE_MACHINE_ARN, STATUS_QUEUE_URL, TABLE_NAME, WEBSOCKET_ENDPOINT,
};
use campaign_shared::adapters::aws::dynamodb::DynamoStore;
use campaign_shared::adapters::aws::sfn::SfnWorkflow;
use campaign_shared::adapters::aws::sqs::{SqsDeferredAudits, SqsPublisher};
use campaign_shared::adapters::aws::websocket::ApiGatewayPusher;
use campaign_shared::adapters::bedrock::BedrockConfig;
use campaign_shared::adapters::builtin::RuleAuditor;
use campaign_shared::adapters::faults::{Faults, FaultyAuditor};
use campaign_shared::adapters::generators::{self, GeneratorChoice, GeneratorPlan};
use campaign_shared::domain::{Agent, Event, ModePolicy, RunId};
use campaign_shared::errors::FlowError;
use campaign_shared::ports::{
    Auditor, DeferredAudits, Deps, EventPublisher, ExecutionState, StoreError, SystemClock,
    Workflow, WorkflowError,
};

/// Logs and metrics of a cold start: `lambda_runtime`'s subscriber, which follows Lambda's
/// advanced logging controls (`AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL`, set
/// by the template's `LoggingConfig`; else `RUST_LOG`, default INFO), and the CloudWatch
/// EMF recorder of the `metrics` facade, flushed to stdout after every invocation by
/// [`run`]. Called once, first thing in `main`.
pub fn init() -> &'static Collector {
    lambda_runtime::tracing::init_default_subscriber();
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(campaign_shared::observe::NAMESPACE)
        .with_lambda_request_id("requestId")
        .init();
    match collector {
        Ok(c) => {
            campaign_shared::observe::describe();
            c
        }
        Err(e) => {
            eprintln!("metrics recorder: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs the function: `handler` behind `lambda_runtime`'s tracing layer (a span per
/// invocation with its request id) and the EMF layer (metrics flushed per invocation).
/// Errors keep their stable names through `Into<Diagnostic>`.
pub async fn run<A, F, R>(
    metrics: &'static Collector,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    F: tower::Service<lambda_runtime::LambdaEvent<A>, Response = R>,
    F::Future: std::future::Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + std::fmt::Debug,
    A: for<'de> serde::Deserialize<'de>,
    R: serde::Serialize,
{
    metrics_cloudwatch_embedded::lambda::service::run(metrics, handler).await
}

/// A function failure with its stable name.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FunctionError {
    pub name: &'static str,
    pub message: String,
}

impl From<FlowError> for FunctionError {
    fn from(e: FlowError) -> Self {
        FunctionError {
            name: e.name(),
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for FunctionError {
    fn from(e: StoreError) -> Self {
        FlowError::from(e).into()
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Diagnostic {
        Diagnostic {
            error_type: e.name.to_string(),
            error_message: e.message,
        }
    }
}

/// Stands in for a port this function was not configured for; using it is a
/// deployment error, reported as such rather than a panic.
#[derive(Debug, Clone, Copy)]
pub struct NotConfigured(pub &'static str);

impl NotConfigured {
    fn missing(&self) -> WorkflowError {
        WorkflowError::Unavailable(format!("this function has no {}", self.0).into())
    }
}

#[async_trait]
impl Workflow for NotConfigured {
    async fn start(&self, _: RunId, _: Value) -> Result<(), WorkflowError> {
        Err(self.missing())
    }
    async fn stop(&self, _: RunId, _: &str) -> Result<(), WorkflowError> {
        Err(self.missing())
    }
    async fn describe(&self, _: RunId) -> Result<ExecutionState, WorkflowError> {
        Err(self.missing())
    }
}

#[async_trait]
impl DeferredAudits for NotConfigured {
    async fn enqueue(&self, _: RunId, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(
            format!("this function has no {}", self.0).into(),
        ))
    }
}

#[async_trait]
impl EventPublisher for NotConfigured {
    async fn publish(&self, events: &[Event]) {
        tracing::warn!(
            count = events.len(),
            "events not published: this function has no {}",
            self.0
        );
    }
}

/// The AWS clients a function uses, built once per cold start.
#[derive(Debug, Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub sdk: aws_config::SdkConfig,
}

impl Clients {
    pub async fn load() -> Clients {
        let sdk = campaign_shared::adapters::aws::sdk_config().await;
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sfn: aws_sdk_sfn::Client::new(&sdk),
            sdk,
        }
    }

    /// The Management API client of the WebSocket API stage at `endpoint`.
    pub fn websocket(&self, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk)
            .endpoint_url(endpoint)
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(conf)
    }
}

/// The use cases' dependencies over AWS, from the function's configuration. Ports whose
/// variables the function did not declare are [`NotConfigured`].
pub async fn deps(config: &Config, clients: &Clients) -> Result<Deps, ConfigError> {
    let table = config.get(TABLE_NAME).ok_or(ConfigError::Missing(
        TABLE_NAME,
        "declared by every function",
    ))?;
    let store = DynamoStore::new(clients.dynamodb.clone(), table);
    let publisher: Arc<dyn EventPublisher> = match config.get(STATUS_QUEUE_URL) {
        Some(url) => Arc::new(SqsPublisher::new(clients.sqs.clone(), url)),
        None => Arc::new(NotConfigured(STATUS_QUEUE_URL)),
    };
    let workflow: Arc<dyn Workflow> = match config.get(STATE_MACHINE_ARN) {
        Some(arn) => Arc::new(SfnWorkflow::new(clients.sfn.clone(), arn)),
        None => Arc::new(NotConfigured(STATE_MACHINE_ARN)),
    };
    let deferred: Arc<dyn DeferredAudits> = match config.get(DEFERRED_AUDIT_QUEUE_URL) {
        Some(url) => Arc::new(SqsDeferredAudits::new(clients.sqs.clone(), url)),
        None => Arc::new(NotConfigured(DEFERRED_AUDIT_QUEUE_URL)),
    };
    let faults = faults(std::env::var(FAULTS).ok().as_deref())?;
    // An agent function writes with Bedrock when its BEDROCK_MODEL_ID is set (it runs one
    // agent, so the plan names them all); else with the built-in generator.
    let plan: GeneratorPlan = match config.get(BEDROCK_MODEL_ID) {
        Some(id) => Agent::ALL
            .into_iter()
            .map(|a| (a, GeneratorChoice::Bedrock(BedrockConfig::new(id))))
            .collect(),
        None => GeneratorPlan::new(),
    };
    let generator = generators::build(&plan, &faults.agents)
        .await
        .map_err(|e| ConfigError::Malformed {
            name: BEDROCK_MODEL_ID,
            why: e.to_string(),
        })?;
    let auditor: Arc<dyn Auditor> = if faults.audit_unavailable || faults.audit_delay.is_some() {
        Arc::new(FaultyAuditor {
            inner: RuleAuditor,
            unavailable: faults.audit_unavailable.into(),
            delay: faults.audit_delay,
        })
    } else {
        Arc::new(RuleAuditor)
    };
    Ok(Deps {
        store: Arc::new(store.clone()),
        keys: Arc::new(store.clone()),
        brands: Arc::new(store),
        mode_policy: mode_policy(config)?,
        publisher,
        workflow,
        deferred,
        generator,
        auditor,
        clock: Arc::new(SystemClock),
    })
}

/// How `auto` decides and the default mode, from `MODE_POLICY` (defaults when the function
/// did not declare it or it is empty).
pub fn mode_policy(config: &Config) -> Result<ModePolicy, ConfigError> {
    match config.get(MODE_POLICY) {
        None => Ok(ModePolicy::default()),
        Some(spec) => ModePolicy::parse_spec(spec).map_err(|why| ConfigError::Malformed {
            name: MODE_POLICY,
            why,
        }),
    }
}

/// Faults to inject, from `CAMPAIGN_FAULTS` (tests and game days; unset in the template):
/// the `--fault` specs of `campaign`, comma-separated. A malformed spec stops the cold start.
pub fn faults(spec: Option<&str>) -> Result<Faults, ConfigError> {
    let mut faults = Faults::default();
    for one in spec.unwrap_or_default().split(',').map(str::trim) {
        if !one.is_empty() {
            faults
                .add(one)
                .map_err(|why| ConfigError::Malformed { name: FAULTS, why })?;
        }
    }
    if !faults.agents.is_empty() || faults.audit_unavailable || faults.audit_delay.is_some() {
        tracing::warn!(spec = spec.unwrap_or_default(), "fault injection is on");
    }
    Ok(faults)
}

/// The store of connection records and the pusher, for the WebSocket functions.
pub fn websocket(
    config: &Config,
    clients: &Clients,
) -> Result<(DynamoStore, ApiGatewayPusher), ConfigError> {
    let table = config.get(TABLE_NAME).ok_or(ConfigError::Missing(
        TABLE_NAME,
        "declared by every function",
    ))?;
    let endpoint = config.get(WEBSOCKET_ENDPOINT).ok_or(ConfigError::Missing(
        WEBSOCKET_ENDPOINT,
        "declared by the WebSocket functions",
    ))?;
    Ok((
        DynamoStore::new(clients.dynamodb.clone(), table),
        ApiGatewayPusher::new(clients.websocket(endpoint)),
    ))
}

/// Reads the configuration or ends the cold start with the variable's name.
pub fn config_or_exit(needs: &[&'static str]) -> Config {
    match Config::from_env(needs) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %campaign_shared::errors::Chain(&e), "configuration");
            eprintln!("configuration error: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_come_from_the_environment_and_bad_ones_are_named() {
        assert_eq!(faults(None).unwrap(), Faults::default());
        let f = faults(Some("copy=error, audit=unavailable")).unwrap();
        assert!(f.audit_unavailable);
        assert_eq!(f.agents.len(), 1);
        let e = faults(Some("copy=explode")).unwrap_err();
        assert!(e.to_string().contains("CAMPAIGN_FAULTS"), "{e}");
    }

    #[test]
    fn flow_errors_become_diagnostics_with_their_names() {
        let d: Diagnostic = FunctionError::from(FlowError::AgentFailed("no".into())).into();
        assert_eq!(d.error_type, "AgentFailed");
        assert_eq!(d.error_message, "no");
        let d: Diagnostic = FunctionError::from(FlowError::Transient("later".into())).into();
        assert_eq!(d.error_type, "Transient");
    }
}
