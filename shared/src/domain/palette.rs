//! Brand palette colors: `#RRGGBB` values or color words from one documented table.
//! The table below is the documentation (README "Palette color words" mirrors it).

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

/// One palette entry as given and as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Color {
    /// Trimmed input; hex values upper-cased.
    pub given: String,
    /// `#RRGGBB`, upper case.
    pub hex: String,
}

fn word_key(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Parses a color word or `#RRGGBB`; the error says what is allowed.
pub fn parse_color(raw: &str) -> Result<Color, String> {
    let t = raw.trim();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let hex = format!("#{}", hex.to_ascii_uppercase());
            return Ok(Color {
                given: hex.clone(),
                hex,
            });
        }
        return Err(format!(
            "`{t}` is not a hex color; allowed: `#RRGGBB` (six hex digits) or a color word"
        ));
    }
    let key = word_key(t);
    match COLOR_NAMES.iter().find(|(name, _)| *name == key) {
        Some((_, hex)) => Ok(Color {
            given: t.to_string(),
            hex: (*hex).to_string(),
        }),
        None => Err(format!(
            "`{t}` is not a known color; allowed: `#RRGGBB` or one of: {}",
            COLOR_NAMES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
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
    fn luminance_orders_black_below_white() {
        assert!(luminance("#000000") < luminance("#FFFFFF"));
    }
}
