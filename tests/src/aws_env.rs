//! An AWS environment on moto for the function tests: the table, the status and
//! deferred-audit queues, the state machine from `statemachine.asl.json` (with its
//! `${…}` substituted), and `Deps` wired exactly as the functions wire them.

use std::sync::Arc;

use campaign_shared::adapters::aws::dynamodb::{DynamoStore, create_table};
use campaign_shared::adapters::aws::sfn::SfnWorkflow;
use campaign_shared::adapters::aws::sqs::{SqsDeferredAudits, SqsPublisher};
use campaign_shared::adapters::builtin::{BuiltinGenerator, RuleAuditor};
use campaign_shared::ports::{Deps, SystemClock};
use campaign_shared::runtime::local::STATE_MACHINE;
use campaign_shared::usecases::TaskFunction;

use crate::moto::{self, Moto};

pub const TABLE: &str = "campaigns";

#[derive(Debug)]
pub struct AwsEnv {
    pub moto: &'static Moto,
    pub sdk: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub status_queue_url: String,
    pub deferred_queue_url: String,
    pub state_machine_arn: String,
    pub store: DynamoStore,
    pub deps: Deps,
    _guard: tokio::sync::MutexGuard<'static, ()>,
}

/// The definition with every `${Name}` replaced by a Lambda ARN, as SAM's
/// `DefinitionSubstitutions` would.
pub fn substituted_definition() -> String {
    let mut def = STATE_MACHINE.to_string();
    for f in TaskFunction::ALL {
        let name = f.substitution();
        def = def.replace(
            &format!("${{{name}}}"),
            &format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                name.trim_end_matches("Arn")
            ),
        );
    }
    def
}

/// How the environment is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Executions run the definition (Tasks invoke the Lambda endpoint moto was pointed at
    /// with [`moto::route_lambda_to`]); otherwise they stay `RUNNING`.
    pub execute: bool,
    /// The status queue is FIFO, as in the template.
    pub fifo_status: bool,
}

impl AwsEnv {
    pub async fn start() -> AwsEnv {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> AwsEnv {
        let (moto, guard) = moto::fresh().await;
        if options.execute {
            moto::execute_state_machines(moto).await;
        }
        let sdk = moto::sdk_config(&moto.endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        create_table(&dynamodb, TABLE).await.unwrap();
        let status_queue = if options.fifo_status {
            sqs.create_queue()
                .queue_name("campaign-status.fifo")
                .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
                .attributes(
                    aws_sdk_sqs::types::QueueAttributeName::ContentBasedDeduplication,
                    "false",
                )
        } else {
            sqs.create_queue().queue_name("campaign-status")
        };
        let status_queue_url = status_queue.send().await.unwrap().queue_url.unwrap();
        let deferred_queue_url = sqs
            .create_queue()
            .queue_name("campaign-deferred-audit")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let state_machine_arn = sfn
            .create_state_machine()
            .name("CampaignFlow")
            .definition(substituted_definition())
            .role_arn("arn:aws:iam::123456789012:role/campaign-flow")
            .send()
            .await
            .unwrap()
            .state_machine_arn;
        let store = DynamoStore::new(dynamodb.clone(), TABLE);
        let deps = Deps {
            store: Arc::new(store.clone()),
            keys: Arc::new(store.clone()),
            brands: Arc::new(store.clone()),
            mode_policy: Default::default(),
            publisher: Arc::new(SqsPublisher::new(sqs.clone(), &status_queue_url)),
            workflow: Arc::new(SfnWorkflow::new(sfn.clone(), &state_machine_arn)),
            deferred: Arc::new(SqsDeferredAudits::new(sqs.clone(), &deferred_queue_url)),
            generator: Arc::new(BuiltinGenerator),
            auditor: Arc::new(RuleAuditor),
            clock: Arc::new(SystemClock),
        };
        AwsEnv {
            moto,
            sdk,
            dynamodb,
            sqs,
            sfn,
            status_queue_url,
            deferred_queue_url,
            state_machine_arn,
            store,
            deps,
            _guard: guard,
        }
    }

    /// Bodies of the messages waiting on `queue_url` (received and deleted).
    pub async fn drain(&self, queue_url: &str) -> Vec<String> {
        self.drain_grouped(queue_url)
            .await
            .into_iter()
            .map(|(_, body)| body)
            .collect()
    }

    /// Like [`AwsEnv::drain`], with each message's FIFO group id (`None` on a standard
    /// queue).
    pub async fn drain_grouped(&self, queue_url: &str) -> Vec<(Option<String>, String)> {
        use aws_sdk_sqs::types::MessageSystemAttributeName;
        let mut out = Vec::new();
        loop {
            let r = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            let msgs = r.messages.unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                let group = m.attributes.as_ref().and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                        .cloned()
                });
                out.push((group, m.body.clone().unwrap_or_default()));
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// The environment variables the functions read, pointing at this environment.
    pub fn function_env(&self, websocket_endpoint: &str) -> Vec<(String, String)> {
        vec![
            ("TABLE_NAME".into(), TABLE.into()),
            ("STATUS_QUEUE_URL".into(), self.status_queue_url.clone()),
            (
                "DEFERRED_AUDIT_QUEUE_URL".into(),
                self.deferred_queue_url.clone(),
            ),
            ("STATE_MACHINE_ARN".into(), self.state_machine_arn.clone()),
            ("WEBSOCKET_ENDPOINT".into(), websocket_endpoint.into()),
            (
                "WEBSOCKET_URL".into(),
                websocket_endpoint.replacen("http", "ws", 1),
            ),
            ("AWS_ENDPOINT_URL".into(), self.moto.endpoint.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ]
    }
}

/// A fixture from `tests/fixtures`, with `RUN_ID` replaced.
pub fn fixture(name: &str, run_id: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text.replace("RUN_ID", run_id)).unwrap()
}
