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

/// Panics unless `prompt` carries every field of `brief` an agent is given: objective,
/// audience, product, tone, tone adjectives, palette entries, prohibited terms and the
/// copy agent's length limit.
pub fn assert_prompt_carries_the_brief(prompt: &str, brief: &campaign_shared::domain::Brief) {
    let limit = brief
        .max_length(campaign_shared::domain::Agent::Copy)
        .to_string();
    let g = &brief.brand_guidelines;
    let parts = [
        brief.objective.as_str(),
        &brief.audience,
        &brief.product,
        &brief.tone,
        &limit,
    ]
    .into_iter()
    .chain(g.tone_adjectives.iter().map(String::as_str))
    .chain(g.palette.iter().map(String::as_str))
    .chain(
        brief
            .constraints
            .prohibited_terms
            .iter()
            .map(String::as_str),
    );
    for part in parts {
        assert!(
            prompt.contains(part),
            "the prompt lacks `{part}`:\n{prompt}"
        );
    }
}
