//! Fault injection over HTTP: the chaos layer on the application routes, the `/chaos` page and the
//! `/api/chaos` JSON API.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use askama::Template;
use axum::{
    Form, Json,
    body::Bytes,
    extract::{Request, State, rejection::FormRejection},
    http::{HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use opentelemetry::{Context, KeyValue, trace::TraceContextExt as _};
use serde::Deserialize;
use tower::{Layer, Service, layer::layer_fn};

use super::{
    error::AppError,
    nav::{Nav, Page},
    state::AppState,
};
use crate::{
    chaos::{Chaos, ChaosSettings, Decision},
    config::faults::parse_memory_stress,
};

/// Header of an answer that chaos made, so that a client can tell it from a real failure.
pub const INJECTED_HEADER: &str = "x-chaos-injected";

type Injected<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

/// The chaos layer of the application routes, made by tower's `layer_fn` as the request layer is.
pub fn layer<S>(chaos: Arc<Chaos>) -> impl Layer<S, Service = ChaosService<S>> + Clone {
    layer_fn(move |inner| ChaosService {
        inner,
        chaos: chaos.clone(),
    })
}

/// The chaos layer's service: the settings in force around the inner service.
#[derive(Clone)]
pub struct ChaosService<S> {
    inner: S,
    chaos: Arc<Chaos>,
}

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

/// `GET /api/chaos`: the settings in force.
pub async fn get_chaos(State(state): State<AppState>) -> Json<ChaosSettings> {
    Json(state.chaos.settings())
}

/// `PUT /api/chaos`: replaces the settings with the JSON body (fields left out take their "off"
/// value); a body that does not parse, has an unknown field or is out of range gets 400 and
/// changes nothing. The body is read whatever its `Content-Type` (axum's `Json` would want
/// `application/json`), because `curl -d`, the way most people try an API, sends a form type.
pub async fn put_chaos(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ChaosSettings>, AppError> {
    let invalid =
        |reason: String| AppError::BadRequest(format!("invalid chaos settings: {reason}"));
    let settings = from_json(&body, state.chaos.panic_allowed()).map_err(invalid)?;
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
        ready = settings.ready,
        healthy = settings.healthy,
        cpu_stress_cores = settings.cpu_stress_cores,
        memory_stress_bytes = settings.memory_stress_bytes,
        "{message}"
    );
}

#[derive(Template)]
#[template(path = "chaos.html")]
struct ChaosPage {
    nav: Nav,
    settings: ChaosSettings,
    message: Option<String>,
    error: Option<String>,
}

/// `GET /chaos`: the settings as a form.
pub async fn get_chaos_page(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    render(ChaosPage {
        nav: Nav::new(Some(Page::Chaos), &state.about),
        settings: state.chaos.settings(),
        message: None,
        error: None,
    })
}

/// `POST /chaos`: applies the form (or, with `action=reset`, the start settings) and shows the
/// page again; an invalid value or an unknown field gets 400 and the form with the reason.
pub async fn post_chaos_page(
    State(state): State<AppState>,
    form: Result<Form<ChaosForm>, FormRejection>,
) -> Response {
    let result = match form {
        Err(rejection) => Err(rejection.body_text()),
        Ok(Form(form)) if form.action.as_deref() == Some("reset") => Ok(state.chaos.reset()),
        Ok(Form(form)) => form
            .settings()
            .and_then(|settings| state.chaos.replace(settings).map_err(|err| err.to_string())),
    };
    let (status, page) = match result {
        Ok(settings) => {
            log_settings(&settings, "chaos settings replaced from the form");
            (
                StatusCode::OK,
                ChaosPage {
                    nav: Nav::new(Some(Page::Chaos), &state.about),
                    settings,
                    message: Some("Settings applied.".to_string()),
                    error: None,
                },
            )
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            ChaosPage {
                nav: Nav::new(Some(Page::Chaos), &state.about),
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

/// Reads a JSON object of settings; the error names the field at fault. `panic_allowed`, which
/// a `GET` shows, may come back only with the value in force (`panic_allowed`), so that a `GET`
/// document can be sent back changed; it is set at start only.
fn from_json(body: &[u8], panic_allowed: bool) -> Result<ChaosSettings, String> {
    // serde would also read a struct from an array of its fields in order: only an object names them.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            "expected a JSON object of settings, such as {\"error_rate\": 0.1}".to_string(),
        );
    }
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|err| format!("expected a JSON object of settings: {err}"))?;
    match object.remove("panic_allowed") {
        None => {}
        Some(serde_json::Value::Bool(value)) if value == panic_allowed => {}
        Some(value) => {
            return Err(format!(
                "panic_allowed: is {panic_allowed}, set at start only (CHAOS_ALLOW_PANIC), not {value}"
            ));
        }
    }
    serde_path_to_error::deserialize(serde_json::Value::Object(object)).map_err(|err| {
        match err.path().to_string().as_str() {
            "." => format!("expected a JSON object of settings: {}", err.inner()),
            path => format!("{path}: {}", err.inner()),
        }
    })
}

/// The fields of the `/chaos` form, as text: an empty field takes its "off" value, so the
/// numbers are read by [`ChaosForm::settings`], which names a bad field.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosForm {
    error_rate: String,
    error_status: String,
    latency_seconds: String,
    jitter_seconds: String,
    latency_rate: String,
    ready: String,
    healthy: String,
    cpu_stress_cores: String,
    memory_stress_bytes: String,
    /// `reset` goes back to the start settings.
    action: Option<String>,
}

impl ChaosForm {
    /// The settings the form describes.
    fn settings(&self) -> Result<ChaosSettings, String> {
        let off = ChaosSettings::default();
        Ok(ChaosSettings {
            error_rate: field("error_rate", &self.error_rate, off.error_rate)?,
            error_status: field("error_status", &self.error_status, off.error_status)?,
            latency_seconds: field(
                "latency_seconds",
                &self.latency_seconds,
                off.latency_seconds,
            )?,
            jitter_seconds: field("jitter_seconds", &self.jitter_seconds, off.jitter_seconds)?,
            latency_rate: field("latency_rate", &self.latency_rate, off.latency_rate)?,
            ready: switch("ready", &self.ready, off.ready)?,
            healthy: switch("healthy", &self.healthy, off.healthy)?,
            cpu_stress_cores: field(
                "cpu_stress_cores",
                &self.cpu_stress_cores,
                off.cpu_stress_cores,
            )?,
            memory_stress_bytes: match self.memory_stress_bytes.trim() {
                "" => off.memory_stress_bytes,
                value => parse_memory_stress(value)
                    .map_err(|reason| format!("memory_stress_bytes: {reason}, not {value:?}"))?,
            },
            panic_allowed: off.panic_allowed,
        })
    }
}

/// One number of the form, or `off` when the field is empty.
fn field<T: std::str::FromStr>(name: &str, value: &str, off: T) -> Result<T, String> {
    match value.trim() {
        "" => Ok(off),
        value => value
            .parse()
            .map_err(|_| format!("{name} must be a number, not {value:?}")),
    }
}

/// A yes-or-no field of the form, or `off` when it is empty.
fn switch(name: &str, value: &str, off: bool) -> Result<bool, String> {
    match value.trim() {
        "" => Ok(off),
        value => crate::config::parse::parse_bool(value)
            .map_err(|reason| format!("{name}: {reason}, not {value:?}")),
    }
}

fn render(page: ChaosPage) -> Result<Html<String>, AppError> {
    page.render()
        .map(Html)
        .map_err(|err| AppError::Internal(format!("rendering the chaos page: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_json_(body: &[u8]) -> Result<ChaosSettings, String> {
        from_json(body, false)
    }

    fn form(body: &str) -> Result<ChaosSettings, String> {
        serde_urlencoded::from_str::<ChaosForm>(body)
            .map_err(|err| err.to_string())?
            .settings()
    }

    #[test]
    fn the_form_reads_every_field_and_leaves_empty_ones_off() {
        let settings = form(
            "error_rate=0.5&error_status=503&latency_seconds=0.2&jitter_seconds=&latency_rate=1",
        )
        .unwrap();

        assert_eq!(
            settings,
            ChaosSettings {
                error_rate: 0.5,
                error_status: 503,
                latency_seconds: 0.2,
                jitter_seconds: 0.0,
                latency_rate: 1.0,
                ..ChaosSettings::default()
            }
        );
    }

    #[test]
    fn json_fields_left_out_are_off_and_unknown_ones_are_refused() {
        let settings = from_json_(br#"{"error_rate": 0.5, "error_status": 503}"#).unwrap();
        let unknown = from_json_(br#"{"error_rat": 0.5}"#).unwrap_err();
        let wrong_type = from_json_(br#"{"latency_seconds": "1s"}"#).unwrap_err();
        let not_an_object = from_json_(b"[1]").unwrap_err();

        assert_eq!(
            settings,
            ChaosSettings {
                error_rate: 0.5,
                error_status: 503,
                ..ChaosSettings::default()
            }
        );
        assert!(unknown.contains("unknown field `error_rat`"), "{unknown}");
        assert!(wrong_type.starts_with("latency_seconds:"), "{wrong_type}");
        assert!(not_an_object.contains("JSON object"), "{not_an_object}");
    }

    #[test]
    fn the_stress_fields_are_also_taken_by_the_names_of_their_variables() {
        let by_variable = from_json_(br#"{"cpu_stress": 1.5, "memory_stress": "2Ki"}"#).unwrap();
        let both = from_json_(br#"{"cpu_stress": 1, "cpu_stress_cores": 2}"#).unwrap_err();

        assert_eq!(
            (
                by_variable.cpu_stress_cores,
                by_variable.memory_stress_bytes
            ),
            (1.5, 2048)
        );
        assert!(
            both.contains("duplicate field `cpu_stress_cores`"),
            "{both}"
        );
    }

    #[test]
    fn the_form_names_a_bad_field_and_refuses_an_unknown_one() {
        let bad = form("error_rate=half").unwrap_err();
        let unknown = form("error_rat=0.5").unwrap_err();

        assert!(bad.contains("error_rate") && bad.contains("half"), "{bad}");
        assert!(unknown.contains("error_rat"), "{unknown}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::{ChaosSettings, form, from_json};

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
                            ..ChaosSettings::default()
                        }
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_json_body_parses_or_is_refused_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = from_json(&body, false);
            }

            #[test]
            fn any_json_object_of_known_fields_parses_or_names_the_field(
                fields in proptest::collection::vec(("(error_rate|error_status|latency_seconds|jitter_seconds|latency_rate|[a-z]{1,8})", any::<f64>()), 0..6)
            ) {
                let object: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                    .collect();
                if let Err(reason) = from_json(serde_json::Value::Object(object).to_string().as_bytes(), false) {
                    prop_assert!(fields.iter().any(|(k, _)| reason.contains(k.as_str())), "{}", reason);
                }
            }

            #[test]
            fn any_form_parses_or_is_refused_without_panicking(body in ".{0,64}") {
                let _ = form(&body);
            }

            #[test]
            fn valid_settings_round_trip_through_json_and_the_form(settings in valid_settings()) {
                let json = serde_json::to_vec(&settings).unwrap();
                let body = format!(
                    "error_rate={}&error_status={}&latency_seconds={}&jitter_seconds={}&latency_rate={}",
                    settings.error_rate,
                    settings.error_status,
                    settings.latency_seconds,
                    settings.jitter_seconds,
                    settings.latency_rate,
                );

                prop_assert_eq!(from_json(&json, false), Ok(settings));
                prop_assert_eq!(form(&body), Ok(settings));
                prop_assert_eq!(settings.validate(), Ok(settings));
            }
        }
    }
}
