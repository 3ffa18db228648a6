//! The `Accept` request header, read once for every route that negotiates its answer's format.

/// The media ranges of an `Accept` header in their order, each lower-cased with its quality
/// (`q=`, 1 when absent or unreadable).
pub fn media_ranges(accept: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    accept.split(',').map(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (media, quality)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_keep_their_order_and_quality() {
        let ranges: Vec<_> =
            media_ranges("Text/HTML, application/json;q=0.5 , */*; q= 0.1;level=1, a/b;q=x")
                .collect();

        assert_eq!(
            ranges,
            [
                ("text/html".to_string(), 1.0),
                ("application/json".to_string(), 0.5),
                ("*/*".to_string(), 0.1),
                ("a/b".to_string(), 1.0),
            ]
        );
    }
}
