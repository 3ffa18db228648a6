//! Exposition formats of `/metrics` and their negotiation from the `Accept` header.

/// The message type the protobuf format is made of.
const METRIC_FAMILY: &str = "io.prometheus.client.MetricFamily";

/// A scrape format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (no exemplars), what `promtool` and older scrapers read.
    Text,
    /// OpenMetrics 1.0 text, with exemplars; what Prometheus asks for by default.
    OpenMetrics,
    /// The Prometheus protobuf format: length-delimited `io.prometheus.client.MetricFamily`
    /// messages, the only one that carries native histograms (and their exemplars); what
    /// Prometheus asks for first with native histograms enabled.
    Protobuf,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }

    /// What ends an exposition in this format, after every family: OpenMetrics' `# EOF` line.
    pub fn trailer(self) -> &'static [u8] {
        match self {
            Format::OpenMetrics => b"# EOF\n",
            Format::Text | Format::Protobuf => b"",
        }
    }

    /// Chooses the format from an `Accept` header, by quality: the protobuf format when it is
    /// named with its `proto=io.prometheus.client.MetricFamily` and `encoding=delimited` and
    /// accepted at least as strongly as either text format; else OpenMetrics when it is accepted
    /// at least as strongly as plain text; else the 0.0.4 text format (also for a missing or odd
    /// header). A wildcard never selects protobuf or OpenMetrics.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut protobuf: f32 = 0.0;
        let mut openmetrics: f32 = 0.0;
        let mut text: f32 = 0.0;
        for range in crate::accept::ranges(accept) {
            match range.media.as_str() {
                "application/vnd.google.protobuf"
                    if range.param("proto") == Some(METRIC_FAMILY)
                        && range.param("encoding") == Some("delimited") =>
                {
                    protobuf = protobuf.max(range.quality)
                }
                "application/openmetrics-text" => openmetrics = openmetrics.max(range.quality),
                "text/plain" | "text/*" | "*/*" => text = text.max(range.quality),
                _ => {}
            }
        }
        if protobuf > 0.0 && protobuf >= openmetrics && protobuf >= text {
            Format::Protobuf
        } else if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_default_accept_gets_openmetrics() {
        let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

        assert_eq!(Format::negotiate(Some(accept)), Format::OpenMetrics);
    }

    #[test]
    fn prometheus_with_native_histograms_gets_protobuf() {
        // Prometheus 2.42 with --enable-feature=native-histograms, and a lower protobuf quality.
        let v2_42 = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let lower = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

        assert_eq!(Format::negotiate(Some(v2_42)), Format::Protobuf);
        assert_eq!(Format::negotiate(Some(lower)), Format::Protobuf);
    }

    #[test]
    fn protobuf_needs_its_message_type_and_framing_and_the_highest_quality() {
        let without_proto = "application/vnd.google.protobuf;encoding=delimited";
        let text_framing =
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text";
        let weaker = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.4,application/openmetrics-text;q=0.5";
        let refused = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0";

        assert_eq!(Format::negotiate(Some(without_proto)), Format::Text);
        assert_eq!(Format::negotiate(Some(text_framing)), Format::Text);
        assert_eq!(Format::negotiate(Some(weaker)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some(refused)), Format::Text);
    }

    #[test]
    fn plain_clients_get_text() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }
}
