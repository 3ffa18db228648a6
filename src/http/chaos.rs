//! Fault injection over HTTP: the chaos layer on the application routes, `/status/{code}`, the
//! `/chaos` page and the `/api/chaos` JSON API.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use askama::Template;
use axum::{
    Json,
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use opentelemetry::{Context, KeyValue, trace::TraceContextExt as _};
use tower::{Layer, Service};

use super::{AppError, AppState};
use crate::chaos::{Chaos, ChaosSettings, Decision};

/// Header of an answer that chaos made, so that a client can tell it from a real failure.
pub const INJECTED_HEADER: &str = "x-chaos-injected";

/// Applies the chaos settings to the requests of one application route.
#[derive(Clone)]
pub struct ChaosLayer(pub Arc<Chaos>);

impl<S> Layer<S> for ChaosLayer {
    type Service = ChaosService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ChaosService {
            inner,
            chaos: self.0.clone(),
        }
    }
}

/// The service of [`ChaosLayer`].
#[derive(Clone)]
pub struct ChaosService<S> {
    inner: S,
    chaos: Arc<Chaos>,
}

type Injected<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S> Service<Request> for ChaosService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ChaosFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let decision = self.chaos.decide();
        if decision == Decision::default() {
            return ChaosFuture::Untouched {
                inner: self.inner.call(request),
            };
        }
        // Chaos is on for this request: a boxed future costs nothing next to the delay.
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        ChaosFuture::Injected {
            future: Box::pin(inject(decision, inner, request)),
        }
    }
}

/// Waits, then fails or calls the handler, as `decision` says; each step is an event on the
/// request's span (the tracing layer attaches its context on every poll).
async fn inject<S>(decision: Decision, mut inner: S, request: Request) -> Result<Response, S::Error>
where
    S: Service<Request, Response = Response>,
{
    if let Some(delay) = decision.delay {
        mark(
            "chaos.latency",
            KeyValue::new("chaos.delay_seconds", delay.as_secs_f64()),
        );
        tokio::time::sleep(delay).await;
    }
    match decision.error_status {
        Some(status) => {
            mark(
                "chaos.error",
                KeyValue::new("http.response.status_code", i64::from(status)),
            );
            Ok(injected_failure(status))
        }
        None => {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            inner.call(request).await
        }
    }
}

/// Marks the current span as changed by chaos: the attribute `chaos.injected` and an event.
fn mark(event: &'static str, attribute: KeyValue) {
    Context::map_current(|context| {
        let span = context.span();
        span.set_attribute(KeyValue::new("chaos.injected", true));
        span.add_event(event, vec![attribute]);
    });
}

/// The answer of an injected failure: the status, a short reason and [`INJECTED_HEADER`].
fn injected_failure(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        format!("{status}: failure injected by the chaos settings (/chaos)\n"),
    )
        .into_response();
    response
        .headers_mut()
        .insert(INJECTED_HEADER, HeaderValue::from_static("error"));
    response
}

pin_project_lite::pin_project! {
    /// The handler's own future, or, when chaos acts, the boxed injection.
    #[project = ChaosFutureProjection]
    pub enum ChaosFuture<F, E> {
        Untouched { #[pin] inner: F },
        Injected { future: Injected<E> },
    }
}

impl<F, E> Future for ChaosFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project() {
            ChaosFutureProjection::Untouched { inner } => inner.poll(cx),
            ChaosFutureProjection::Injected { future } => future.as_mut().poll(cx),
        }
    }
}

/// `/status/{code}`: answers with `code`, from 200 to 599, and a short body. Counted like any
/// application route. An informational status (1xx) cannot end an HTTP exchange (the server would
/// turn it into a 500), so it is refused with the other invalid codes.
pub async fn any_status(Path(code): Path<String>) -> Result<Response, AppError> {
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "invalid status code {:?}: expected a number from 200 to 599 (a 1xx status cannot be a final answer)",
                code.chars().take(16).collect::<String>()
            ))
        })?;
    let reason = status.canonical_reason().unwrap_or("");
    Ok((status, format!("{} {reason}\n", status.as_u16())).into_response())
}

/// `GET /api/chaos`: the settings in force.
pub async fn get_chaos(State(state): State<AppState>) -> Json<ChaosSettings> {
    Json(state.chaos.settings())
}

/// `PUT /api/chaos`: replaces the settings with the JSON body (fields left out take their "off"
/// value); a body that does not parse or is out of range gets 400 and changes nothing.
pub async fn put_chaos(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ChaosSettings>, AppError> {
    let invalid =
        |reason: String| AppError::BadRequest(format!("invalid chaos settings: {reason}"));
    let settings = from_json(&body).map_err(invalid)?;
    let settings = state
        .chaos
        .replace(settings)
        .map_err(|err| invalid(err.to_string()))?;
    log_settings(&settings, "chaos settings replaced");
    Ok(Json(settings))
}

/// `DELETE /api/chaos`: back to the settings the app started with.
pub async fn delete_chaos(State(state): State<AppState>) -> Json<ChaosSettings> {
    let settings = state.chaos.reset();
    log_settings(&settings, "chaos settings reset");
    Json(settings)
}

/// One log line with every setting as a field of its own.
fn log_settings(settings: &ChaosSettings, message: &str) {
    tracing::info!(
        error_rate = settings.error_rate,
        error_status = settings.error_status,
        latency_seconds = settings.latency_seconds,
        jitter_seconds = settings.jitter_seconds,
        latency_rate = settings.latency_rate,
        "{message}"
    );
}

#[derive(Template)]
#[template(path = "chaos.html")]
struct ChaosPage {
    settings: ChaosSettings,
    message: Option<String>,
    error: Option<String>,
}

/// `GET /chaos`: the settings as a form.
pub async fn get_chaos_page(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    render(ChaosPage {
        settings: state.chaos.settings(),
        message: None,
        error: None,
    })
}

/// `POST /chaos`: applies the form (or, with `action=reset`, the start settings) and shows the
/// page again; an invalid value gets 400 and the form with the reason.
pub async fn post_chaos_page(State(state): State<AppState>, body: Bytes) -> Response {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let result = if fields.iter().any(|(k, v)| k == "action" && v == "reset") {
        Ok(state.chaos.reset())
    } else {
        from_form(&fields)
            .and_then(|settings| state.chaos.replace(settings).map_err(|err| err.to_string()))
    };
    let (status, page) = match result {
        Ok(settings) => {
            log_settings(&settings, "chaos settings replaced from the form");
            (
                StatusCode::OK,
                ChaosPage {
                    settings,
                    message: Some("Settings applied.".to_string()),
                    error: None,
                },
            )
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            ChaosPage {
                settings: state.chaos.settings(),
                message: None,
                error: Some(error),
            },
        ),
    };
    match render(page) {
        Ok(html) => (status, html).into_response(),
        Err(err) => err.into_response(),
    }
}

/// Reads a JSON object of settings; a field left out takes its "off" value, an unknown one is
/// refused (a typo must not pass for "off").
fn from_json(body: &[u8]) -> Result<ChaosSettings, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|err| format!("expected a JSON object of settings: {err}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("expected a JSON object of settings, not {value}"))?;
    let mut settings = ChaosSettings::default();
    for (name, value) in object {
        let number = || {
            value
                .as_f64()
                .ok_or_else(|| format!("{name} must be a number, not {value}"))
        };
        match name.as_str() {
            "error_rate" => settings.error_rate = number()?,
            "error_status" => {
                settings.error_status = value
                    .as_u64()
                    .and_then(|status| u16::try_from(status).ok())
                    .ok_or_else(|| format!("error_status must be a status code, not {value}"))?
            }
            "latency_seconds" => settings.latency_seconds = number()?,
            "jitter_seconds" => settings.jitter_seconds = number()?,
            "latency_rate" => settings.latency_rate = number()?,
            other => {
                return Err(format!(
                    "unknown field {other:?}; the fields are error_rate, error_status, latency_seconds, jitter_seconds and latency_rate"
                ));
            }
        }
    }
    Ok(settings)
}

/// Reads the form's fields; an empty or missing field takes its "off" value.
fn from_form(fields: &[(String, String)]) -> Result<ChaosSettings, String> {
    let mut settings = ChaosSettings::default();
    for (name, value) in fields {
        let value = value.trim();
        if value.is_empty() || name == "action" {
            continue;
        }
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| format!("{name} must be a number, not {value:?}"))
        };
        match name.as_str() {
            "error_rate" => settings.error_rate = number()?,
            "error_status" => {
                settings.error_status = value
                    .parse()
                    .map_err(|_| format!("error_status must be a status code, not {value:?}"))?
            }
            "latency_seconds" => settings.latency_seconds = number()?,
            "jitter_seconds" => settings.jitter_seconds = number()?,
            "latency_rate" => settings.latency_rate = number()?,
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    Ok(settings)
}

fn render(page: ChaosPage) -> Result<Html<String>, AppError> {
    page.render()
        .map(Html)
        .map_err(|err| AppError::Internal(format!("rendering the chaos page: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_reads_every_field_and_leaves_empty_ones_off() {
        let settings = from_form(&fields(&[
            ("error_rate", "0.5"),
            ("error_status", "503"),
            ("latency_seconds", "0.2"),
            ("jitter_seconds", ""),
            ("latency_rate", "1"),
        ]))
        .unwrap();

        assert_eq!(
            settings,
            ChaosSettings {
                error_rate: 0.5,
                error_status: 503,
                latency_seconds: 0.2,
                jitter_seconds: 0.0,
                latency_rate: 1.0,
            }
        );
    }

    #[test]
    fn json_fields_left_out_are_off_and_unknown_ones_are_refused() {
        let settings = from_json(br#"{"error_rate": 0.5, "error_status": 503}"#).unwrap();
        let unknown = from_json(br#"{"error_rat": 0.5}"#).unwrap_err();
        let wrong_type = from_json(br#"{"latency_seconds": "1s"}"#).unwrap_err();

        assert_eq!(
            settings,
            ChaosSettings {
                error_rate: 0.5,
                error_status: 503,
                ..ChaosSettings::default()
            }
        );
        assert!(unknown.contains("unknown field \"error_rat\""), "{unknown}");
        assert!(wrong_type.contains("latency_seconds"), "{wrong_type}");
    }

    #[test]
    fn the_form_names_a_bad_field() {
        let err = from_form(&fields(&[("error_rate", "half")])).unwrap_err();

        assert!(err.contains("error_rate") && err.contains("half"), "{err}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::{from_form, from_json};
        use crate::chaos::ChaosSettings;

        fn valid_settings() -> impl Strategy<Value = ChaosSettings> {
            (
                0.0..=1.0f64,
                400u16..=599,
                0.0..=30.0f64,
                0.0..=30.0f64,
                0.0..=1.0f64,
            )
                .prop_map(
                    |(error_rate, error_status, latency_seconds, jitter_seconds, latency_rate)| {
                        ChaosSettings {
                            error_rate,
                            error_status,
                            latency_seconds,
                            jitter_seconds,
                            latency_rate,
                        }
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_json_body_parses_or_is_refused_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = from_json(&body);
            }

            #[test]
            fn any_json_object_of_known_fields_parses_or_names_the_field(
                fields in proptest::collection::vec(("(error_rate|error_status|latency_seconds|jitter_seconds|latency_rate|[a-z]{1,8})", any::<f64>()), 0..6)
            ) {
                let object: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                    .collect();
                if let Err(reason) = from_json(serde_json::Value::Object(object).to_string().as_bytes()) {
                    prop_assert!(fields.iter().any(|(k, _)| reason.contains(k.as_str())), "{}", reason);
                }
            }

            #[test]
            fn any_form_parses_or_is_refused_without_panicking(
                fields in proptest::collection::vec((".{0,16}", ".{0,16}"), 0..8)
            ) {
                let _ = from_form(&fields);
            }

            #[test]
            fn valid_settings_round_trip_through_json_and_the_form(settings in valid_settings()) {
                let json = serde_json::to_vec(&settings).unwrap();
                let form: Vec<(String, String)> = [
                    ("error_rate", settings.error_rate.to_string()),
                    ("error_status", settings.error_status.to_string()),
                    ("latency_seconds", settings.latency_seconds.to_string()),
                    ("jitter_seconds", settings.jitter_seconds.to_string()),
                    ("latency_rate", settings.latency_rate.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();

                prop_assert_eq!(from_json(&json), Ok(settings));
                prop_assert_eq!(from_form(&form), Ok(settings));
                prop_assert_eq!(settings.validate(), Ok(settings));
            }
        }
    }
}
