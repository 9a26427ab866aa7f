//! The built-in generators: deterministic for a given brief and run id, no network.
//! Text is composed from the brief's objective, audience, product, tone and tone
//! adjectives through several template variants, cleaned with the audit's own detectors
//! (so the brief's own words cannot smuggle in a prohibited term, personal data or a
//! placeholder) and fitted to the agent's `maxLength`.

use super::detect;
use super::inputs::{GenerateError, Inputs, finish};
use super::text::{bare, capitalize, char_len, decapitalize, pick_one, sanitize, seed};
use super::visual;
use crate::domain::artifact::{CopyContent, SocialContent, SocialPost};
use crate::domain::{Agent, Brief, Content, RunId};
use std::rc::Rc;

/// Generates one agent's content.
pub fn generate(agent: Agent, brief: &Brief, run_id: RunId) -> Result<Content, GenerateError> {
    let (cleaned, s) = inputs_and_seed(brief, run_id, agent)?;
    let inputs = &cleaned.inputs;
    let content = match agent {
        Agent::Copy => Content::Copy(copy(inputs, s, brief.max_length(Agent::Copy))?),
        Agent::Social => Content::Social(social(inputs, s, brief.max_length(Agent::Social))?),
        Agent::Visual => Content::Visual(visual::concept(inputs, s, brief, None)?),
    };
    Ok(content)
}

/// A model's poster text as the visual concept: the palette, layout and SVG preview are
/// drawn by the built-in code around the model's words.
pub fn visual_from_text(
    brief: &Brief,
    run_id: RunId,
    text: &crate::agents::model::VisualText,
) -> Result<crate::domain::artifact::VisualContent, GenerateError> {
    let (cleaned, s) = inputs_and_seed(brief, run_id, Agent::Visual)?;
    visual::concept(&cleaned.inputs, s, brief, Some(text))
}

/// Briefs' cleaned words and JSON text recently computed, by brief (per thread): a run's
/// agents share one brief, and cleaning it was a fifth of a built-in generator's work;
/// writing its JSON for the seed, 2% of a run's instructions (a brief is hashed and
/// compared in a tenth of that).
const INPUTS_CACHE: usize = 64;

struct Cleaned {
    inputs: Inputs,
    json: String,
}

thread_local! {
    static INPUTS: std::cell::RefCell<hashlink::LruCache<Brief, Rc<Cleaned>>> =
        std::cell::RefCell::new(hashlink::LruCache::new(INPUTS_CACHE));
}

/// The brief's cleaned words (and JSON text), and the agent's seed from that text.
fn inputs_and_seed(
    brief: &Brief,
    run_id: RunId,
    agent: Agent,
) -> Result<(Rc<Cleaned>, u64), GenerateError> {
    let cleaned = match INPUTS.with(|c| c.borrow_mut().get(brief).cloned()) {
        Some(hit) => hit,
        None => {
            let json = serde_json::to_string(brief).unwrap_or_default();
            let inputs = Inputs::from(brief)?;
            let cleaned = Rc::new(Cleaned { inputs, json });
            INPUTS.with(|c| c.borrow_mut().insert(brief.clone(), cleaned.clone()));
            cleaned
        }
    };
    let s = seed(run_id, &cleaned.json, agent.as_str());
    Ok((cleaned, s))
}

/// The call to action, from what the objective asks for.
fn call_to_action(i: &Inputs, s: u64) -> String {
    let o = i.objective.to_lowercase();
    if o.contains("test ride") || o.contains("test-ride") || o.contains("book") {
        pick_one!(s, 7;
            format!("Book your {} test ride today", i.product_short),
            "Book a test ride near you",
        )
    } else if o.contains("sign")
        || o.contains("subscri")
        || o.contains("newsletter")
        || o.contains("register")
    {
        pick_one!(s, 7;
            "Sign up today",
            format!("Join the {} list now", i.product_short),
        )
    } else if o.contains("download") || o.contains("install") || o.contains("app") {
        pick_one!(s, 7;
            format!("Download {} now", i.product_short),
            "Get the app today",
        )
    } else if o.contains("sale")
        || o.contains("sell")
        || o.contains("buy")
        || o.contains("order")
        || o.contains("revenue")
    {
        pick_one!(s, 7;
            format!("Shop {} now", i.product_short),
            format!("Order {} today", i.product_short),
        )
    } else if o.contains("visit") || o.contains("store") || o.contains("footfall") {
        pick_one!(s, 7;
            "Visit us this week",
            format!("Come and see {} in person", i.product_short),
        )
    } else {
        pick_one!(s, 7;
            format!("Discover {}", i.product_short),
            format!("See what {} can do for you", i.product_short),
        )
    }
}

fn copy(i: &Inputs, s: u64, max: usize) -> Result<CopyContent, GenerateError> {
    let p = &i.prohibited;
    let headline = pick_one!(s, 1;
        format!(
            "{}, made for {}",
            capitalize(&i.product_short),
            i.audience_short
        ),
        format!("Meet {}", i.product_short),
        format!("Say hello to {}", i.product_short),
        match i.adjectives.first() {
            Some(a) => format!("{} by design: {}", capitalize(a), i.product_short),
            None => format!("{}: the next step", capitalize(&i.product_short)),
        },
    );
    let headline = finish(&headline, 90.min(max / 3), p);
    let cta = finish(&call_to_action(i, s), 60.min(max / 4), p);
    let objective = decapitalize(&i.objective);
    let manner = i.manner();
    let mut sentences: Vec<String> = vec![pick_one!(s, 2;
        format!("{} is here for {}.", capitalize(&i.product), i.audience),
        format!("We made {} with {} in mind.", i.product, i.audience),
        format!(
            "For {}, {} changes what an ordinary day can hold.",
            i.audience, i.product
        ),
    )];
    if !objective.is_empty() {
        sentences.push(pick_one!(s, 3;
            format!("This season we set out to {objective}, and we would love you to be part of it."),
            format!("Our aim is simple: {objective}."),
            format!("Here is what we are working towards together: {objective}."),
        ));
    }
    sentences.push(pick_one!(s, 4;
        format!(
            "{} — that is how {} shows up, every single day.",
            capitalize(&manner),
            i.product_short
        ),
        format!("Everything about it feels {manner}."),
        format!("It is {manner} in all the right ways, and easy to make your own."),
    ));
    sentences.push(pick_one!(s, 5;
        "It fits the way you already live, and makes the everyday feel a little lighter.",
        "Small details add up: it is thoughtfully made, simple to start with and built to last.",
        "No steep learning curve, no fuss — just something that works the way you hoped it would.",
    ));
    sentences.push(format!(
        "Take the next step and see what {} can do for you.",
        i.product_short
    ));
    let budget = max.saturating_sub(char_len(&headline) + char_len(&cta));
    // Whole sentences while they fit; then the body is cut at a word boundary.
    let mut body = String::new();
    for sentence in sentences {
        let sentence = sanitize(&sentence, p);
        let candidate = if body.is_empty() {
            sentence.clone()
        } else {
            format!("{body} {sentence}")
        };
        if char_len(&candidate) > budget && !body.is_empty() {
            break;
        }
        body = candidate;
    }
    let body = finish(&body, budget, p);
    if headline.is_empty() || body.is_empty() || cta.is_empty() {
        return Err(GenerateError::NothingLeft(
            "the copy's prohibited terms leave no headline, body or call to action".into(),
        ));
    }
    Ok(CopyContent {
        headline,
        body,
        call_to_action: cta,
    })
}

/// `#CamelCase` of the words of `s` (letters and digits only).
fn hashtag(s: &str) -> Option<String> {
    let tag: String = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(3)
        .map(capitalize)
        .collect();
    (!tag.is_empty() && char_len(&tag) <= 30).then(|| format!("#{tag}"))
}

/// Hashtags from the product, the adjectives and the objective, each checked alone.
fn hashtags(i: &Inputs) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut candidates = vec![i.product_short.clone()];
    candidates.extend(i.adjectives.iter().take(2).cloned());
    let objective_words: Vec<&str> = i.objective.split(' ').filter(|w| char_len(w) > 4).collect();
    if let Some(last) = objective_words.windows(2).last() {
        candidates.push(last.join(" "));
    }
    candidates.push(i.tone.split(' ').next().unwrap_or_default().to_string());
    let hashtags: Vec<String> = candidates.iter().filter_map(|c| hashtag(c)).collect();
    let clean = detect::clean_each(&hashtags, &i.prohibited);
    for (t, ok) in hashtags.into_iter().zip(clean) {
        if ok && !tags.iter().any(|x| x.eq_ignore_ascii_case(&t)) {
            tags.push(t);
        }
    }
    tags
}

fn social(i: &Inputs, s: u64, max: usize) -> Result<SocialContent, GenerateError> {
    let p = &i.prohibited;
    let tags = hashtags(i);
    let objective = decapitalize(&i.objective);
    let manner = i.manner();
    // Each network's text, picked with slot 20, 21 and 22.
    let networks: [(&str, usize, String); 3] = [
        (
            "x",
            280,
            pick_one!(s, 20;
                format!(
                    "{} is here for {}. {}",
                    capitalize(&i.product_short),
                    i.audience_short,
                    capitalize(&call_to_action(i, s))
                ),
                format!(
                    "New: {}. {} and made for {}.",
                    i.product_short,
                    capitalize(&manner),
                    i.audience_short
                ),
            ),
        ),
        (
            "linkedin",
            700,
            pick_one!(s, 21;
                format!(
                    "We built {} for {}. Our goal this season: {}. {} is how we want it to feel.",
                    i.product,
                    i.audience,
                    objective,
                    capitalize(&manner)
                ),
                format!(
                    "Introducing {}: {} from the first day, designed around {}. {}.",
                    i.product,
                    manner,
                    i.audience,
                    capitalize(&bare(&call_to_action(i, s)))
                ),
            ),
        ),
        (
            "instagram",
            2200,
            pick_one!(s, 22;
                format!(
                    "{} days start with {} ✨ Made for {}.",
                    capitalize(i.adjectives.first().map(String::as_str).unwrap_or("Better")),
                    i.product_short,
                    i.audience_short
                ),
                format!("This is {} — {}, and ready when you are.", i.product_short, manner),
            ),
        ),
    ];
    let mut posts = Vec::new();
    for (network, cap, text) in &networks {
        let limit = max.min(*cap);
        let text = sanitize(text, p);
        // Hashtags first to go when space is short, but keep at least one if it fits.
        let mut used: Vec<String> = tags.clone();
        let compose = |text: &str, used: &[String]| {
            if used.is_empty() {
                text.to_string()
            } else {
                format!("{text} {}", used.join(" "))
            }
        };
        while used.len() > 1 && char_len(&compose(&text, &used)) > limit {
            used.pop();
        }
        let tag_len = if used.is_empty() {
            0
        } else {
            char_len(&used.join(" ")) + 1
        };
        if tag_len >= limit / 2 {
            used.clear();
        }
        let tag_len = if used.is_empty() {
            0
        } else {
            char_len(&used.join(" ")) + 1
        };
        // `text` is sanitized already: if it fits, `finish` would only scan it again and
        // hand it back unchanged.
        let body = if char_len(&text) <= limit - tag_len {
            text.clone()
        } else {
            finish(&text, limit - tag_len, p)
        };
        if body.is_empty() {
            continue;
        }
        let full = compose(&body, &used);
        if char_len(&full) <= limit && detect::error_hits(&full, p).is_empty() {
            posts.push(SocialPost {
                network: (*network).into(),
                text: full,
                hashtags: used,
            });
        }
    }
    if posts.len() < 3 {
        return Err(GenerateError::NothingLeft(
            "the prohibited terms leave fewer than three posts".into(),
        ));
    }
    Ok(SocialContent { posts })
}
