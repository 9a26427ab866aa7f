//! Model-backed generation, the part every provider shares: the prompt built from the
//! normalized brief (the same context for every agent), the structured answer each agent
//! asks for, and its validation — so a model's answer meets the same rules as the built-in
//! generators' (length limits, prohibited terms, personal data, placeholders) before it
//! becomes an artifact. One repair is asked for with the violations; the providers
//! (`adapters::openai`, later Bedrock) only move messages.

use serde::Deserialize;

use crate::agents::detect;
use crate::agents::text::char_len;
use crate::domain::artifact::{CopyContent, SocialContent, SocialPost};
use crate::domain::{Agent, Brief, Content, RunId, palette};

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// The networks of the social agent, in order.
pub const NETWORKS: [&str; 3] = ["x", "linkedin", "instagram"];

/// The brief as every agent sees it.
fn context(brief: &Brief) -> String {
    let mut c = format!(
        "Campaign brief\n- Objective: {}\n- Audience: {}\n- Product: {}\n- Tone: {}\n",
        brief.objective, brief.audience, brief.product, brief.tone
    );
    let g = &brief.brand_guidelines;
    if !g.tone_adjectives.is_empty() {
        c.push_str(&format!(
            "- Brand tone adjectives: {}\n",
            g.tone_adjectives.join(", ")
        ));
    }
    if !g.palette.is_empty() {
        let colors: Vec<String> = g
            .palette
            .iter()
            .map(|p| match palette::parse_color(p) {
                Ok(c) if c.given != c.hex => format!("{} ({})", c.given, c.hex),
                _ => p.clone(),
            })
            .collect();
        c.push_str(&format!("- Brand palette: {}\n", colors.join(", ")));
    }
    let terms = &brief.constraints.prohibited_terms;
    if !terms.is_empty() {
        c.push_str(&format!(
            "- Never use these terms, in any spelling or form: {}\n",
            terms.join(", ")
        ));
    }
    c
}

/// What the agent must answer: its task, its JSON shape and its length limit.
fn task(agent: Agent, brief: &Brief) -> String {
    let max = brief.max_length(agent);
    match agent {
        Agent::Copy => format!(
            "Write the long-form campaign copy. Answer with one JSON object and nothing else: \
             {{\"headline\": string, \"body\": string, \"callToAction\": string}}. Headline, body \
             and call to action together at most {max} characters."
        ),
        Agent::Social => format!(
            "Write one short social post for each network: {}. Answer with one JSON object and \
             nothing else: {{\"posts\": [{{\"network\": string, \"text\": string, \"hashtags\": \
             [string]}}]}}. Each post's text includes its hashtags (each starting with #) and is \
             at most {max} characters.",
            NETWORKS.join(", ")
        ),
        Agent::Visual => format!(
            "Describe a poster concept. Answer with one JSON object and nothing else: \
             {{\"headline\": string, \"subheadline\": string, \"layout\": string, \"imagery\": \
             string, \"typography\": string}}. Headline and subheadline together at most {max} \
             characters; layout, imagery and typography at most 400 characters each. Use the \
             brand palette."
        ),
    }
}

/// The conversation asking `agent` for its content.
pub fn messages(agent: Agent, brief: &Brief) -> Vec<Message> {
    vec![
        Message {
            role: Role::System,
            content: "You are a marketing copywriter for a brand. You follow the brief and its \
                      rules exactly, never invent facts, prices, guarantees or personal data, \
                      and answer with JSON only."
                .into(),
        },
        Message {
            role: Role::User,
            content: format!("{}\n{}", context(brief), task(agent, brief)),
        },
    ]
}

/// Appends the one repair: the model's answer and what it broke.
pub fn repair(messages: &mut Vec<Message>, answer: &str, violations: &[String]) {
    messages.push(Message {
        role: Role::Assistant,
        content: answer.into(),
    });
    messages.push(Message {
        role: Role::User,
        content: format!(
            "Your answer breaks these rules:\n- {}\nAnswer again with the corrected JSON object only.",
            violations.join("\n- ")
        ),
    });
}

/// The JSON object inside an answer (models wrap it in prose or code fences).
fn json_object(answer: &str) -> Option<&str> {
    let start = answer.find('{')?;
    let end = answer.rfind('}')?;
    (end > start).then(|| &answer[start..=end])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CopyAnswer {
    headline: String,
    body: String,
    call_to_action: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SocialAnswer {
    posts: Vec<PostAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostAnswer {
    network: String,
    text: String,
    #[serde(default)]
    hashtags: Vec<String>,
}

/// The text of a model's poster concept; the palette and the SVG preview are drawn from
/// it by the visual agent's own code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisualText {
    pub headline: String,
    pub subheadline: String,
    pub layout: String,
    pub imagery: String,
    pub typography: String,
}

/// What the rules say of one text field.
fn check_text(field: &str, text: &str, brief: &Brief, out: &mut Vec<String>) {
    if text.trim().is_empty() {
        out.push(format!("`{field}` is empty"));
        return;
    }
    if let Some(c) = text
        .chars()
        .find(|c| crate::domain::brief::is_forbidden_char(*c))
    {
        out.push(format!(
            "`{field}` contains the control character U+{:04X}; write plain text",
            c as u32
        ));
    }
    for hit in detect::error_hits(text, &brief.constraints.prohibited_terms) {
        let found: String = text
            .chars()
            .skip(hit.start)
            .take(hit.end - hit.start)
            .collect();
        out.push(format!(
            "`{field}` contains `{found}`: prohibited terms, personal data and placeholders are not allowed"
        ));
    }
}

/// The model's answer as the agent's content, or every rule it breaks.
pub fn parse(
    agent: Agent,
    brief: &Brief,
    run_id: RunId,
    answer: &str,
) -> Result<Content, Vec<String>> {
    let Some(json) = json_object(answer) else {
        return Err(vec!["the answer is not a JSON object".into()]);
    };
    let bad_shape =
        |e: serde_json::Error| vec![format!("the JSON does not have the asked shape: {e}")];
    let max = brief.max_length(agent);
    let mut v = Vec::new();
    let content = match agent {
        Agent::Copy => {
            let a: CopyAnswer = serde_json::from_str(json).map_err(bad_shape)?;
            check_text("headline", &a.headline, brief, &mut v);
            check_text("body", &a.body, brief, &mut v);
            check_text("callToAction", &a.call_to_action, brief, &mut v);
            let len = char_len(&a.headline) + char_len(&a.body) + char_len(&a.call_to_action);
            if len > max {
                v.push(format!("the copy has {len} characters; at most {max}"));
            }
            Content::Copy(CopyContent {
                headline: a.headline.trim().into(),
                body: a.body.trim().into(),
                call_to_action: a.call_to_action.trim().into(),
            })
        }
        Agent::Social => {
            let a: SocialAnswer = serde_json::from_str(json).map_err(bad_shape)?;
            let networks: Vec<&str> = a.posts.iter().map(|p| p.network.as_str()).collect();
            if networks != NETWORKS {
                v.push(format!(
                    "the posts are for {networks:?}; one each for {NETWORKS:?}, in that order"
                ));
            }
            for (i, p) in a.posts.iter().enumerate() {
                check_text(&format!("posts[{i}].text"), &p.text, brief, &mut v);
                let len = char_len(&p.text);
                if len > max {
                    v.push(format!("posts[{i}] has {len} characters; at most {max}"));
                }
                if let Some(h) = p
                    .hashtags
                    .iter()
                    .find(|h| !h.starts_with('#') || h.contains(' '))
                {
                    v.push(format!("posts[{i}] hashtag `{h}` is not a #hashtag"));
                }
            }
            Content::Social(SocialContent {
                posts: a
                    .posts
                    .into_iter()
                    .map(|p| SocialPost {
                        network: p.network,
                        text: p.text.trim().into(),
                        hashtags: p.hashtags,
                    })
                    .collect(),
            })
        }
        Agent::Visual => {
            let a: VisualText = serde_json::from_str(json).map_err(bad_shape)?;
            for (field, text) in [
                ("headline", &a.headline),
                ("subheadline", &a.subheadline),
                ("layout", &a.layout),
                ("imagery", &a.imagery),
                ("typography", &a.typography),
            ] {
                check_text(field, text, brief, &mut v);
            }
            let len = char_len(&a.headline) + char_len(&a.subheadline);
            if len > max {
                v.push(format!(
                    "headline and subheadline have {len} characters; at most {max}"
                ));
            }
            for (field, text) in [
                ("layout", &a.layout),
                ("imagery", &a.imagery),
                ("typography", &a.typography),
            ] {
                if char_len(text) > 400 {
                    v.push(format!(
                        "`{field}` has {} characters; at most 400",
                        char_len(text)
                    ));
                }
            }
            if !v.is_empty() {
                return Err(v);
            }
            let concept = crate::agents::visual_from_text(brief, run_id, &a)
                .map_err(|e| vec![e.to_string()])?;
            Content::Visual(concept)
        }
    };
    if v.is_empty() { Ok(content) } else { Err(v) }
}
