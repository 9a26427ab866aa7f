//! Amazon Bedrock's Converse API (`aws-sdk-bedrockruntime`): `ConverseStream` by default,
//! so the first tokens are observable as they arrive, or `Converse` for models without
//! streaming. Prompts, validation and the one repair are `adapters::chat`'s; this module
//! moves messages and maps Bedrock's typed errors:
//!
//! - throttling, service unavailable, internal errors, model not ready / timed out, a
//!   stream error or a cut connection → `Transient` (the flow retries with backoff);
//! - access denied, validation, unknown model, a model error, and a guardrail or content
//!   filter stopping the answer → `Failed` (`AgentFailed`).
//!
//! The SDK's own retries are off: the state machine's Retry is the one retry policy, so a
//! throttled agent backs off as the template says rather than inside the function's time.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_bedrockruntime::error::SdkError;
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseOutput, ConverseStreamOutput,
    InferenceConfiguration, Message as BedrockMessage, StopReason, SystemContentBlock, TokenUsage,
};

use crate::adapters::chat::{Answer, ChatModel, ModelGenerator};
use crate::agents::model::{Message, Role};
use crate::errors::{context, shown_as};
use crate::ports::GeneratorError;

/// Which model, and how to call it.
#[derive(Debug, Clone)]
pub struct BedrockConfig {
    /// A model id or inference profile id, e.g. `amazon.nova-lite-v1:0` or
    /// `us.anthropic.claude-3-5-haiku-20241022-v1:0`.
    pub model_id: String,
    /// `ConverseStream` (true) or `Converse`.
    pub stream: bool,
    /// The whole answer; under the Task timeout so a slow model is a retryable failure.
    pub timeout: Duration,
    /// The answer's token budget (the agents' JSON is well under 1,000 tokens).
    pub max_tokens: i32,
}

impl BedrockConfig {
    /// Streaming, 22 s per answer (an answer and its repair fit in the agent Lambda's 50 s),
    /// 2,048 tokens.
    pub fn new(model_id: impl Into<String>) -> BedrockConfig {
        BedrockConfig {
            model_id: model_id.into(),
            stream: true,
            timeout: Duration::from_secs(22),
            max_tokens: 2048,
        }
    }
}

/// A Bedrock model; [`BedrockGenerator`] makes it a generator.
#[derive(Debug, Clone)]
pub struct BedrockModel {
    client: aws_sdk_bedrockruntime::Client,
    config: BedrockConfig,
}

/// [`Generator`](crate::ports::Generator) over a Bedrock model.
pub type BedrockGenerator = ModelGenerator<BedrockModel>;

impl BedrockModel {
    /// Over the SDK configuration (region and credentials from the environment; the
    /// endpoint from `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` when set), without SDK retries.
    pub fn new(sdk: &aws_config::SdkConfig, config: BedrockConfig) -> BedrockModel {
        let conf = aws_sdk_bedrockruntime::config::Builder::from(sdk)
            .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
            .build();
        BedrockModel {
            client: aws_sdk_bedrockruntime::Client::from_conf(conf),
            config,
        }
    }

    /// The generator over this model.
    pub fn generator(sdk: &aws_config::SdkConfig, config: BedrockConfig) -> BedrockGenerator {
        ModelGenerator {
            model: BedrockModel::new(sdk, config),
        }
    }

    async fn converse_stream(
        &self,
        system: Vec<SystemContentBlock>,
        messages: Vec<BedrockMessage>,
    ) -> Result<Answer, GeneratorError> {
        let started = Instant::now();
        let out = self
            .client
            .converse_stream()
            .model_id(&self.config.model_id)
            .set_system(Some(system))
            .set_messages(Some(messages))
            .inference_config(self.inference())
            .send()
            .await
            .map_err(|e| classify(&self.config.model_id, e))?;
        let mut stream = out.stream;
        let mut answer = Answer::default();
        let mut stop = None;
        while let Some(event) = stream
            .recv()
            .await
            .map_err(|e| classify(&self.config.model_id, e))?
        {
            match event {
                ConverseStreamOutput::ContentBlockDelta(d) => {
                    if let Some(ContentBlockDelta::Text(piece)) = d.delta {
                        answer.push(&piece, started);
                    }
                }
                ConverseStreamOutput::MessageStop(s) => stop = Some(s.stop_reason),
                ConverseStreamOutput::Metadata(m) => record_usage(&mut answer, m.usage.as_ref()),
                _ => {}
            }
        }
        let Some(stop) = stop else {
            return Err(GeneratorError::Transient(
                format!(
                    "Bedrock {}: the stream ended before messageStop",
                    self.config.model_id
                )
                .into(),
            ));
        };
        refused(&self.config.model_id, &stop)?;
        Ok(answer)
    }

    async fn converse(
        &self,
        system: Vec<SystemContentBlock>,
        messages: Vec<BedrockMessage>,
    ) -> Result<Answer, GeneratorError> {
        let started = Instant::now();
        let out = self
            .client
            .converse()
            .model_id(&self.config.model_id)
            .set_system(Some(system))
            .set_messages(Some(messages))
            .inference_config(self.inference())
            .send()
            .await
            .map_err(|e| classify(&self.config.model_id, e))?;
        refused(&self.config.model_id, &out.stop_reason)?;
        let mut answer = Answer {
            first_token: Some(started.elapsed()),
            ..Answer::default()
        };
        if let Some(ConverseOutput::Message(m)) = out.output {
            for block in m.content {
                if let ContentBlock::Text(t) = block {
                    answer.text.push_str(&t);
                }
            }
        }
        record_usage(&mut answer, out.usage.as_ref());
        Ok(answer)
    }

    fn inference(&self) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(self.config.max_tokens)
            .temperature(0.7)
            .build()
    }
}

fn record_usage(answer: &mut Answer, usage: Option<&TokenUsage>) {
    if let Some(u) = usage {
        answer.prompt_tokens = u64::try_from(u.input_tokens).ok();
        answer.completion_tokens = u64::try_from(u.output_tokens).ok();
    }
}

/// A guardrail or content filter stopping the answer is a refusal, not worth a retry.
fn refused(model: &str, stop: &StopReason) -> Result<(), GeneratorError> {
    match stop {
        StopReason::ContentFiltered | StopReason::GuardrailIntervened => {
            Err(GeneratorError::Failed(
                format!("Bedrock {model} refused to answer ({})", stop.as_str()).into(),
            ))
        }
        _ => Ok(()),
    }
}

/// Whether a Bedrock error is worth a retry, by its typed variant.
trait Retryable {
    fn transient(&self) -> bool;
}

impl Retryable for ConverseStreamError {
    fn transient(&self) -> bool {
        self.is_throttling_exception()
            || self.is_service_unavailable_exception()
            || self.is_internal_server_exception()
            || self.is_model_not_ready_exception()
            || self.is_model_timeout_exception()
            || self.is_model_stream_error_exception()
    }
}

impl Retryable for ConverseError {
    fn transient(&self) -> bool {
        self.is_throttling_exception()
            || self.is_service_unavailable_exception()
            || self.is_internal_server_exception()
            || self.is_model_not_ready_exception()
            || self.is_model_timeout_exception()
    }
}

/// The exception events of a stream.
impl Retryable for ConverseStreamOutputError {
    fn transient(&self) -> bool {
        self.is_throttling_exception()
            || self.is_service_unavailable_exception()
            || self.is_internal_server_exception()
            || self.is_model_stream_error_exception()
    }
}

/// Bedrock's failures: a service error by its typed variant; no answer at all (timeout,
/// connection, a response or stream cut or unreadable) is worth a retry.
fn classify<E, R>(model: &str, e: SdkError<E, R>) -> GeneratorError
where
    E: Retryable + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &e {
        SdkError::ServiceError(s) => s.err().transient(),
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    let text = format!(
        "Bedrock {model}: {}",
        aws_sdk_bedrockruntime::error::DisplayErrorContext(&e)
    );
    let cause = shown_as(text, e);
    if transient {
        GeneratorError::Transient(cause)
    } else {
        GeneratorError::Failed(cause)
    }
}

fn text_message(role: ConversationRole, text: &str) -> Result<BedrockMessage, GeneratorError> {
    BedrockMessage::builder()
        .role(role)
        .content(ContentBlock::Text(text.to_owned()))
        .build()
        .map_err(|e| GeneratorError::Failed(context("Bedrock message", e)))
}

#[async_trait]
impl ChatModel for BedrockModel {
    fn model_id(&self) -> &str {
        &self.config.model_id
    }

    async fn complete(&self, messages: &[Message]) -> Result<Answer, GeneratorError> {
        let mut system = Vec::new();
        let mut turns = Vec::new();
        for m in messages {
            match m.role {
                Role::System => system.push(SystemContentBlock::Text(m.content.clone())),
                Role::User => turns.push(text_message(ConversationRole::User, &m.content)?),
                Role::Assistant => {
                    turns.push(text_message(ConversationRole::Assistant, &m.content)?)
                }
            }
        }
        let call = async {
            if self.config.stream {
                self.converse_stream(system, turns).await
            } else {
                self.converse(system, turns).await
            }
        };
        tokio::time::timeout(self.config.timeout, call)
            .await
            .map_err(|_| {
                GeneratorError::Transient(
                    format!(
                        "Bedrock {}: no whole answer within {:?}",
                        self.config.model_id, self.config.timeout
                    )
                    .into(),
                )
            })?
    }
}
