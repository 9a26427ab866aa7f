//! `--generator` and `--model`: which engine writes each agent's artifacts.
//!
//! Each value is either for every agent (`openai`, `llama3.1:8b`) or for one
//! (`copy=bedrock`, `copy=amazon.nova-lite-v1:0`); a value for one agent wins over the value
//! for all. Agents not given a generator use the built-in one.

use std::time::Duration;

use campaign_shared::adapters::bedrock::BedrockConfig;
use campaign_shared::adapters::generators::{GeneratorChoice, GeneratorPlan};
use campaign_shared::adapters::openai::OpenAiConfig;
use campaign_shared::domain::Agent;

/// The engines `--generator` names.
pub const KINDS: &str = "builtin, openai, bedrock";

/// How the models are reached, beside their names.
#[derive(Debug, Clone)]
pub struct Reach {
    /// The OpenAI-compatible API, up to `/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Bedrock: ConverseStream (true) or Converse.
    pub stream: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Builtin,
    OpenAi,
    Bedrock,
}

fn kind(s: &str) -> Result<Kind, String> {
    match s {
        "builtin" => Ok(Kind::Builtin),
        "openai" => Ok(Kind::OpenAi),
        "bedrock" => Ok(Kind::Bedrock),
        other => Err(format!(
            "--generator `{other}` is unknown; allowed: {KINDS}, or AGENT=KIND (AGENT: copy, social, visual)"
        )),
    }
}

/// `value` split into its agent (if it names one) and the rest.
fn for_agent(value: &str, flag: &str) -> Result<(Option<Agent>, String), String> {
    match value.split_once('=') {
        Some((agent, rest)) => {
            let agent: Agent = agent
                .trim()
                .parse()
                .map_err(|e| format!("{flag} `{value}`: {e}"))?;
            Ok((Some(agent), rest.trim().to_owned()))
        }
        None => Ok((None, value.trim().to_owned())),
    }
}

/// The plan of `--generator` and `--model` values.
pub fn plan(
    generators: &[String],
    models: &[String],
    reach: &Reach,
) -> Result<GeneratorPlan, String> {
    let mut all_kind = Kind::Builtin;
    let mut kinds = std::collections::BTreeMap::new();
    for g in generators.iter().filter(|g| !g.trim().is_empty()) {
        match for_agent(g, "--generator")? {
            (Some(agent), k) => {
                kinds.insert(agent, kind(&k)?);
            }
            (None, k) => all_kind = kind(&k)?,
        }
    }
    let mut all_model = None;
    let mut agent_models = std::collections::BTreeMap::new();
    for m in models.iter().filter(|m| !m.trim().is_empty()) {
        match for_agent(m, "--model")? {
            (Some(agent), model) => {
                agent_models.insert(agent, model);
            }
            (None, model) => all_model = Some(model),
        }
    }
    let mut plan = GeneratorPlan::new();
    for agent in Agent::ALL {
        let k = kinds.get(&agent).copied().unwrap_or(all_kind);
        let model = agent_models.get(&agent).or(all_model.as_ref()).cloned();
        let needs_model = || {
            format!(
                "the {agent} agent uses {} and needs a model: --model MODEL (every agent) or --model {agent}=MODEL",
                match k {
                    Kind::OpenAi => "openai (e.g. llama3.1:8b)",
                    _ => "bedrock (e.g. amazon.nova-lite-v1:0)",
                }
            )
        };
        let choice = match k {
            Kind::Builtin => {
                if agent_models.contains_key(&agent) {
                    return Err(format!(
                        "--model {agent}=… is set but the {agent} agent uses the built-in generator; add --generator {agent}=openai or {agent}=bedrock"
                    ));
                }
                continue;
            }
            Kind::OpenAi => {
                let model = model.ok_or_else(needs_model)?;
                if !(reach.base_url.starts_with("http://")
                    || reach.base_url.starts_with("https://"))
                {
                    return Err(format!(
                        "--base-url is `{}`; allowed: an http:// or https:// URL up to /v1",
                        reach.base_url
                    ));
                }
                GeneratorChoice::OpenAi(OpenAiConfig {
                    base_url: reach.base_url.clone(),
                    model,
                    api_key: reach.api_key.clone(),
                    timeout: Duration::from_secs(45),
                })
            }
            Kind::Bedrock => {
                let mut c = BedrockConfig::new(model.ok_or_else(needs_model)?);
                c.stream = reach.stream;
                GeneratorChoice::Bedrock(c)
            }
        };
        plan.insert(agent, choice);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach() -> Reach {
        Reach {
            base_url: "http://127.0.0.1:11434/v1".into(),
            api_key: None,
            stream: true,
        }
    }

    fn described(p: &GeneratorPlan) -> Vec<String> {
        p.iter()
            .map(|(a, c)| format!("{a}={}", c.describe()))
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builtin_is_the_default_and_needs_no_model() {
        assert!(plan(&[], &[], &reach()).unwrap().is_empty());
        assert!(
            plan(&strings(&["builtin"]), &strings(&["x"]), &reach())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn one_value_for_all_agents_and_one_per_agent_wins() {
        let p = plan(
            &strings(&["openai", "visual=bedrock", "social=builtin"]),
            &strings(&["llama3.1:8b", "visual=amazon.nova-lite-v1:0"]),
            &reach(),
        )
        .unwrap();
        assert_eq!(
            described(&p),
            [
                "copy=openai:llama3.1:8b at http://127.0.0.1:11434/v1",
                "visual=bedrock:amazon.nova-lite-v1:0"
            ]
        );
    }

    #[test]
    fn bad_values_say_what_is_allowed() {
        let e = plan(&strings(&["gpt"]), &[], &reach()).unwrap_err();
        assert!(e.contains("builtin, openai, bedrock"), "{e}");
        let e = plan(&strings(&["tiktok=openai"]), &[], &reach()).unwrap_err();
        assert!(e.contains("copy, social, visual"), "{e}");
        let e = plan(&strings(&["copy=bedrock"]), &[], &reach()).unwrap_err();
        assert!(
            e.contains("copy agent uses bedrock") && e.contains("--model copy=MODEL"),
            "{e}"
        );
        let e = plan(&[], &strings(&["social=llama3"]), &reach()).unwrap_err();
        assert!(e.contains("built-in generator"), "{e}");
        let mut r = reach();
        r.base_url = "localhost:11434".into();
        let e = plan(&strings(&["openai"]), &strings(&["m"]), &r).unwrap_err();
        assert!(e.contains("--base-url"), "{e}");
    }
}
