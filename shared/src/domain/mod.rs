//! The domain: pure types and rules, no I/O and no AWS types.

pub mod agent;
pub mod artifact;
pub mod brand;
pub mod brief;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod lifecycle;
pub mod mode;
pub mod palette;
pub mod rfc3339;
pub mod run;
pub mod tags;
pub mod transition;

pub use agent::Agent;
pub use artifact::{Artifact, AuditReport, Content, Finding, ModelUse, Severity, Span, Verdict};
pub use brand::{BrandInput, BrandKit};
pub use brief::{Brief, BriefError, ExecutionMode, Violation};
pub use envelope::{Envelope, Outcome};
pub use event::{Event, EventType, Scope};
pub use ids::{ArtifactId, IdError, RunId};
pub use lifecycle::{Status, Subject};
pub use mode::{AgentSample, ModeDecision, ModePolicy};
pub use run::{AgentError, AgentState, Run, RunSummary, Timings};
pub use transition::{Change, Snapshot};
