//! Reads a [`Snapshot`] back from the backend's own OpenMetrics exposition.
//!
//! prometheus-client 0.26 can neither iterate a `Family` nor read a histogram's buckets, so the
//! snapshot is read from what a scrape would see: the same text, the same values.

use std::collections::BTreeMap;

use crate::metrics::{Bucket, Process, Series, Snapshot};

const DURATION: &str = "http_server_request_duration_seconds";

/// The original's families, the per-route duration series and the process figures.
pub(super) fn snapshot(text: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut process = Process::default();
    let mut has_process = false;
    let mut series: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        // Drop an exemplar (` # {...} v`) before splitting off the value.
        let sample = line.split(" # ").next().unwrap_or(line);
        let Some((name_and_labels, value)) = sample.rsplit_once(' ') else {
            continue;
        };
        let number = value.parse::<f64>().unwrap_or(0.0);
        let (name, labels) = match name_and_labels.split_once('{') {
            Some((name, rest)) => (name, labels_of(rest.strip_suffix('}').unwrap_or(rest))),
            None => (name_and_labels, Vec::new()),
        };
        let count = number as u64;
        match name {
            "http_requests_total" => snapshot.requests = count,
            "http_successful_request_total" => snapshot.successful = count,
            "http_error_4xx_total" => snapshot.error_4xx = count,
            "http_error_5xx_total" => snapshot.error_5xx = count,
            "request_processing_seconds_count" => snapshot.count = count,
            "request_processing_seconds_sum" => snapshot.sum = number,
            "request_processing_seconds_bucket" => {
                if let Some(le) = bound(&labels) {
                    snapshot.buckets.push(Bucket { le, count });
                }
            }
            "process_cpu_seconds_total" => process.cpu_seconds = number,
            "process_resident_memory_bytes" => process.resident_memory_bytes = number,
            "process_open_fds" => process.open_fds = number,
            "process_start_time_seconds" => {
                process.start_time_seconds = number;
                has_process = true;
            }
            _ => {
                let Some(part) = name.strip_prefix(DURATION) else {
                    continue;
                };
                let le = bound(&labels);
                let key: Vec<_> = labels.into_iter().filter(|(k, _)| k != "le").collect();
                let entry = series.entry(key.clone()).or_insert_with(|| series_of(&key));
                match (part, le) {
                    ("_bucket", Some(le)) => entry.buckets.push(Bucket { le, count }),
                    ("_count", _) => entry.count = count,
                    ("_sum", _) => entry.sum = number,
                    _ => {}
                }
            }
        }
    }
    snapshot.series = series.into_values().collect();
    Series::sort(&mut snapshot.series);
    snapshot.process = has_process.then_some(process);
    snapshot
}

/// A series' identity from its labels.
fn series_of(labels: &[(String, String)]) -> Series {
    let get = |key: &str| {
        labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    Series {
        method: get("http_request_method").unwrap_or_default(),
        route: get("http_route").unwrap_or_default(),
        status: get("http_response_status_code")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        url_scheme: get("url_scheme").unwrap_or_default(),
        error_type: get("error_type"),
        ..Series::default()
    }
}

/// The `le` label as a number.
fn bound(labels: &[(String, String)]) -> Option<f64> {
    let (_, le) = labels.iter().find(|(k, _)| k == "le")?;
    match le.as_str() {
        "+Inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

/// `a="x",b="y\"z"` as pairs, with the exposition's escapes (`\\`, `\"`, `\n`) undone.
fn labels_of(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() || chars.next() != Some('"') {
            return labels;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => {}
                },
                c => value.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').trim().to_string(), value));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_split_and_unescaped() {
        let labels = labels_of(r#"http_route="/status/{code}",note="a \"b\",c\\d",le="+Inf""#);

        assert_eq!(
            labels,
            [
                ("http_route".to_string(), "/status/{code}".to_string()),
                ("note".to_string(), r#"a "b",c\d"#.to_string()),
                ("le".to_string(), "+Inf".to_string()),
            ]
        );
    }
}
