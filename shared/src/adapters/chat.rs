//! What every model-backed generator shares, whatever the provider: ask for the agent's
//! structured answer, validate it, repair it once, and account for what it cost and took.
//! A provider (`adapters::openai`, `adapters::bedrock`) implements [`ChatModel`] — one
//! conversation in, one streamed answer out, its failures mapped to `Transient` (worth a
//! retry) or `Failed` — and [`ModelGenerator`] makes it a [`Generator`].

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::agents::model::{self, Message};
use crate::domain::{Agent, Brief, ModelUse, RunId};
use crate::observe;
use crate::ports::{Generated, Generator, GeneratorError};

/// One answer of a model, read to its end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    /// Request to the first content token.
    pub first_token: Option<Duration>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

impl Answer {
    /// Appends a streamed piece; the first non-empty one sets the time to first token
    /// (`started`: when the request was sent).
    pub fn push(&mut self, piece: &str, started: Instant) {
        if !piece.is_empty() && self.first_token.is_none() {
            self.first_token = Some(started.elapsed());
        }
        self.text.push_str(piece);
    }
}

/// A chat model behind some provider's API.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// The model id as the provider names it (recorded on the artifact).
    fn model_id(&self) -> &str;
    /// Sends the conversation and reads the answer. Throttling, 5xx, timeouts and cut
    /// streams are `Transient`; refusals and rejected requests are `Failed`.
    async fn complete(&self, messages: &[Message]) -> Result<Answer, GeneratorError>;
}

/// A [`Generator`] over a [`ChatModel`]: the prompt of `agents::model`, validation, one
/// repair, usage and latency.
#[derive(Debug, Clone)]
pub struct ModelGenerator<M> {
    pub model: M,
}

fn add(total: Option<u64>, more: Option<u64>) -> Option<u64> {
    match (total, more) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

#[async_trait]
impl<M: ChatModel> Generator for ModelGenerator<M> {
    async fn generate(
        &self,
        agent: Agent,
        brief: &Brief,
        run_id: RunId,
    ) -> Result<Generated, GeneratorError> {
        let mut messages = model::messages(agent, brief);
        let mut repaired = false;
        let started = Instant::now();
        let mut usage = ModelUse {
            model: self.model.model_id().to_owned(),
            prompt_tokens: None,
            completion_tokens: None,
            first_token_ms: None,
            latency_ms: 0,
            repaired: false,
        };
        loop {
            let answer = self.model.complete(&messages).await?;
            usage.prompt_tokens = add(usage.prompt_tokens, answer.prompt_tokens);
            usage.completion_tokens = add(usage.completion_tokens, answer.completion_tokens);
            if usage.first_token_ms.is_none() {
                usage.first_token_ms = answer.first_token.map(|d| d.as_millis() as u64);
                if let Some(d) = answer.first_token {
                    metrics::histogram!(observe::MODEL_FIRST_TOKEN, "agent" => agent.as_str())
                        .record(d.as_secs_f64());
                }
            }
            tracing::info!(
                run_id = %run_id,
                agent = agent.as_str(),
                model = %usage.model,
                first_token_ms = answer.first_token.map(|d| d.as_millis() as u64),
                prompt_tokens = answer.prompt_tokens,
                completion_tokens = answer.completion_tokens,
                repaired,
                "model answered"
            );
            match model::parse(agent, brief, run_id, &answer.text) {
                Ok(content) => {
                    let took = started.elapsed();
                    metrics::histogram!(observe::MODEL_LATENCY, "agent" => agent.as_str())
                        .record(took.as_secs_f64());
                    usage.latency_ms = took.as_millis() as u64;
                    usage.repaired = repaired;
                    return Ok(Generated {
                        content,
                        model: Some(usage),
                    });
                }
                Err(violations) if !repaired => {
                    repaired = true;
                    model::repair(&mut messages, &answer.text, &violations);
                }
                Err(violations) => {
                    return Err(GeneratorError::Failed(
                        format!(
                            "the model's answer still breaks the rules after one repair: {}",
                            violations.join("; ")
                        )
                        .into(),
                    ));
                }
            }
        }
    }
}
