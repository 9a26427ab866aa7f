//! The visual poster concept and its SVG preview. Colors come from the brand palette
//! (color words through the documented table, or hex values); without one, from the tone.
//! Text colors are picked for contrast, preferring brand colors and falling back to the
//! neutrals the audit exempts.

use super::audit::NEUTRALS;
use super::inputs::{GenerateError, Inputs, finish};
use super::text::{capitalize, char_len, pick, pick_one};
use crate::domain::artifact::{PaletteEntry, VisualContent};
use crate::domain::{Agent, Brief, palette};

const WIDTH: u32 = 1080;
const HEIGHT: u32 = 1350;

/// A palette for a brief without one, by the mood its tone names.
fn palette_for_tone(tone: &str) -> Vec<String> {
    let t = tone.to_lowercase();
    let hexes: &[&str] = if ["energetic", "bold", "playful", "vibrant", "fun", "exciting"]
        .iter()
        .any(|w| t.contains(w))
    {
        &["#F57C00", "#1976D2", "#FFF8E7"]
    } else if [
        "calm",
        "warm",
        "gentle",
        "friendly",
        "encouraging",
        "natural",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        &["#B2AC88", "#E2725B", "#FFF8E7"]
    } else if ["luxur", "premium", "elegant", "sophisticated"]
        .iter()
        .any(|w| t.contains(w))
    {
        &["#111111", "#FFD700", "#FFFFF0"]
    } else {
        &["#008080", "#FFBF00", "#FFFFF0"]
    };
    hexes.iter().map(|h| (*h).to_string()).collect()
}

/// WCAG contrast ratio of two colors.
fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (palette::luminance(a), palette::luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// The most readable color on `background`: a palette color at AA contrast if one exists,
/// else the better neutral.
fn text_color(background: &str, palette: &[String]) -> String {
    let best = palette
        .iter()
        .filter(|c| c.as_str() != background)
        .max_by(|a, b| contrast(a, background).total_cmp(&contrast(b, background)));
    match best {
        Some(c) if contrast(c, background) >= 4.5 => c.clone(),
        _ => {
            let (white, black) = (NEUTRALS[0], NEUTRALS[2]);
            if contrast(white, background) >= contrast(black, background) {
                white.into()
            } else {
                black.into()
            }
        }
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Greedy word wrap to `width` characters per line.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if char_len(line) + 1 + char_len(word) <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

fn text_block(
    lines: &[String],
    x: u32,
    y: u32,
    size: u32,
    color: &str,
    weight: u32,
    anchor: &str,
) -> String {
    let mut out = format!(
        "<text x=\"{x}\" y=\"{y}\" font-family=\"Inter, Helvetica, Arial, sans-serif\" font-size=\"{size}\" font-weight=\"{weight}\" fill=\"{color}\" text-anchor=\"{anchor}\">"
    );
    for (i, l) in lines.iter().enumerate() {
        let dy = if i == 0 { 0 } else { size * 12 / 10 };
        out.push_str(&format!(
            "<tspan x=\"{x}\" dy=\"{dy}\">{}</tspan>",
            xml_escape(l)
        ));
    }
    out.push_str("</text>");
    out
}

struct Layout {
    name: &'static str,
    description: &'static str,
}

const LAYOUTS: [Layout; 3] = [
    Layout {
        name: "hero",
        description: "Full-bleed hero: imagery fills the poster, the headline is set large in the upper third, the subheadline sits on an accent band along the bottom.",
    },
    Layout {
        name: "split",
        description: "Split: imagery on the left half, headline and subheadline stacked on a solid panel on the right, an accent rule between them.",
    },
    Layout {
        name: "centered",
        description: "Centered typographic poster: the headline in the middle on a bold accent disc, the subheadline beneath, imagery as a soft duotone backdrop.",
    },
];

fn svg(
    layout: &str,
    headline: &str,
    subheadline: &str,
    bg: &str,
    accent: &str,
    text: &str,
    on_accent: &str,
) -> String {
    let mut body = format!("<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"{bg}\"/>");
    match layout {
        "split" => {
            body.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"540\" height=\"{HEIGHT}\" fill=\"{accent}\" opacity=\"0.85\"/>"));
            body.push_str(&format!(
                "<rect x=\"600\" y=\"640\" width=\"420\" height=\"8\" fill=\"{accent}\"/>"
            ));
            body.push_str(&text_block(
                &wrap(headline, 12),
                600,
                360,
                64,
                text,
                800,
                "start",
            ));
            body.push_str(&text_block(
                &wrap(subheadline, 20),
                600,
                720,
                36,
                text,
                400,
                "start",
            ));
        }
        "centered" => {
            body.push_str(&format!(
                "<circle cx=\"540\" cy=\"640\" r=\"400\" fill=\"{accent}\"/>"
            ));
            body.push_str(&text_block(
                &wrap(headline, 16),
                540,
                600,
                72,
                on_accent,
                800,
                "middle",
            ));
            body.push_str(&text_block(
                &wrap(subheadline, 30),
                540,
                1160,
                36,
                text,
                400,
                "middle",
            ));
        }
        _ => {
            body.push_str(&format!(
                "<rect x=\"0\" y=\"1130\" width=\"{WIDTH}\" height=\"220\" fill=\"{accent}\"/>"
            ));
            body.push_str(&text_block(
                &wrap(headline, 18),
                80,
                260,
                88,
                text,
                800,
                "start",
            ));
            body.push_str(&text_block(
                &wrap(subheadline, 40),
                80,
                1230,
                36,
                on_accent,
                400,
                "start",
            ));
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\">{body}</svg>",
        xml_escape(headline)
    )
}

/// The concept; with `words` (a model's), its headline, subheadline and notes replace the
/// built-in ones and the preview draws them.
pub(crate) fn concept(
    i: &Inputs,
    s: u64,
    brief: &Brief,
    words: Option<&crate::agents::model::VisualText>,
) -> Result<VisualContent, GenerateError> {
    let p = &i.prohibited;
    let max = brief.max_length(Agent::Visual);
    let brand = palette::resolve(&brief.brand_guidelines.palette);
    let colors = if brand.is_empty() {
        palette_for_tone(&i.tone)
    } else {
        brand.clone()
    };
    let bg = colors[0].clone();
    let accent = colors.get(1).cloned().unwrap_or_else(|| bg.clone());
    let text = text_color(&bg, &colors);
    let on_accent = text_color(&accent, &colors);
    let layout = pick(&LAYOUTS, s, 30);
    let headline = pick_one!(s, 31;
        capitalize(&i.product_short),
        format!("Meet {}", i.product_short),
        match i.adjectives.first() {
            Some(a) => format!("{} and ready", capitalize(a)),
            None => capitalize(&i.product_short),
        },
    );
    let headline = finish(&headline, (max / 2).max(10), p);
    let manner = i.manner();
    let subheadline = pick_one!(s, 32;
        format!("Made for {}", i.audience_short),
        format!("{} — for {}", capitalize(&manner), i.audience_short),
    );
    let subheadline = finish(&subheadline, max.saturating_sub(char_len(&headline)), p);
    if headline.is_empty() || subheadline.is_empty() {
        return Err(GenerateError::NothingLeft(
            "the prohibited terms leave no poster text".into(),
        ));
    }
    let imagery = finish(
        &format!(
            "{} in a real moment with {}: natural light, candid framing, a {} mood; the product clearly visible and nobody's face used without consent.",
            capitalize(&i.audience_short),
            i.product_short,
            manner
        ),
        400,
        p,
    );
    let typography = if manner.contains("elegant")
        || manner.contains("premium")
        || manner.contains("luxur")
    {
        "A high-contrast serif for the headline, a light sans-serif for the subheadline; generous letter spacing."
    } else {
        "A geometric sans-serif in extra-bold for the headline, the same family in regular for the subheadline; tight leading, left-aligned where the layout allows."
    };
    let mut roles = vec![
        PaletteEntry {
            hex: bg.clone(),
            role: "background".into(),
        },
        PaletteEntry {
            hex: accent.clone(),
            role: "accent".into(),
        },
        PaletteEntry {
            hex: text.clone(),
            role: "text".into(),
        },
    ];
    for extra in colors.iter().skip(2).filter(|c| **c != text) {
        roles.push(PaletteEntry {
            hex: extra.clone(),
            role: "support".into(),
        });
    }
    roles.dedup_by(|a, b| a.hex == b.hex && a.role == b.role);
    // Even the fixed descriptions face the brief's prohibited terms.
    let layout_text = finish(layout.description, 400, p);
    let typography = finish(typography, 400, p);
    let (headline, subheadline, layout_text, imagery, typography) = match words {
        Some(w) => (
            w.headline.trim().to_string(),
            w.subheadline.trim().to_string(),
            w.layout.trim().to_string(),
            w.imagery.trim().to_string(),
            w.typography.trim().to_string(),
        ),
        None => (headline, subheadline, layout_text, imagery, typography),
    };
    if layout_text.is_empty() || typography.is_empty() {
        return Err(GenerateError::NothingLeft(
            "the prohibited terms leave no layout or typography notes".into(),
        ));
    }
    Ok(VisualContent {
        svg: svg(
            layout.name,
            &headline,
            &subheadline,
            &bg,
            &accent,
            &text,
            &on_accent,
        ),
        headline,
        subheadline,
        layout: layout_text,
        palette: roles,
        imagery: if imagery.is_empty() {
            finish("Natural light, candid framing.", 100, p)
        } else {
            imagery
        },
        typography,
    })
}
