//! The built-in generator and the rule-based auditor behind the Generator and Auditor
//! ports — the defaults in both deployments until a model-backed agent is configured.

use async_trait::async_trait;

use crate::agents;
use crate::domain::{Agent, AuditReport, Brief, Content, RunId};
use crate::ports::{AuditUnavailable, Auditor, Generated, Generator, GeneratorError};

/// The deterministic built-in generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinGenerator;

#[async_trait]
impl Generator for BuiltinGenerator {
    async fn generate(
        &self,
        agent: Agent,
        brief: &Brief,
        run_id: RunId,
    ) -> Result<Generated, GeneratorError> {
        agents::generate(agent, brief, run_id)
            .map(Generated::from)
            .map_err(|e| GeneratorError::Failed(Box::new(e)))
    }
}

/// The rule-based audit.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleAuditor;

#[async_trait]
impl Auditor for RuleAuditor {
    async fn audit(
        &self,
        content: &Content,
        brief: &Brief,
    ) -> Result<AuditReport, AuditUnavailable> {
        Ok(agents::audit(content, brief))
    }
}
