//! The `Accept` request header, read once for every route that negotiates its answer's format.

/// The media ranges of an `Accept` header in their order, each lower-cased with its quality
/// (`q=`, 1 when absent or unreadable).
pub fn media_ranges(accept: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    ranges(accept).map(|range| (range.media, range.quality))
}

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// The media type, lower-cased: `text/plain`, `*/*`.
    pub media: String,
    /// The parameters other than `q`, names lower-cased, values as sent without quotes.
    pub params: Vec<(String, String)>,
    /// The quality (`q=`), 1 when absent or unreadable.
    pub quality: f32,
}

impl MediaRange {
    /// The value of parameter `name` (lower-case), if the range has it.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find_map(|(n, v)| (n == name).then_some(v.as_str()))
    }
}

/// The media ranges of an `Accept` header in their order, with their parameters.
pub fn ranges(accept: &str) -> impl Iterator<Item = MediaRange> + '_ {
    accept.split(',').map(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut quality = None;
        let mut params = Vec::new();
        for part in parts {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            if name == "q" {
                quality = quality.or_else(|| value.parse::<f32>().ok());
            } else {
                params.push((name, value.trim_matches('"').to_string()));
            }
        }
        MediaRange {
            media,
            params,
            quality: quality.unwrap_or(1.0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_keep_their_parameters_without_the_quality() {
        let range = ranges(
            "application/vnd.google.protobuf; Proto=io.prometheus.client.MetricFamily;encoding=\"delimited\";q=0.7",
        )
        .next()
        .unwrap();

        assert_eq!(range.media, "application/vnd.google.protobuf");
        assert_eq!(
            range.param("proto"),
            Some("io.prometheus.client.MetricFamily")
        );
        assert_eq!(range.param("encoding"), Some("delimited"));
        assert_eq!(range.quality, 0.7);
        assert_eq!(range.params.len(), 2);
    }

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
