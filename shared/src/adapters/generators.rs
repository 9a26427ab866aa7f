//! Who writes each agent's artifacts, chosen by configuration per agent: the built-in
//! deterministic generators (the default everywhere), a model behind an OpenAI-compatible
//! API (feature `openai`) or an Amazon Bedrock model (feature `bedrock`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::adapters::builtin::BuiltinGenerator;
use crate::adapters::faults::{AgentFault, FaultyGenerator};
use crate::domain::{Agent, Brief, RunId};
use crate::ports::{Generated, Generator, GeneratorError};

/// One agent's engine.
#[derive(Debug, Clone, Default)]
pub enum GeneratorChoice {
    /// The deterministic built-in generators (no network, no cost).
    #[default]
    Builtin,
    /// A model behind an OpenAI-compatible chat completions endpoint.
    #[cfg(feature = "openai")]
    OpenAi(crate::adapters::openai::OpenAiConfig),
    /// A model on Amazon Bedrock (region and credentials from the environment).
    #[cfg(feature = "bedrock")]
    Bedrock(crate::adapters::bedrock::BedrockConfig),
}

impl GeneratorChoice {
    /// `builtin`, or the provider and its model, for logs and summaries.
    pub fn describe(&self) -> String {
        match self {
            GeneratorChoice::Builtin => "builtin".into(),
            #[cfg(feature = "openai")]
            GeneratorChoice::OpenAi(c) => format!("openai:{} at {}", c.model, c.base_url),
            #[cfg(feature = "bedrock")]
            GeneratorChoice::Bedrock(c) => format!("bedrock:{}", c.model_id),
        }
    }
}

/// Each agent's choice; an agent not named uses the built-in generator.
pub type GeneratorPlan = BTreeMap<Agent, GeneratorChoice>;

/// Sends each agent to its own generator.
pub struct ByAgent {
    generators: BTreeMap<Agent, Arc<dyn Generator>>,
}

impl std::fmt::Debug for ByAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByAgent")
            .field("agents", &self.generators.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[async_trait]
impl Generator for ByAgent {
    async fn generate(
        &self,
        agent: Agent,
        brief: &Brief,
        run_id: RunId,
    ) -> Result<Generated, GeneratorError> {
        match self.generators.get(&agent) {
            Some(g) => g.generate(agent, brief, run_id).await,
            None => BuiltinGenerator.generate(agent, brief, run_id).await,
        }
    }
}

/// The generator of a plan, with the injected faults in front of it. An AWS SDK
/// configuration is loaded from the environment only when an agent uses Bedrock.
pub async fn build(
    plan: &GeneratorPlan,
    faults: &BTreeMap<Agent, AgentFault>,
) -> Result<Arc<dyn Generator>, GeneratorError> {
    #[cfg(feature = "bedrock")]
    let sdk = tokio::sync::OnceCell::new();
    let mut generators: BTreeMap<Agent, Arc<dyn Generator>> = BTreeMap::new();
    for (agent, choice) in plan {
        let g: Option<Arc<dyn Generator>> = match choice {
            GeneratorChoice::Builtin => None,
            #[cfg(feature = "openai")]
            GeneratorChoice::OpenAi(c) => Some(Arc::new(
                crate::adapters::openai::OpenAiModel::generator(c.clone())?,
            )),
            #[cfg(feature = "bedrock")]
            GeneratorChoice::Bedrock(c) => {
                let sdk = sdk
                    .get_or_init(|| {
                        aws_config::defaults(aws_config::BehaviorVersion::latest()).load()
                    })
                    .await;
                Some(Arc::new(crate::adapters::bedrock::BedrockModel::generator(
                    sdk,
                    c.clone(),
                )))
            }
        };
        if let Some(g) = g {
            tracing::info!(agent = agent.as_str(), generator = %choice.describe(), "model-backed agent");
            generators.insert(*agent, g);
        }
    }
    let routed = ByAgent { generators };
    Ok(if faults.is_empty() {
        Arc::new(routed)
    } else {
        Arc::new(FaultyGenerator::new(routed, faults.clone()))
    })
}
