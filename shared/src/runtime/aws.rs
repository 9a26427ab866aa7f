//! The AWS composition root: what a Lambda function's use cases run on — the DynamoDB
//! store, the SQS publisher and deferred-audit queue, the Step Functions workflow, the
//! generators and the audit — built once per cold start from its typed [`AwsConfig`].
//! `runtime::local` is the same for `campaign serve` / `campaign run`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::adapters::aws::config::{
    AwsConfig, BEDROCK_MODEL_ID, ConfigError, DEFERRED_AUDIT_QUEUE_URL, FAULTS, STATE_MACHINE_ARN,
    STATUS_QUEUE_URL, WEBSOCKET_ENDPOINT,
};
use crate::adapters::aws::dynamodb::DynamoStore;
use crate::adapters::aws::sfn::SfnWorkflow;
use crate::adapters::aws::sqs::{SqsDeferredAudits, SqsPublisher};
use crate::adapters::aws::websocket::ApiGatewayPusher;
use crate::adapters::bedrock::BedrockConfig;
use crate::adapters::builtin::RuleAuditor;
use crate::adapters::faults::{Faults, FaultyAuditor};
use crate::adapters::generators::{self, GeneratorChoice, GeneratorPlan};
use crate::domain::{Agent, Event, RunId};
use crate::ports::{
    Auditor, DeferredAudits, Deps, EventPublisher, ExecutionState, StoreError, SystemClock,
    Workflow, WorkflowError,
};

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
        let sdk = crate::adapters::aws::sdk_config().await;
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
pub async fn deps(config: &AwsConfig, clients: &Clients) -> Result<Deps, ConfigError> {
    let table = config.table()?;
    let store = DynamoStore::new(clients.dynamodb.clone(), table);
    let publisher: Arc<dyn EventPublisher> = match &config.status_queue_url {
        Some(url) => Arc::new(SqsPublisher::new(clients.sqs.clone(), url)),
        None => Arc::new(NotConfigured(STATUS_QUEUE_URL)),
    };
    let workflow: Arc<dyn Workflow> = match &config.state_machine_arn {
        Some(arn) => Arc::new(SfnWorkflow::new(clients.sfn.clone(), arn)),
        None => Arc::new(NotConfigured(STATE_MACHINE_ARN)),
    };
    let deferred: Arc<dyn DeferredAudits> = match &config.deferred_audit_queue_url {
        Some(url) => Arc::new(SqsDeferredAudits::new(clients.sqs.clone(), url)),
        None => Arc::new(NotConfigured(DEFERRED_AUDIT_QUEUE_URL)),
    };
    let faults = faults(std::env::var(FAULTS).ok().as_deref())?;
    // An agent function writes with Bedrock when its BEDROCK_MODEL_ID is set (it runs one
    // agent, so the plan names them all); else with the built-in generator.
    let plan: GeneratorPlan = match &config.bedrock_model_id {
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
        mode_policy: config.mode_policy,
        publisher,
        workflow,
        deferred,
        generator,
        auditor,
        clock: Arc::new(SystemClock),
    })
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
    config: &AwsConfig,
    clients: &Clients,
) -> Result<(DynamoStore, ApiGatewayPusher), ConfigError> {
    let table = config.table()?;
    let endpoint = AwsConfig::required(
        &config.websocket_endpoint,
        WEBSOCKET_ENDPOINT,
        "declared by the WebSocket functions",
    )?;
    Ok((
        DynamoStore::new(clients.dynamodb.clone(), table),
        ApiGatewayPusher::new(clients.websocket(endpoint)),
    ))
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
}
