//! Answers a well-behaved model gives each agent, for the model fakes of the tests: valid
//! JSON in each agent's asked shape, within the example brief's limits and free of its
//! prohibited terms.

/// The copy agent's answer.
pub const GOOD_COPY: &str = r#"{"headline": "Ride Aurora this spring", "body": "Aurora makes the commute lighter: book a test ride and feel the difference on your own streets.", "callToAction": "Book a test ride"}"#;

/// The social agent's answer: one post per network, in order.
pub const GOOD_SOCIAL: &str = r##"{"posts": [
    {"network": "x", "text": "Aurora is here. Book a test ride #AuroraEBike", "hashtags": ["#AuroraEBike"]},
    {"network": "linkedin", "text": "Meet Aurora, built for your commute. #AuroraEBike", "hashtags": ["#AuroraEBike"]},
    {"network": "instagram", "text": "Spring rides start here #AuroraEBike #Spring", "hashtags": ["#AuroraEBike", "#Spring"]}]}"##;

/// The visual agent's answer.
pub const GOOD_VISUAL: &str = r#"{"headline": "Ride into spring", "subheadline": "Aurora e-bike", "layout": "Centered headline over a duotone street scene.", "imagery": "A commuter on an Aurora at dawn.", "typography": "Bold geometric sans-serif."}"#;

/// The good answer for whichever agent `ask` (the user prompt) comes from.
pub fn by_agent(ask: &str) -> &'static str {
    if ask.contains("long-form campaign copy") {
        GOOD_COPY
    } else if ask.contains("social post") {
        GOOD_SOCIAL
    } else {
        GOOD_VISUAL
    }
}

/// The example brief with palette descriptors ("deep navy") beside a known color name:
/// what the model-backed agents are tested with.
pub fn descriptor_brief() -> serde_json::Value {
    let mut b = crate::example_brief();
    b["brandGuidelines"]["palette"] = serde_json::json!(["deep navy", "teal"]);
    b
}
