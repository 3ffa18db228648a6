//! One call of a downstream's `/chain`: a CLIENT span made straight through the OpenTelemetry SDK,
//! child of the server span, with the attributes of the HTTP client conventions; the trace context
//! injected by the same propagators that extract it (`OTEL_PROPAGATORS`); the duration recorded
//! through [`MetricsBackend::record_client`](crate::metrics::MetricsBackend::record_client).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, HeaderValue, Version, header};
use opentelemetry::{
    Context, KeyValue,
    context::FutureExt as _,
    propagation::TextMapPropagator as _,
    trace::{SpanKind, Status, TraceContextExt as _, Tracer as _},
};
use opentelemetry_http::HeaderInjector;
use url::{Host, Url};

use super::{
    path::PATH_HEADER,
    report::{Call, Hop},
};
use crate::{
    config::Config,
    conventions::{ErrorType, protocol_version},
    errors::root_cause,
    http::request::Instrumentation,
    metrics::{ClientRecord, TraceRef},
};

/// The largest answer read from a downstream; a report nested [`MAX_DEPTH`](super::path::MAX_DEPTH) deep is far
/// smaller.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// A configured downstream, with what its spans and metrics are labelled by, worked out once.
pub struct Downstream {
    /// The URL called: the base URL with `chain` added to its path.
    url: Url,
    /// `url` with any credentials redacted, for spans, pages and logs (`url.full`).
    shown: String,
    /// `server.address`: the host, without brackets for IPv6.
    address: Arc<str>,
    /// `server.port`: the port, or the scheme's default.
    port: u16,
    /// `url.scheme`.
    scheme: &'static str,
}

impl Downstream {
    /// The downstream at `base`, an `http://` or `https://` URL (checked by the configuration).
    pub fn new(base: &Url) -> Self {
        let mut url = base.clone();
        let path = format!("{}/chain", base.path().trim_end_matches('/'));
        url.set_path(&path);
        let mut shown = url.clone();
        // The conventions: credentials never appear in url.full; they are redacted in place.
        if !shown.username().is_empty() || shown.password().is_some() {
            let _ = shown.set_username("REDACTED");
            let _ = shown.set_password(Some("REDACTED"));
        }
        let address = match url.host() {
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        Self {
            port: url.port_or_known_default().unwrap_or(80),
            scheme: if url.scheme() == "https" {
                "https"
            } else {
                "http"
            },
            shown: shown.to_string(),
            address: Arc::from(address),
            url,
        }
    }
}

/// The HTTP client of `/chain`, shared by every call.
pub struct Client {
    /// Why there is no client, if it could not be built; each call then fails, saying why.
    inner: Result<reqwest::Client, String>,
    timeout: Duration,
}

impl Client {
    /// A client for the downstreams of `config`, each call bounded by `DOWNSTREAM_TIMEOUT`. Built
    /// only when there are downstreams: reading the root certificates takes a while.
    pub fn new(config: &Config) -> Self {
        let inner = if config.downstream_url.0.is_empty() {
            Err("no downstream is configured".to_string())
        } else {
            crate::tls::client_builder()
                .and_then(|builder| {
                    builder
                        // Instances call each other directly; a redirect would be a second call.
                        .no_proxy()
                        .redirect(reqwest::redirect::Policy::none())
                        .user_agent(concat!("prom-metrics-app/", env!("CARGO_PKG_VERSION")))
                        .build()
                })
                .map_err(|err| format!("cannot build the HTTP client: {}", root_cause(&err)))
                .inspect_err(|err| tracing::error!(%err, "/chain cannot call its downstreams"))
        };
        Self {
            inner,
            timeout: config.downstream_timeout,
        }
    }

    /// Calls `downstream`'s `/chain` with `path` in [`PATH_HEADER`], in a client span.
    pub async fn call(
        &self,
        tracing: &Instrumentation,
        downstream: &Downstream,
        path: &HeaderValue,
    ) -> Call {
        let parent = Context::current();
        let mut span = tracing
            .tracer
            .span_builder("GET")
            .with_kind(SpanKind::Client);
        if tracing.ids_only.is_none() {
            span = span.with_attributes([
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("server.address", downstream.address.clone()),
                KeyValue::new("server.port", i64::from(downstream.port)),
                KeyValue::new("url.full", downstream.shown.clone()),
            ]);
        }
        let context = parent.with_span(span.start_with_context(&tracing.tracer, &parent));
        let mut headers = HeaderMap::new();
        tracing
            .propagator
            .inject_context(&context, &mut HeaderInjector(&mut headers));
        headers.insert(PATH_HEADER, path.clone());
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));

        let start = Instant::now();
        let mut answer = Answer::default();
        let exchange = self.exchange(downstream, headers, &mut answer);
        if tokio::time::timeout(self.timeout, exchange.with_context(context.clone()))
            .await
            .is_err()
        {
            answer.failure = Some(Failure {
                kind: ErrorType::Timeout,
                cause: format!(
                    "timed out after {} (DOWNSTREAM_TIMEOUT)",
                    shown_duration(self.timeout)
                ),
            });
        }
        let duration = start.elapsed();

        let error_type = error_type(&answer);
        tracing.backend.record_client(&record(
            &context,
            downstream,
            answer.status,
            error_type,
            duration,
        ));
        let call = finish(
            &context,
            downstream,
            answer,
            error_type,
            duration,
            tracing.ids_only.is_none(),
        );
        context.span().end();
        call
    }

    /// Sends the request and reads the answer into `answer`, as far as it gets.
    async fn exchange(&self, downstream: &Downstream, headers: HeaderMap, answer: &mut Answer) {
        let client = match &self.inner {
            Ok(client) => client,
            Err(err) => {
                answer.failure = Some(Failure {
                    kind: ErrorType::Other,
                    cause: err.clone(),
                });
                return;
            }
        };
        let request = client.get(downstream.url.clone()).headers(headers);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                answer.failure = Some(Failure::of(&err));
                return;
            }
        };
        answer.status = Some(response.status().as_u16());
        answer.version = Some(response.version());
        answer.json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if answer.body.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                    answer.body.extend_from_slice(&chunk);
                }
                Ok(Some(_)) => {
                    answer.failure = Some(Failure {
                        kind: ErrorType::InvalidResponse,
                        cause: format!("answer larger than {} KiB", MAX_ANSWER_BYTES / 1024),
                    });
                    return;
                }
                Ok(None) => return,
                Err(err) => {
                    answer.failure = Some(Failure::of(&err));
                    return;
                }
            }
        }
    }
}

/// What came back from a downstream, as far as it got.
#[derive(Default)]
struct Answer {
    status: Option<u16>,
    version: Option<Version>,
    json: bool,
    body: Vec<u8>,
    failure: Option<Failure>,
}

/// Why a call got no usable answer: a bounded kind (`error.type`) and a readable cause.
struct Failure {
    kind: ErrorType,
    cause: String,
}

impl Failure {
    fn of(err: &reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            ErrorType::Timeout
        } else if err.is_connect() {
            ErrorType::ConnectionFailed
        } else if err.is_body() || err.is_decode() {
            ErrorType::InvalidResponse
        } else {
            ErrorType::Other
        };
        let cause = match kind {
            ErrorType::ConnectionFailed => format!("cannot connect: {}", root_cause(err)),
            _ => root_cause(err),
        };
        Self { kind, cause }
    }
}

/// Sets the span's answer attributes and status, and turns the answer into a [`Call`].
fn finish(
    context: &Context,
    downstream: &Downstream,
    answer: Answer,
    error_type: Option<ErrorType>,
    duration: Duration,
    attributes: bool,
) -> Call {
    let span = context.span();
    if attributes {
        if let Some(status) = answer.status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(version) = answer.version.and_then(protocol_version) {
            span.set_attribute(KeyValue::new("network.protocol.version", version));
        }
        if let Some(error_type) = error_type {
            span.set_attribute(KeyValue::new("error.type", error_type.to_string()));
        }
    }
    if let Some(failure) = &answer.failure {
        span.set_status(Status::error(failure.cause.clone()));
        tracing::warn!(downstream = %downstream.shown, cause = %failure.cause, "a /chain call failed");
    } else if let Some(error_type) = error_type {
        // The status code says it all: the conventions leave the description empty.
        span.set_status(Status::error(""));
        tracing::warn!(downstream = %downstream.shown, status = %error_type, "a /chain call failed");
    }
    let hop = (answer.json && answer.failure.is_none())
        .then(|| serde_json::from_slice(&answer.body).ok())
        .flatten()
        .and_then(|value| Hop::from_json(&value));
    Call {
        url: downstream.shown.clone(),
        status: answer.status,
        duration,
        error: answer.failure.map(|f| f.cause),
        hop,
    }
}

/// `error.type` of a call: the failure's kind, else the status of an answer of 400 or more.
fn error_type(answer: &Answer) -> Option<ErrorType> {
    match (&answer.failure, answer.status) {
        (Some(failure), _) => Some(failure.kind),
        (None, Some(status)) if status >= 400 => Some(ErrorType::Status(status)),
        _ => None,
    }
}

/// The call as the client duration histogram records it, with the client span as exemplar.
fn record(
    context: &Context,
    downstream: &Downstream,
    status: Option<u16>,
    error_type: Option<ErrorType>,
    duration: Duration,
) -> ClientRecord {
    let span = context.span();
    let span_context = span.span_context();
    ClientRecord {
        method: "GET",
        server_address: downstream.address.clone(),
        server_port: downstream.port,
        url_scheme: downstream.scheme,
        status,
        error_type,
        duration,
        trace: span_context.is_sampled().then(|| TraceRef {
            trace_id: span_context.trace_id(),
            span_id: span_context.span_id(),
        }),
    }
}

/// `500ms`, `2s`, `1.5s`.
fn shown_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn downstream(base: &str) -> Downstream {
        Downstream::new(&Url::parse(base).unwrap())
    }

    #[test]
    fn chain_is_called_under_the_base_path() {
        assert_eq!(
            downstream("http://b:5000").url.as_str(),
            "http://b:5000/chain"
        );
        assert_eq!(
            downstream("http://b:5000/team/b/").url.as_str(),
            "http://b:5000/team/b/chain"
        );
    }

    #[test]
    fn credentials_are_redacted_from_what_is_shown() {
        let b = downstream("https://user:secret@b.example/");

        assert_eq!(b.shown, "https://REDACTED:REDACTED@b.example/chain");
        assert_eq!(b.url.password(), Some("secret"), "still sent");
        assert_eq!((&*b.address, b.port, b.scheme), ("b.example", 443, "https"));
    }

    #[test]
    fn server_address_and_port_follow_the_conventions() {
        let v6 = downstream("http://[::1]:8080");
        let plain = downstream("http://10.0.0.7");

        assert_eq!((&*v6.address, v6.port), ("::1", 8080));
        assert_eq!(
            (&*plain.address, plain.port, plain.scheme),
            ("10.0.0.7", 80, "http")
        );
    }

    #[test]
    fn error_type_is_the_failure_or_an_error_status() {
        let answer = |status, failure: Option<ErrorType>| Answer {
            status,
            failure: failure.map(|kind| Failure {
                kind,
                cause: String::new(),
            }),
            ..Answer::default()
        };

        assert_eq!(error_type(&answer(Some(200), None)), None);
        assert_eq!(error_type(&answer(Some(302), None)), None);
        assert_eq!(
            error_type(&answer(Some(404), None)),
            Some(ErrorType::Status(404))
        );
        assert_eq!(
            error_type(&answer(Some(200), Some(ErrorType::Timeout))),
            Some(ErrorType::Timeout),
            "a timeout while reading the body"
        );
        assert_eq!(shown_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(shown_duration(Duration::from_millis(1500)), "1.5s");
    }
}
