//! The synthetic families on `/metrics`, in every scrape format, encoded a chunk at a time.
//!
//! Written by hand rather than through prometheus-client's registry, for two reasons measured in
//! `docs/benchmarks.md`: a registry would keep every series (a million label sets, locks and
//! atomics: about 380 bytes a series) where the generator keeps none, and its text encoder spends
//! 110 to 270 ns a line (10,000 to a million series) against about 70 here, and its protobuf
//! encoder 380. Here a line is a few copies of bytes made once per family, and numbers written
//! by `itoa` and `ryu`. The protobuf messages are prost's, from prometheus-client's own
//! definitions, reused from one series to the next so that encoding allocates nothing.

use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model as pb;
use prost::{Message, encoding};

use super::native::{Buckets, Schema, ZERO_THRESHOLD};
use crate::{
    config::SyntheticType,
    metrics::Format,
    synthetic::{BUCKETS, Frame, Series},
};

/// The size a chunk grows to before it is handed on: large enough that handing it on costs
/// little, small enough that a scrape holds little at once.
pub const CHUNK_BYTES: usize = 128 * 1024;

/// The schema of the synthetic native histograms: 3, eight buckets per doubling (the growth
/// factor 1.09 that `NATIVE_HISTOGRAM_BUCKET_FACTOR=1.1` gives the request histograms).
const NATIVE_SCHEMA: i8 = 3;

/// The `le` values of the classic buckets, as written.
const LE: [&str; 15] = [
    "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0",
    "7.5", "10.0", "+Inf",
];

const HELP: &str = "Synthetic series of prom-metrics-app (SYNTHETIC_*, /api/synthetic)";

/// The synthetic families of one frame in one format, as successive chunks of bytes.
pub struct Chunks {
    frame: Frame,
    format: Format,
    /// The next family, and the next series in it.
    family: u64,
    series: u64,
    /// `,label_0="value_0",...`: the constant labels, written once.
    constant: Vec<u8>,
    /// The family's name, and what its sample lines start with.
    name: String,
    schema: Schema,
    /// Reused from one series to the next (protobuf).
    metric: pb::Metric,
}

impl Chunks {
    /// The families of `frame`, in `format`.
    pub fn new(frame: Frame, format: Format) -> Self {
        let mut constant = Vec::new();
        for k in 0..frame.settings.labels {
            constant.extend_from_slice(format!(",label_{k}=\"value_{k}\"").as_bytes());
        }
        let mut metric = pb::Metric::default();
        for name in ["series_id", "generation"]
            .into_iter()
            .map(str::to_string)
            .chain((0..frame.settings.labels).map(|k| format!("label_{k}")))
        {
            let value = name.strip_prefix("label_").map(|k| format!("value_{k}"));
            metric.label.push(pb::LabelPair {
                name,
                value: value.unwrap_or_default(),
            });
        }
        Self {
            frame,
            format,
            family: 0,
            series: 0,
            constant,
            name: String::new(),
            schema: Schema::new(NATIVE_SCHEMA),
            metric,
        }
    }

    fn kind(&self) -> SyntheticType {
        self.frame.settings.kind
    }

    /// The next chunk: whole lines (or whole families, in protobuf) up to about [`CHUNK_BYTES`].
    fn fill(&mut self, out: &mut Vec<u8>) {
        let (families, end) = (
            self.frame.settings.metrics,
            self.frame.settings.series_per_metric,
        );
        while self.family < families && out.len() < CHUNK_BYTES {
            if self.series == 0 {
                self.name = self.frame.settings.family_name(self.family);
                match self.format {
                    Format::Protobuf => {
                        self.protobuf_family(out);
                        self.family += 1;
                        continue;
                    }
                    _ => self.text_header(out),
                }
            }
            while self.series < end && out.len() < CHUNK_BYTES {
                let series = self.frame.series(self.family, self.series);
                self.text_series(&series, out);
                self.series += 1;
            }
            if self.series == end {
                self.series = 0;
                self.family += 1;
            }
        }
    }

    /// `# HELP` and `# TYPE` of the family, as prometheus-client writes them in each format.
    fn text_header(&self, out: &mut Vec<u8>) {
        let (kind, suffix) = match self.kind() {
            SyntheticType::Gauge => ("gauge", ""),
            SyntheticType::Counter => ("counter", "_total"),
            SyntheticType::Histogram | SyntheticType::NativeHistogram => ("histogram", ""),
        };
        // OpenMetrics names the family without `_total`; the 0.0.4 text format with it.
        let suffix = match self.format {
            Format::OpenMetrics => "",
            _ => suffix,
        };
        for line in [
            format!("# HELP {}{suffix} {HELP}.\n", self.name),
            format!("# TYPE {}{suffix} {kind}\n", self.name),
        ] {
            out.extend_from_slice(line.as_bytes());
        }
    }

    /// The sample lines of one series.
    fn text_series(&self, series: &Series, out: &mut Vec<u8>) {
        let mut numbers = itoa::Buffer::new();
        let mut floats = ryu::Buffer::new();
        let labels = |out: &mut Vec<u8>, suffix: &str| {
            out.extend_from_slice(self.name.as_bytes());
            out.extend_from_slice(suffix.as_bytes());
            out.extend_from_slice(b"{series_id=\"");
            out.extend_from_slice(itoa::Buffer::new().format(series.id).as_bytes());
            out.extend_from_slice(b"\",generation=\"");
            out.extend_from_slice(itoa::Buffer::new().format(series.generation).as_bytes());
            out.push(b'"');
            out.extend_from_slice(&self.constant);
        };
        match self.kind() {
            SyntheticType::Gauge => {
                labels(out, "");
                out.extend_from_slice(b"} ");
                out.extend_from_slice(floats.format(self.frame.gauge(series)).as_bytes());
                out.push(b'\n');
            }
            SyntheticType::Counter => {
                labels(out, "_total");
                out.extend_from_slice(b"} ");
                out.extend_from_slice(numbers.format(self.frame.counter(series)).as_bytes());
                out.push(b'\n');
            }
            kind => {
                let (counts, sum, count) = self.classic(series);
                let buckets = match kind {
                    SyntheticType::Histogram => &counts[..],
                    _ => &counts[counts.len() - 1..],
                };
                let les = &LE[LE.len() - buckets.len()..];
                for (le, cumulative) in les.iter().zip(buckets) {
                    labels(out, "_bucket");
                    out.extend_from_slice(b",le=\"");
                    out.extend_from_slice(le.as_bytes());
                    out.extend_from_slice(b"\"} ");
                    out.extend_from_slice(numbers.format(*cumulative).as_bytes());
                    out.push(b'\n');
                }
                labels(out, "_sum");
                out.extend_from_slice(b"} ");
                out.extend_from_slice(floats.format(sum).as_bytes());
                out.push(b'\n');
                labels(out, "_count");
                out.extend_from_slice(b"} ");
                out.extend_from_slice(numbers.format(count).as_bytes());
                out.push(b'\n');
            }
        }
    }

    /// The classic buckets of a histogram series (cumulative, `+Inf` last), its sum and count.
    fn classic(&self, series: &Series) -> ([u64; 15], f64, u64) {
        let rounds = self.frame.rounds(series);
        let mut counts = [0u64; 15];
        let mut sum = 0.0;
        for value in self.frame.observations(series) {
            let bucket = BUCKETS.partition_point(|bound| *bound < value);
            counts[bucket] += rounds;
            sum += value;
        }
        let mut cumulative = 0;
        for count in &mut counts {
            cumulative += *count;
            *count = cumulative;
        }
        (counts, sum * rounds as f64, cumulative)
    }

    /// One family in the protobuf format: a length-delimited `MetricFamily`. Its length comes
    /// first, so the family's messages are measured, then written: twice the work of one pass,
    /// without holding a family of a million series in memory.
    fn protobuf_family(&mut self, out: &mut Vec<u8>) {
        let kind = self.kind();
        let (name, kind) = match kind {
            SyntheticType::Gauge => (self.name.clone(), pb::MetricType::Gauge),
            SyntheticType::Counter => (format!("{}_total", self.name), pb::MetricType::Counter),
            _ => (self.name.clone(), pb::MetricType::Histogram),
        };
        let header = pb::MetricFamily {
            name,
            help: format!("{HELP}."),
            r#type: kind as i32,
            ..Default::default()
        };
        let n = self.frame.settings.series_per_metric;
        let mut length = header.encoded_len();
        for id in 0..n {
            self.set_metric(id);
            length += encoding::message::encoded_len(4, &self.metric);
        }
        encoding::encode_varint(length as u64, out);
        // Writing into a `Vec` cannot run out of room, the only failure prost reports.
        let _ = header.encode(out);
        for id in 0..n {
            self.set_metric(id);
            encoding::message::encode(4, &self.metric, out);
        }
    }

    /// Makes `self.metric` series `id` of the current family.
    fn set_metric(&mut self, id: u64) {
        let series = self.frame.series(self.family, id);
        let mut numbers = itoa::Buffer::new();
        for (pair, value) in self
            .metric
            .label
            .iter_mut()
            .zip([series.id, series.generation])
        {
            pair.value.clear();
            pair.value.push_str(numbers.format(value));
        }
        match self.kind() {
            SyntheticType::Gauge => {
                self.metric.gauge = Some(pb::Gauge {
                    value: self.frame.gauge(&series),
                });
            }
            SyntheticType::Counter => {
                self.metric.counter = Some(pb::Counter {
                    value: self.frame.counter(&series) as f64,
                    ..Default::default()
                });
            }
            SyntheticType::Histogram => {
                let (counts, sum, count) = self.classic(&series);
                let histogram = self.metric.histogram.get_or_insert_with(Default::default);
                histogram.sample_count = count;
                histogram.sample_sum = sum;
                histogram.bucket.resize_with(counts.len(), Default::default);
                for ((bucket, count), bound) in histogram
                    .bucket
                    .iter_mut()
                    .zip(counts)
                    .zip(BUCKETS.iter().copied().chain([f64::INFINITY]))
                {
                    bucket.cumulative_count = count;
                    bucket.upper_bound = bound;
                }
            }
            SyntheticType::NativeHistogram => {
                let rounds = self.frame.rounds(&series);
                let mut buckets = Buckets::default();
                let mut sum = 0.0;
                let observations = self.frame.observations(&series);
                let mut indexes = observations.map(|v| self.schema.index(v));
                indexes.sort_unstable();
                for index in indexes {
                    buckets.add(index);
                }
                for value in observations {
                    sum += value;
                }
                let (spans, deltas) = buckets.times(rounds).spans_and_deltas();
                let histogram = self.metric.histogram.get_or_insert_with(Default::default);
                histogram.sample_count = rounds * observations.len() as u64;
                histogram.sample_sum = sum * rounds as f64;
                histogram.schema = i32::from(self.schema.number());
                histogram.zero_threshold = ZERO_THRESHOLD;
                histogram.positive_span = spans
                    .into_iter()
                    .map(|(offset, length)| pb::BucketSpan { offset, length })
                    .collect();
                histogram.positive_delta = deltas;
            }
        }
    }
}

impl Iterator for Chunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(CHUNK_BYTES + 4096);
        self.fill(&mut out);
        (!out.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::synthetic::{Settings, Synthetic};

    fn frame(kind: SyntheticType, metrics: u64, series: u64, labels: u64) -> Frame {
        Synthetic::new(Settings {
            metrics,
            series_per_metric: series,
            labels,
            kind,
            value_interval: Duration::ZERO,
            ..Settings::default()
        })
        .run()
        .frame()
    }

    fn text(frame: Frame, format: Format) -> String {
        String::from_utf8(Chunks::new(frame, format).flatten().collect()).unwrap()
    }

    #[test]
    fn gauges_are_one_line_per_series_with_their_labels() {
        let text = text(frame(SyntheticType::Gauge, 2, 3, 2), Format::Text);

        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 6);
        assert!(
            samples[4].starts_with(
                "synthetic_gauge_1{series_id=\"1\",generation=\"0\",label_0=\"value_0\",label_1=\"value_1\"} "
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE synthetic_gauge_0 gauge\n"));
    }

    #[test]
    fn counters_carry_total_as_each_format_names_it() {
        let f = frame(SyntheticType::Counter, 1, 2, 0);

        let text = text(f.clone(), Format::Text);
        let openmetrics = super::tests::text(f, Format::OpenMetrics);

        assert!(text.contains("# TYPE synthetic_counter_0_total counter\n"));
        assert!(openmetrics.contains("# TYPE synthetic_counter_0 counter\n"));
        assert!(
            openmetrics.contains("\nsynthetic_counter_0_total{series_id=\"1\",generation=\"0\"} ")
        );
    }

    #[test]
    fn histograms_have_seventeen_lines_and_native_ones_three() {
        let classic = text(frame(SyntheticType::Histogram, 1, 2, 0), Format::Text);
        let native = text(frame(SyntheticType::NativeHistogram, 1, 2, 0), Format::Text);

        let samples = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples(&classic), 34);
        assert_eq!(samples(&native), 6);
        assert!(
            classic.contains("synthetic_histogram_0_count{series_id=\"0\",generation=\"0\"} 4\n")
        );
        assert!(classic.contains(",le=\"+Inf\"} 4\n"));
        assert!(native.contains(
            "synthetic_native_histogram_0_bucket{series_id=\"1\",generation=\"0\",le=\"+Inf\"} 4\n"
        ));
    }

    #[test]
    fn chunks_end_on_whole_lines_and_stay_near_their_size() {
        let chunks: Vec<Vec<u8>> =
            Chunks::new(frame(SyntheticType::Gauge, 3, 10_000, 1), Format::Text).collect();

        assert!(chunks.len() > 10);
        for chunk in &chunks {
            assert!(chunk.len() <= CHUNK_BYTES + 4096);
            assert_eq!(chunk.last(), Some(&b'\n'));
        }
    }

    #[test]
    fn protobuf_families_decode_with_every_series() {
        for kind in [
            SyntheticType::Gauge,
            SyntheticType::Counter,
            SyntheticType::Histogram,
            SyntheticType::NativeHistogram,
        ] {
            let body: Vec<u8> = Chunks::new(frame(kind, 3, 500, 1), Format::Protobuf)
                .flatten()
                .collect();

            let mut rest = body.as_slice();
            let mut families = Vec::new();
            while !rest.is_empty() {
                families.push(pb::MetricFamily::decode_length_delimited(&mut rest).unwrap());
            }
            assert_eq!(families.len(), 3, "{kind}");
            assert!(families.iter().all(|f| f.metric.len() == 500), "{kind}");
            let last = &families[2].metric[499];
            assert_eq!(last.label[0].value, "499");
            assert_eq!(last.label[2].name, "label_0");
            if kind == SyntheticType::NativeHistogram {
                let h = last.histogram.as_ref().unwrap();
                assert_eq!((h.schema, h.sample_count), (3, 4));
                // The deltas add up to each bucket's count; the buckets hold every observation.
                let counts = h.positive_delta.iter().scan(0, |count, delta| {
                    *count += delta;
                    Some(*count)
                });
                assert_eq!(counts.sum::<i64>() as u64 + h.zero_count, h.sample_count);
                assert!(h.bucket.is_empty());
            }
        }
    }
}
