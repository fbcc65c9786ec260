//! Text cut to a maker's length limit: in characters, or in the maker's own units.

/// At most `max` characters of `s`, ending with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    clip_by(s, max, |_| 1)
}

/// At most `max` units of `s`, each character (and the `…` that ends a cut text) counted as `width`
/// says.
pub(crate) fn clip_by(s: &str, max: usize, width: impl Fn(char) -> usize) -> String {
    if s.chars().map(&width).sum::<usize>() <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = width('…');
    for c in s.chars() {
        if used + width(c) > max {
            break;
        }
        used += width(c);
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 5), "héllo");
        assert_eq!(clip("héllo!", 5), "héll…");
        let exact = "字".repeat(49);
        assert_eq!(clip(&exact, 49), exact);
        let cut = clip(&"字".repeat(60), 49);
        assert_eq!(cut.chars().count(), 49);
        assert!(cut.ends_with("字…"));
    }
}
