//! The `otlp-json` console format: each export as one line of OTLP/JSON, the encoding of
//! `ExportTraceServiceRequest`, `ExportMetricsServiceRequest` and `ExportLogsServiceRequest` that
//! the OpenTelemetry
//! Collector's file exporter writes and its `otlpjsonfile` receiver reads.
//!
//! The messages are the ones the OTLP exporter sends (`opentelemetry_proto::transform`), encoded
//! by the crate's `with-serde` feature, which already follows the OTLP/JSON rules: lowerCamelCase
//! names, trace and span ids as lower-case hex (not base64), enums as integers (`"kind":2`),
//! 64-bit integers as strings (`"startTimeUnixNano":"1764…"`, `{"intValue":"200"}`). It differs
//! from the Collector in one way, fixed here by [`prune`]: it writes every field, default values
//! included (`"traceState":""`, `"droppedAttributesCount":0`, `"events":[]`, `"status":
//! {"message":"","code":0}`), where the Collector, as the proto3 JSON mapping prefers, leaves
//! them out. Left as the crate writes it: non-finite doubles, which serde_json can only write as
//! `null` (dropped here) where OTLP/JSON has `"NaN"`; the app records none.

use opentelemetry_proto::{
    tonic::collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    transform::{
        common::tonic::ResourceAttributesWithSchema, logs::tonic::group_logs_by_resource_and_scope,
        trace::tonic::group_spans_by_resource_and_scope,
    },
};
use opentelemetry_sdk::{
    error::OTelSdkError, logs::LogBatch, metrics::data::ResourceMetrics, trace::SpanData,
};
use serde_json::Value;

/// One `ExportTraceServiceRequest` line, ending with `\n`.
pub fn spans(
    batch: Vec<SpanData>,
    resource: &ResourceAttributesWithSchema,
) -> Result<String, OTelSdkError> {
    line(serde_json::to_value(ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(batch, resource),
    }))
}

/// One `ExportLogsServiceRequest` line, ending with `\n`. A record outside any span has no
/// `traceId` and `spanId`, as the Collector writes it.
pub fn logs(
    batch: &LogBatch<'_>,
    resource: &ResourceAttributesWithSchema,
) -> Result<String, OTelSdkError> {
    let mut encoded = serde_json::to_value(ExportLogsServiceRequest {
        resource_logs: group_logs_by_resource_and_scope(batch, resource),
    });
    if let Ok(value) = &mut encoded {
        let records = value["resourceLogs"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .filter_map(|resource| resource["scopeLogs"].as_array_mut())
            .flatten()
            .filter_map(|scope| scope["logRecords"].as_array_mut())
            .flatten()
            .filter_map(Value::as_object_mut);
        for record in records {
            record.retain(|name, field| {
                !(matches!(name.as_str(), "traceId" | "spanId") && field.as_str() == Some(""))
            });
        }
    }
    line(encoded)
}

/// One `ExportMetricsServiceRequest` line, ending with `\n`.
pub fn metrics(metrics: &ResourceMetrics) -> Result<String, OTelSdkError> {
    line(serde_json::to_value(ExportMetricsServiceRequest::from(
        metrics,
    )))
}

fn line(encoded: serde_json::Result<Value>) -> Result<String, OTelSdkError> {
    let mut value = encoded
        .map_err(|err| OTelSdkError::InternalFailure(format!("encoding OTLP/JSON: {err}")))?;
    prune(&mut value);
    // The keys keep the messages' field order (serde_json's `preserve_order`).
    let mut line = value.to_string();
    line.push('\n');
    Ok(line)
}

/// Fields written even with a default value, as the Collector writes them: the ids of a span
/// (a root span has `"parentSpanId":""`), the messages it always holds (an unset status is
/// `"status":{}`), and fields whose presence is the information: `AnyValue` and data point
/// oneofs (`{"intValue":"0"}`, `"asDouble":0`), optional doubles (`"sum":0`), key-value pairs.
const ALWAYS_WRITTEN: &[&str] = &[
    "traceId",
    "spanId",
    "parentSpanId",
    "status",
    "resource",
    "scope",
    "positive",
    "negative",
    "key",
    "value",
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "bytesValue",
    "arrayValue",
    "kvlistValue",
    "asDouble",
    "asInt",
    "sum",
    "min",
    "max",
];

/// 64-bit integer fields, written as strings: `"0"` is their default value.
const INT64_FIELDS: &[&str] = &[
    "observedTimeUnixNano",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "timeUnixNano",
    "count",
    "zeroCount",
];

/// Removes fields that hold their default value (`null`, `false`, `0`, `""`, `[]`, `{}`), except
/// those in [`ALWAYS_WRITTEN`]; array elements are never removed.
fn prune(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.values_mut().for_each(prune);
            fields.retain(|name, field| {
                !field.is_null()
                    && (ALWAYS_WRITTEN.contains(&name.as_str()) || !is_default(name, field))
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

fn is_default(name: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::String(text) => text.is_empty() || (text == "0" && INT64_FIELDS.contains(&name)),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::telemetry::console::samples;

    fn parse(line: &str) -> Value {
        assert!(
            line.ends_with('\n') && line.matches('\n').count() == 1,
            "{line}"
        );
        serde_json::from_str(line).unwrap()
    }

    fn span_export() -> (String, ExportTraceServiceRequest) {
        let batch = vec![samples::server_span(), samples::failed_root_span()];
        let resource = ResourceAttributesWithSchema::from(&samples::resource());
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch.clone(), &resource),
        };
        (spans(batch, &resource).unwrap(), request)
    }

    #[test]
    fn a_span_export_follows_the_otlp_json_rules_as_the_collector_writes_them() {
        let (line, _) = span_export();

        let export = parse(&line);
        let resource_spans = &export["resourceSpans"][0];
        assert_eq!(
            resource_spans["resource"],
            json!({"attributes": [{"key": "service.name", "value": {"stringValue": "prom-metrics-app"}}]})
        );
        assert_eq!(
            resource_spans["scopeSpans"][0]["scope"],
            json!({"name": "prom-metrics-app"})
        );
        let spans = &resource_spans["scopeSpans"][0]["spans"];
        assert_eq!(
            spans[0],
            json!({
                "traceId": samples::TRACE_ID,
                "spanId": samples::SPAN_ID,
                "parentSpanId": samples::PARENT_ID,
                "flags": 0x301,
                "name": "GET /do_task",
                "kind": 2,
                "startTimeUnixNano": samples::START_NANOS.to_string(),
                "endTimeUnixNano": (samples::START_NANOS + 201_302_000).to_string(),
                "attributes": [
                    {"key": "http.request.method", "value": {"stringValue": "GET"}},
                    {"key": "http.route", "value": {"stringValue": "/do_task"}},
                    {"key": "http.response.status_code", "value": {"intValue": "200"}},
                ],
                "status": {},
            })
        );
        assert_eq!(spans[1]["parentSpanId"], "", "a root span");
        assert_eq!(spans[1]["kind"], 1);
        assert_eq!(
            spans[1]["status"],
            json!({"message": "upstream said \"no\"", "code": 2})
        );
        assert_eq!(
            spans[1]["events"],
            json!([{"timeUnixNano": samples::START_NANOS.to_string(), "name": "retry"}])
        );
        assert_eq!(
            spans[1]["attributes"][0]["value"],
            json!({"doubleValue": 0.25})
        );
    }

    #[test]
    fn leaving_out_defaults_loses_nothing() {
        let (line, request) = span_export();

        let read: ExportTraceServiceRequest = serde_json::from_str(&line).unwrap();

        assert_eq!(read, request);
    }

    #[test]
    fn a_metric_export_writes_counts_as_strings_and_keeps_zero_values() {
        let collected = samples::collected_metrics();

        let line = metrics(&collected).unwrap();

        let export = parse(&line);
        let metrics = export["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap();
        let metric = |name: &str| {
            metrics
                .iter()
                .find(|m| m["name"] == name)
                .unwrap_or_else(|| panic!("no {name} in {line}"))
        };
        let requests = &metric("requests")["sum"];
        assert_eq!(requests["aggregationTemporality"], 2, "cumulative");
        assert_eq!(requests["isMonotonic"], true);
        assert_eq!(requests["dataPoints"][0]["asInt"], "3");
        assert_eq!(metric("idle")["sum"]["dataPoints"][0]["asInt"], "0");
        assert!(metric("in_flight")["sum"].get("isMonotonic").is_none());
        assert_eq!(
            metric("temperature")["gauge"]["dataPoints"][0]["asDouble"],
            1.5
        );
        let latency = &metric("latency")["histogram"]["dataPoints"][0];
        assert_eq!(latency["count"], "3");
        assert_eq!(latency["sum"], 4.75);
        assert_eq!(latency["bucketCounts"], json!(["1", "1", "1"]));
        assert_eq!(latency["explicitBounds"], json!([0.3, 1.0]));
        assert_eq!(
            latency["attributes"],
            json!([{"key": "http.route", "value": {"stringValue": "/"}}])
        );
        let start = latency["startTimeUnixNano"].as_str().unwrap();
        assert!(start.len() >= 19 && start.bytes().all(|b| b.is_ascii_digit()));
        let sizes = &metric("sizes")["exponentialHistogram"]["dataPoints"][0];
        assert_eq!(
            sizes["positive"],
            json!({"offset": -1, "bucketCounts": ["1", "1", "1"]})
        );
        assert_eq!(sizes["negative"], json!({}));
        let read: ExportMetricsServiceRequest = serde_json::from_str(&line).unwrap();
        assert_eq!(read, ExportMetricsServiceRequest::from(&collected));
    }

    #[test]
    fn prune_drops_defaults_but_keeps_fields_whose_presence_matters() {
        let mut value = json!({
            "droppedAttributesCount": 0, "traceState": "", "events": [], "scope2": {},
            "isMonotonic": false, "sum2": null, "timeUnixNano": "0", "name": "0",
            "parentSpanId": "", "status": {"message": "", "code": 0},
            "asInt": "0", "asDouble": 0.0, "sum": 0.0, "value": {"intValue": "0"},
            "values": [{"boolValue": false}, {"x": 0}],
        });

        prune(&mut value);

        assert_eq!(
            value,
            json!({
                "name": "0", "parentSpanId": "", "status": {},
                "asInt": "0", "asDouble": 0.0, "sum": 0.0, "value": {"intValue": "0"},
                "values": [{"boolValue": false}, {}],
            })
        );
    }
}
