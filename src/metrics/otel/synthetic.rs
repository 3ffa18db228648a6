//! The synthetic series as OpenTelemetry instruments, pushed with the same identity as on
//! `/metrics`: instrument `synthetic_<type>_<n>`, attributes `series_id`, `generation` (integers)
//! and `label_<k>`.
//!
//! They live on a meter provider of their own, with the same resource and exporter as the app's,
//! for three reasons: the app's provider shows every collection to `/view_metrics`, which has no
//! use for a million synthetic points; each run needs its own cardinality limit; and the SDK
//! never forgets a series of a synchronous instrument under cumulative temporality, so the
//! histograms of replaced series would be exported for ever. Gauges and counters are observable
//! (each collection reads the frame of the moment, so only the series that exist are exported);
//! histograms are recorded, one round of observations per value change, by a thread of this
//! module's own, which also builds the provider afresh for each run and, for histograms, at each
//! churn (its first export then carries a new start time, a reset, which is what a cumulative
//! receiver expects of a series that starts again).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use opentelemetry::{
    Key, KeyValue, StringValue,
    metrics::{Histogram, MeterProvider as _, ObservableCounter, ObservableGauge},
};
use opentelemetry_sdk::metrics::{Aggregation, Instrument, SdkMeterProvider, Stream};

use crate::{
    config::SyntheticType,
    synthetic::{BUCKETS, Frame, Run, Synthetic},
};

/// Builds a meter provider with the app's resource and exporter and the given view, or `None`
/// when metrics are exported nowhere.
pub type ProviderBuilder =
    Arc<dyn Fn(SyntheticView) -> Option<SdkMeterProvider> + Send + Sync + 'static>;

/// The view of the synthetic instruments.
pub type SyntheticView = Box<dyn Fn(&Instrument) -> Option<Stream> + Send + Sync + 'static>;

/// The longest the thread sleeps before it looks at the settings again.
const POLL: Duration = Duration::from_secs(1);

/// The scale of the exponential histograms: 3, as the schema of the native histograms on
/// `/metrics`, so that both have the same buckets.
const EXPONENTIAL_SCALE: i8 = 3;

/// The export of the synthetic series; dropping it stops the thread, which flushes its provider.
pub struct SyntheticExport {
    stop: Arc<AtomicBool>,
}

impl Drop for SyntheticExport {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Starts exporting the series of `synthetic` through providers made by `build`.
pub fn start(synthetic: Arc<Synthetic>, build: ProviderBuilder) -> SyntheticExport {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::try_current().ok();
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("synthetic-otel".into())
        .spawn(move || {
            // The OTLP exporters' clients are made in the runtime's context.
            let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
            export(&synthetic, &build, &stopped);
        });
    if let Err(err) = spawned {
        tracing::warn!(%err, "cannot start the export of the synthetic series");
    }
    SyntheticExport { stop }
}

/// The provider of one run (and churn) with its instruments, kept alive together.
struct Current {
    provider: SdkMeterProvider,
    run: u64,
    churns: u64,
    /// The last value change recorded into the histograms.
    tick: u64,
    histograms: Vec<Histogram<f64>>,
    _gauges: Vec<ObservableGauge<f64>>,
    _counters: Vec<ObservableCounter<u64>>,
}

fn export(synthetic: &Arc<Synthetic>, build: &ProviderBuilder, stop: &AtomicBool) {
    let mut current: Option<Current> = None;
    loop {
        if stop.load(Ordering::Acquire) {
            shut_down(current.take());
            return;
        }
        let run = synthetic.run();
        let frame = run.frame();
        let histogram = matches!(
            frame.settings.kind,
            SyntheticType::Histogram | SyntheticType::NativeHistogram
        );
        let stale = match &current {
            None => true,
            Some(c) => c.run != run.number || (histogram && c.churns != frame.churns),
        };
        if stale && (current.is_some() || frame.settings.metrics > 0) {
            shut_down(current.take());
            current = (frame.settings.metrics > 0)
                .then(|| begin(synthetic, &run, &frame, build))
                .flatten();
        } else if let Some(c) = current.as_mut()
            && histogram
        {
            for _ in c.tick..frame.tick {
                record_round(&c.histograms, &frame);
            }
            c.tick = c.tick.max(frame.tick);
        }
        synthetic.wait_for_change(run.number, until_next(&frame).min(POLL));
    }
}

/// Time from `frame` to its next value change or churn, whichever comes first.
fn until_next(frame: &Frame) -> Duration {
    let s = &frame.settings;
    [(s.value_interval, frame.tick), (s.churn, frame.churns)]
        .into_iter()
        .filter(|(interval, _)| !interval.is_zero())
        .map(|(interval, done)| {
            let next = interval.saturating_mul(u32::try_from(done + 1).unwrap_or(u32::MAX));
            next.saturating_sub(frame.elapsed())
        })
        .min()
        .unwrap_or(POLL)
}

fn shut_down(current: Option<Current>) {
    if let Some(current) = current
        && let Err(err) = current.provider.shutdown()
    {
        tracing::debug!(%err, "shutting down the synthetic series' meter provider");
    }
}

/// A provider for `run` at `frame`, its instruments made and, for histograms, one round recorded.
fn begin(
    synthetic: &Arc<Synthetic>,
    run: &Run,
    frame: &Frame,
    build: &ProviderBuilder,
) -> Option<Current> {
    let settings = &frame.settings;
    let limit = usize::try_from(settings.series_per_metric)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let exponential = settings.kind == SyntheticType::NativeHistogram;
    let view: SyntheticView = Box::new(move |_| {
        let stream = Stream::builder().with_cardinality_limit(limit);
        let stream = match exponential {
            true => stream.with_aggregation(Aggregation::Base2ExponentialHistogram {
                max_size: 160,
                max_scale: EXPONENTIAL_SCALE,
                record_min_max: true,
            }),
            false => stream,
        };
        stream.build().ok()
    });
    let provider = build(view)?;
    let meter = provider.meter(crate::telemetry::SCOPE);
    let constant: Arc<[KeyValue]> = (0..settings.labels)
        .map(|k| {
            KeyValue::new(
                Key::from(Arc::<str>::from(format!("label_{k}"))),
                StringValue::from(Arc::<str>::from(format!("value_{k}"))),
            )
        })
        .collect();
    let mut current = Current {
        provider: provider.clone(),
        run: run.number,
        churns: frame.churns,
        tick: frame.tick,
        histograms: Vec::new(),
        _gauges: Vec::new(),
        _counters: Vec::new(),
    };
    let description = "Synthetic series of prom-metrics-app (SYNTHETIC_*, /api/synthetic)";
    for family in 0..settings.metrics {
        let name = settings.family_name(family);
        // Each collection reads the frame of its moment, if the run is still the one in force.
        let read = {
            let (synthetic, number, constant) = (synthetic.clone(), run.number, constant.clone());
            move |observe: &mut dyn FnMut(&Frame, &[KeyValue], u64)| {
                let run = synthetic.run();
                if run.number != number {
                    return;
                }
                let frame = run.frame();
                for id in 0..frame.settings.series_per_metric {
                    let series = frame.series(family, id);
                    let attributes = attributes(series.id, series.generation, &constant);
                    observe(&frame, &attributes, id);
                }
            }
        };
        match settings.kind {
            SyntheticType::Gauge => current._gauges.push(
                meter
                    .f64_observable_gauge(name)
                    .with_description(description)
                    .with_callback(move |observer| {
                        read(&mut |frame, attributes, id| {
                            observer.observe(frame.gauge(&frame.series(family, id)), attributes)
                        })
                    })
                    .build(),
            ),
            SyntheticType::Counter => current._counters.push(
                meter
                    .u64_observable_counter(name)
                    .with_description(description)
                    .with_callback(move |observer| {
                        read(&mut |frame, attributes, id| {
                            observer.observe(frame.counter(&frame.series(family, id)), attributes)
                        })
                    })
                    .build(),
            ),
            SyntheticType::Histogram | SyntheticType::NativeHistogram => current.histograms.push(
                meter
                    .f64_histogram(name)
                    .with_description(description)
                    .with_boundaries(BUCKETS.to_vec())
                    .build(),
            ),
        }
    }
    if !current.histograms.is_empty() {
        // The series' first round, as on /metrics: one round for a series that has just appeared.
        record_round(&current.histograms, frame);
        current.tick = frame.tick;
    }
    Some(current)
}

/// `series_id` and `generation` as integers, then the constant labels.
fn attributes(id: u64, generation: u64, constant: &[KeyValue]) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(2 + constant.len());
    attributes.push(KeyValue::new("series_id", id as i64));
    attributes.push(KeyValue::new("generation", generation as i64));
    attributes.extend_from_slice(constant);
    attributes
}

/// One round of observations into every series of every histogram family.
fn record_round(histograms: &[Histogram<f64>], frame: &Frame) {
    let constant: Vec<KeyValue> = (0..frame.settings.labels)
        .map(|k| KeyValue::new(format!("label_{k}"), format!("value_{k}")))
        .collect();
    for (family, histogram) in histograms.iter().enumerate() {
        for id in 0..frame.settings.series_per_metric {
            let series = frame.series(family as u64, id);
            let attributes = attributes(series.id, series.generation, &constant);
            for value in frame.observations(&series) {
                histogram.record(value, &attributes);
            }
        }
    }
}
