//! The OpenAI-compatible chat completions generator (`POST {base}/chat/completions`,
//! streamed as server-sent events): Ollama, vLLM, LM Studio and hosted compatible APIs.
//! Prompts, validation and the one repair are `agents::model`'s, shared by every provider;
//! this module only moves messages and maps the service's failures: throttling, 5xx, a
//! timeout or a cut stream → `Transient` (retried with backoff by the flow); a refusal
//! (content filter), another 4xx or an answer still breaking the rules after its repair →
//! `Failed` (`AgentFailed`).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::agents::model::{self, Message};
use crate::domain::{Agent, Brief, ModelUse, RunId};
use crate::observe;
use crate::ports::{Generated, Generator, GeneratorError};

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

/// [`Generator`] over an OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiGenerator {
    http: reqwest::Client,
    config: OpenAiConfig,
}

/// One streamed answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    /// Time to the first content token.
    pub first_token: Option<Duration>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

impl OpenAiGenerator {
    pub fn new(config: OpenAiConfig) -> Result<Self, GeneratorError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| GeneratorError::Failed(format!("HTTP client: {e}")))?;
        Ok(OpenAiGenerator { http, config })
    }

    /// Sends the conversation and reads the streamed answer.
    pub async fn complete(&self, messages: &[Message]) -> Result<Answer, GeneratorError> {
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
        let resp = req
            .send()
            .await
            .map_err(|e| GeneratorError::Transient(format!("{url}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let detail = resp.text().await.unwrap_or_default();
            let detail: String = detail.chars().take(300).collect();
            let msg = format!("the model server answered {status}: {detail}");
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
            let event = event
                .map_err(|e| GeneratorError::Transient(format!("the model's stream broke: {e}")))?;
            if event.data.trim() == "[DONE]" {
                done = true;
                break;
            }
            let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
                GeneratorError::Transient(format!("the model's stream sent a malformed chunk: {e}"))
            })?;
            if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
                answer.prompt_tokens = usage["prompt_tokens"].as_u64();
                answer.completion_tokens = usage["completion_tokens"].as_u64();
            }
            let Some(choice) = chunk["choices"].get(0) else {
                continue;
            };
            if let Some(piece) = choice["delta"]["content"].as_str() {
                if !piece.is_empty() && answer.first_token.is_none() {
                    answer.first_token = Some(started.elapsed());
                }
                answer.text.push_str(piece);
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

#[async_trait]
impl Generator for OpenAiGenerator {
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
            model: self.config.model.clone(),
            prompt_tokens: None,
            completion_tokens: None,
            first_token_ms: None,
            latency_ms: 0,
            repaired: false,
        };
        let add = |total: Option<u64>, more: Option<u64>| match (total, more) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        loop {
            let answer = self.complete(&messages).await?;
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
                model = %self.config.model,
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
                    return Err(GeneratorError::Failed(format!(
                        "the model's answer still breaks the rules after one repair: {}",
                        violations.join("; ")
                    )));
                }
            }
        }
    }
}
