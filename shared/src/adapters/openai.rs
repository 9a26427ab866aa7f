//! The OpenAI-compatible chat completions generator (`POST {base}/chat/completions`,
//! streamed as server-sent events): Ollama, vLLM, LM Studio and hosted compatible APIs.
//! Prompts, validation and the one repair are `adapters::chat`'s, shared by every provider;
//! this module only moves messages and maps the service's failures: throttling, 5xx, a
//! timeout or a cut stream → `Transient` (retried with backoff by the flow); a refusal
//! (content filter), another 4xx or an answer still breaking the rules after its repair →
//! `Failed` (`AgentFailed`).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::adapters::chat::{Answer, ChatModel, ModelGenerator};
use crate::agents::model::Message;
use crate::errors::context;
use crate::ports::{Cause, GeneratorError};

/// Where and how to reach the model.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// e.g. `http://127.0.0.1:11434/v1` (Ollama) or `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// Whole answer, first token to last; under the Task timeout so a slow model is a
    /// retryable failure, not a killed function.
    pub timeout: Duration,
}

/// An OpenAI-compatible server's model; [`OpenAiGenerator`] makes it a generator.
#[derive(Debug, Clone)]
pub struct OpenAiModel {
    http: reqwest::Client,
    config: OpenAiConfig,
}

/// [`Generator`](crate::ports::Generator) over an OpenAI-compatible server.
pub type OpenAiGenerator = ModelGenerator<OpenAiModel>;

impl OpenAiModel {
    pub fn new(config: OpenAiConfig) -> Result<Self, GeneratorError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| GeneratorError::Failed(context("HTTP client", e)))?;
        Ok(OpenAiModel { http, config })
    }

    /// The generator over this server's model.
    pub fn generator(config: OpenAiConfig) -> Result<OpenAiGenerator, GeneratorError> {
        Ok(ModelGenerator {
            model: OpenAiModel::new(config)?,
        })
    }
}

#[async_trait]
impl ChatModel for OpenAiModel {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    async fn complete(&self, messages: &[Message]) -> Result<Answer, GeneratorError> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = json!({
            "model": self.config.model,
            "stream": true,
            "stream_options": { "include_usage": true },
            "response_format": { "type": "json_object" },
            "messages": messages
                .iter()
                .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
                .collect::<Vec<_>>(),
        });
        let mut req = self.http.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let started = Instant::now();
        let resp = req.send().await.map_err(|e| {
            GeneratorError::Transient(if e.is_timeout() {
                format!("{url}: no answer within {:?}", self.config.timeout).into()
            } else {
                context(url.clone(), e)
            })
        })?;
        let status = resp.status();
        if !status.is_success() {
            let detail = resp.text().await.unwrap_or_default();
            let detail: String = detail.chars().take(300).collect();
            let msg: Cause = format!("the model server answered {status}: {detail}").into();
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                GeneratorError::Transient(msg)
            } else {
                GeneratorError::Failed(msg)
            });
        }
        let mut answer = Answer::default();
        let mut done = false;
        let mut events = eventsource_stream::Eventsource::eventsource(resp.bytes_stream());
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| match e {
                eventsource_stream::EventStreamError::Transport(t) if t.is_timeout() => {
                    GeneratorError::Transient(
                        format!(
                            "{}: no whole answer within {:?}",
                            self.config.model, self.config.timeout
                        )
                        .into(),
                    )
                }
                e => GeneratorError::Transient(context("the model's stream broke", e)),
            })?;
            if event.data.trim() == "[DONE]" {
                done = true;
                break;
            }
            let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
                GeneratorError::Transient(context("the model's stream sent a malformed chunk", e))
            })?;
            if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
                answer.prompt_tokens = usage["prompt_tokens"].as_u64();
                answer.completion_tokens = usage["completion_tokens"].as_u64();
            }
            let Some(choice) = chunk["choices"].get(0) else {
                continue;
            };
            if let Some(piece) = choice["delta"]["content"].as_str() {
                answer.push(piece, started);
            }
            if choice["finish_reason"] == "content_filter" {
                return Err(GeneratorError::Failed(
                    "the model refused to answer (content filter)".into(),
                ));
            }
        }
        if !done {
            return Err(GeneratorError::Transient(
                "the model's stream ended before [DONE]".into(),
            ));
        }
        Ok(answer)
    }
}
