//! The label sets of the Prometheus backend's families and exemplars. Every value is bounded:
//! none comes from raw client input.

use std::{fmt, sync::Arc};

use prometheus_client::encoding::{
    EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
    prometheus_protobuf::prometheus_data_model::LabelPair,
};

use crate::{
    conventions::{ErrorType, URL_SCHEME},
    metrics::TraceRef,
};

/// Labels of `http_server_request_duration_seconds`, the attributes OpenTelemetry's HTTP server
/// metric conventions require. Every value is bounded: a method from a fixed set, a route template
/// from the route table, a status code, and an error type from a fixed set.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub struct HttpLabels {
    pub http_request_method: &'static str,
    pub http_route: &'static str,
    pub http_response_status_code: u16,
    pub error_type: Option<ErrorType>,
}

impl EncodeLabelSet for HttpLabels {
    // By hand, so that `error_type` is left out when there is none: the derive would write
    // `error_type=""` on every successful series.
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("http_request_method", self.http_request_method).encode(encoder.encode_label())?;
        ("http_route", self.http_route).encode(encoder.encode_label())?;
        ("http_response_status_code", self.http_response_status_code)
            .encode(encoder.encode_label())?;
        ("url_scheme", URL_SCHEME).encode(encoder.encode_label())?;
        if let Some(error_type) = self.error_type {
            ("error_type", Displayed(error_type)).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// Labels of `http_client_request_duration_seconds`, the attributes of OpenTelemetry's HTTP client
/// metric conventions. Bounded: the server address and port come from `DOWNSTREAM_URL`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct ClientLabels {
    pub http_request_method: &'static str,
    pub server_address: Arc<str>,
    pub server_port: u16,
    pub url_scheme: &'static str,
    pub http_response_status_code: Option<u16>,
    pub error_type: Option<ErrorType>,
}

impl EncodeLabelSet for ClientLabels {
    // By hand, so that a call without an answer has no status label, and a success no error_type.
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("http_request_method", self.http_request_method).encode(encoder.encode_label())?;
        ("server_address", &*self.server_address).encode(encoder.encode_label())?;
        ("server_port", self.server_port).encode(encoder.encode_label())?;
        ("url_scheme", self.url_scheme).encode(encoder.encode_label())?;
        if let Some(status) = self.http_response_status_code {
            ("http_response_status_code", status).encode(encoder.encode_label())?;
        }
        if let Some(error_type) = self.error_type {
            ("error_type", Displayed(error_type)).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// The exemplar label set; written as hex straight from the ids, without allocating.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    trace_id: Displayed<opentelemetry::trace::TraceId>,
    span_id: Displayed<opentelemetry::trace::SpanId>,
}

/// A label value written through `Display`, without allocating.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct Displayed<T>(pub T);

impl<T: fmt::Display> EncodeLabelValue for Displayed<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_fmt(encoder, format_args!("{}", self.0))
    }
}

impl From<TraceRef> for TraceExemplar {
    fn from(trace: TraceRef) -> Self {
        Self {
            trace_id: Displayed(trace.trace_id),
            span_id: Displayed(trace.span_id),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub revision: &'static str,
}

impl HttpLabels {
    /// The labels as the protobuf format carries them, in the order and with the values of
    /// [`EncodeLabelSet::encode`] (the text formats'); the protobuf messages of the request
    /// histograms are built by the app (see `dual.rs`).
    pub fn protobuf(&self) -> Vec<LabelPair> {
        let pair = |name: &str, value: String| LabelPair {
            name: name.to_string(),
            value,
        };
        let mut pairs = vec![
            pair("http_request_method", self.http_request_method.to_string()),
            pair("http_route", self.http_route.to_string()),
            pair(
                "http_response_status_code",
                self.http_response_status_code.to_string(),
            ),
            pair("url_scheme", URL_SCHEME.to_string()),
        ];
        if let Some(error_type) = self.error_type {
            pairs.push(pair("error_type", error_type.to_string()));
        }
        pairs
    }
}
