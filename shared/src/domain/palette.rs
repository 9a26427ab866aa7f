//! Brand palette colors: `#RRGGBB` values, color words from one documented table (README
//! "Palette color words" mirrors it), or descriptors as marketers write them ("deep navy",
//! "warm sunset orange"), which keep their words and stand for the nearest known color.

/// Accepted color words and the hex value each stands for. Words are matched
/// case-insensitively with inner spaces, hyphens and underscores ignored ("navy blue",
/// "Navy-Blue" and "navyblue" are the same word).
pub const COLOR_NAMES: &[(&str, &str)] = &[
    ("black", "#111111"),
    ("white", "#FFFFFF"),
    ("ivory", "#FFFFF0"),
    ("cream", "#FFF8E7"),
    ("beige", "#F5F5DC"),
    ("gray", "#808080"),
    ("grey", "#808080"),
    ("silver", "#C0C0C0"),
    ("charcoal", "#36454F"),
    ("red", "#D32F2F"),
    ("crimson", "#DC143C"),
    ("maroon", "#800000"),
    ("burgundy", "#800020"),
    ("coral", "#FF7F50"),
    ("salmon", "#FA8072"),
    ("orange", "#F57C00"),
    ("amber", "#FFBF00"),
    ("gold", "#FFD700"),
    ("yellow", "#FBC02D"),
    ("mustard", "#E1AD01"),
    ("lime", "#9ACD32"),
    ("green", "#388E3C"),
    ("forestgreen", "#228B22"),
    ("olive", "#808000"),
    ("mint", "#98FF98"),
    ("sage", "#B2AC88"),
    ("teal", "#008080"),
    ("turquoise", "#40E0D0"),
    ("cyan", "#00BCD4"),
    ("skyblue", "#87CEEB"),
    ("blue", "#1976D2"),
    ("navy", "#000080"),
    ("navyblue", "#000080"),
    ("indigo", "#3F51B5"),
    ("purple", "#7B1FA2"),
    ("violet", "#8F00FF"),
    ("lavender", "#E6E6FA"),
    ("magenta", "#FF00FF"),
    ("pink", "#E91E63"),
    ("blush", "#DE5D83"),
    ("brown", "#795548"),
    ("tan", "#D2B48C"),
    ("terracotta", "#E2725B"),
];

/// Longest descriptor accepted (`"warm sunset orange"`), in characters.
pub const MAX_DESCRIPTOR: usize = 40;

/// The neutral used for a descriptor that names no known color.
pub const NEUTRAL_FALLBACK: &str = "#808080";

/// How a palette entry became a hex value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derivation {
    /// `#RRGGBB` as given, or a color word of the table.
    Exact,
    /// A descriptor ("deep navy"): the known color word inside it, with its modifiers
    /// (deep/dark darken, light/pale/soft lighten, muted/dusty soften) applied.
    Nearest { word: &'static str },
    /// A descriptor naming no known color ("glitter"): a neutral stands in.
    Fallback,
}

/// One palette entry as given and as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Color {
    /// Trimmed input; hex values upper-cased.
    pub given: String,
    /// `#RRGGBB`, upper case.
    pub hex: String,
    pub derivation: Derivation,
}

impl Color {
    /// For a descriptor, what the audit records about the color that stands in for it.
    pub fn note(&self) -> Option<String> {
        match self.derivation {
            Derivation::Exact => None,
            Derivation::Nearest { word } => Some(format!(
                "palette descriptor `{}` has no exact color: {} is used (nearest known color: {word})",
                self.given, self.hex
            )),
            Derivation::Fallback => Some(format!(
                "palette descriptor `{}` names no known color: the neutral {} is used",
                self.given, self.hex
            )),
        }
    }
}

fn word_key(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn channels(hex: &str) -> [f64; 3] {
    let h = hex.trim_start_matches('#');
    [0, 2, 4]
        .map(|i| f64::from(u8::from_str_radix(h.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0)))
}

/// `hex` moved `amount` (0–1) of the way towards `to`.
fn mix(hex: &str, to: [f64; 3], amount: f64) -> String {
    let c = channels(hex);
    let m = |i: usize| (c[i] + (to[i] - c[i]) * amount).round().clamp(0.0, 255.0) as u8;
    format!("#{:02X}{:02X}{:02X}", m(0), m(1), m(2))
}

/// The color a descriptor stands for: its longest known color word, shaded by its
/// modifiers; a neutral when it names none.
fn describe(descriptor: &str) -> (String, Derivation) {
    let key = word_key(descriptor);
    let Some((word, hex)) = COLOR_NAMES
        .iter()
        .filter(|(name, _)| key.contains(name))
        .max_by_key(|(name, _)| name.len())
    else {
        return (NEUTRAL_FALLBACK.to_string(), Derivation::Fallback);
    };
    let words: Vec<String> = descriptor
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    let mut out = (*hex).to_string();
    if has(&["deep", "dark", "rich", "midnight"]) {
        out = mix(&out, [0.0; 3], 0.3);
    }
    if has(&["light", "pale", "soft", "pastel"]) {
        out = mix(&out, [255.0; 3], 0.4);
    }
    if has(&["muted", "dusty", "faded", "smoky"]) {
        out = mix(&out, [128.0; 3], 0.35);
    }
    (out, Derivation::Nearest { word })
}

/// Parses a palette entry: `#RRGGBB`, a color word of the table, or a descriptor of up to
/// 40 printable characters ("deep navy", "warm sunset orange"), kept as given and resolved
/// to its nearest known color (or a neutral). The error says what is allowed.
pub fn parse_color(raw: &str) -> Result<Color, String> {
    let t = raw.trim();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let hex = format!("#{}", hex.to_ascii_uppercase());
            return Ok(Color {
                given: hex.clone(),
                hex,
                derivation: Derivation::Exact,
            });
        }
        return Err(format!(
            "`{t}` is not a hex color; allowed: `#RRGGBB` (six hex digits), a color word or a descriptor such as `deep navy`"
        ));
    }
    let key = word_key(t);
    if let Some((_, hex)) = COLOR_NAMES.iter().find(|(name, _)| *name == key) {
        return Ok(Color {
            given: t.to_string(),
            hex: (*hex).to_string(),
            derivation: Derivation::Exact,
        });
    }
    let len = t.chars().count();
    if len == 0 || len > MAX_DESCRIPTOR {
        return Err(format!(
            "a palette entry has {len} characters; allowed: `#RRGGBB`, a color word, or a descriptor of 1–{MAX_DESCRIPTOR} characters"
        ));
    }
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return Err(format!(
            "`{}` contains the control character U+{:04X}; allowed: printable text",
            t.escape_debug(),
            u32::from(c)
        ));
    }
    if !t.chars().any(char::is_alphabetic) {
        return Err(format!(
            "`{t}` is not a color; allowed: `#RRGGBB`, a color word (see the README's table) or a descriptor such as `deep navy`"
        ));
    }
    let (hex, derivation) = describe(t);
    Ok(Color {
        given: t.to_string(),
        hex,
        derivation,
    })
}

/// Resolves a validated palette to distinct hex values, in order.
pub fn resolve(palette: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in palette.iter().filter_map(|c| parse_color(c).ok()) {
        if !out.contains(&c.hex) {
            out.push(c.hex);
        }
    }
    out
}

/// Relative luminance (WCAG) of `#RRGGBB`, used to pick readable text colors.
pub fn luminance(hex: &str) -> f64 {
    let h = hex.trim_start_matches('#');
    let channel = |i: usize| {
        let v = u8::from_str_radix(h.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0) as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_words_resolve_ignoring_case_spaces_and_hyphens() {
        assert_eq!(parse_color("Navy Blue").unwrap().hex, "#000080");
        assert_eq!(parse_color("forest-green").unwrap().hex, "#228B22");
    }

    #[test]
    fn hex_values_are_upper_cased() {
        assert_eq!(parse_color(" #a1b2c3 ").unwrap().given, "#A1B2C3");
    }

    #[test]
    fn resolve_deduplicates_equal_colors() {
        let p = vec![
            "navy".to_string(),
            "#000080".to_string(),
            "teal".to_string(),
        ];
        assert_eq!(resolve(&p), vec!["#000080", "#008080"]);
    }

    #[test]
    fn descriptors_stand_for_their_nearest_known_color_shaded_by_their_modifiers() {
        let navy = parse_color("deep navy").unwrap();
        assert_eq!(navy.given, "deep navy");
        assert_eq!(navy.derivation, Derivation::Nearest { word: "navy" });
        assert!(
            luminance(&navy.hex) < luminance("#000080"),
            "darkened: {}",
            navy.hex
        );
        let orange = parse_color("warm sunset orange").unwrap();
        assert_eq!(orange.derivation, Derivation::Nearest { word: "orange" });
        assert_eq!(orange.hex, "#F57C00");
        let sage = parse_color("Muted Sage").unwrap();
        assert_eq!(sage.derivation, Derivation::Nearest { word: "sage" });
        assert_ne!(sage.hex, "#B2AC88");
        let pale = parse_color("pale sky blue").unwrap();
        assert_eq!(pale.derivation, Derivation::Nearest { word: "skyblue" });
        assert!(luminance(&pale.hex) > luminance("#87CEEB"));
        let glitter = parse_color("glitter").unwrap();
        assert_eq!(
            (glitter.hex.as_str(), glitter.derivation.clone()),
            (NEUTRAL_FALLBACK, Derivation::Fallback)
        );
        assert!(glitter.note().unwrap().contains("names no known color"));
        assert!(parse_color("teal").unwrap().note().is_none());
    }

    #[test]
    fn bad_entries_say_what_is_allowed() {
        for bad in ["#12345", "", "   ", "123", &"x".repeat(41), "navy\u{7}"] {
            let e = parse_color(bad).unwrap_err();
            assert!(e.contains("allowed"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn luminance_orders_black_below_white() {
        assert!(luminance("#000000") < luminance("#FFFFFF"));
    }
}
