//! Answers a well-behaved model gives each agent of the example brief, for the model fakes
//! of the tests (the bench's simulated model gives the same): valid JSON in each agent's
//! asked shape, within the brief's limits and free of its prohibited terms.

pub use campaign_cli::model_sim::{GOOD_COPY, GOOD_SOCIAL, GOOD_VISUAL, by_agent};

/// The example brief with palette descriptors ("deep navy") beside a known color name:
/// what the model-backed agents are tested with.
pub fn descriptor_brief() -> serde_json::Value {
    let mut b = crate::example_brief();
    b["brandGuidelines"]["palette"] = serde_json::json!(["deep navy", "teal"]);
    b
}
