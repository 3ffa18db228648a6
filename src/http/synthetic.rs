//! The synthetic series over HTTP: the `/api/synthetic` JSON API and the `/synthetic` page.

use askama::Template;
use axum::{
    Form, Json,
    body::Bytes,
    extract::{State, rejection::FormRejection},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    error::AppError,
    nav::{Nav, Page},
    state::AppState,
};
use crate::{
    config::{SyntheticType, synthetic::format_interval},
    synthetic::{Run, Settings, Truth, Update},
};

/// What `GET /api/synthetic` answers: the settings in force and the ground truth of this moment.
#[derive(Debug, Serialize)]
pub struct Document {
    #[serde(flatten)]
    settings: Settings,
    truth: Truth,
}

impl Document {
    fn of(run: &Run) -> Self {
        Self {
            settings: run.settings.clone(),
            truth: run.frame().truth(),
        }
    }
}

/// `GET /api/synthetic`: the settings in force and what they expose now.
pub async fn get_synthetic(State(state): State<AppState>) -> Json<Document> {
    Json(Document::of(&state.synthetic.run()))
}

/// `PUT /api/synthetic`: replaces the settings with the JSON body, each field left out taking its
/// default and `truth` ignored, and starts a new run; a body that does not parse, has an unknown
/// field or a value out of range gets 400 and changes nothing. Read whatever its `Content-Type`,
/// as `PUT /api/chaos` is.
pub async fn put_synthetic(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Document>, AppError> {
    let invalid =
        |reason: String| AppError::BadRequest(format!("invalid synthetic settings: {reason}"));
    let settings = from_json(&body)
        .map_err(invalid)?
        .settings()
        .map_err(|err| invalid(err.to_string()))?;
    let run = state
        .synthetic
        .replace(settings)
        .map_err(|err| invalid(err.to_string()))?;
    run.settings.log("synthetic settings replaced");
    Ok(Json(Document::of(&run)))
}

/// `DELETE /api/synthetic`: back to the settings the app started with, in a new run.
pub async fn delete_synthetic(State(state): State<AppState>) -> Json<Document> {
    let run = state.synthetic.reset();
    run.settings.log("synthetic settings reset");
    Json(Document::of(&run))
}

/// Reads a JSON object of settings; the error names the field at fault.
fn from_json(body: &[u8]) -> Result<Update, String> {
    // serde would also read a struct from an array of its fields in order: only an object names them.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err("expected a JSON object of settings, such as {\"metrics\": 10}".to_string());
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)).map_err(
        |err| match err.path().to_string().as_str() {
            "." => format!("expected a JSON object of settings: {}", err.inner()),
            path => format!("{path}: {}", err.inner()),
        },
    )
}

#[derive(Template)]
#[template(path = "synthetic.html")]
struct SyntheticPage {
    nav: Nav,
    settings: Settings,
    value_interval: String,
    churn: String,
    truth: Truth,
    types: [&'static str; 4],
    message: Option<String>,
    error: Option<String>,
}

impl SyntheticPage {
    fn new(state: &AppState, message: Option<String>, error: Option<String>) -> Self {
        let run = state.synthetic.run();
        Self {
            nav: Nav::new(None::<Page>, &state.about),
            value_interval: format_interval(run.settings.value_interval),
            churn: format_interval(run.settings.churn),
            truth: run.frame().truth(),
            settings: run.settings.clone(),
            types: [
                SyntheticType::Gauge,
                SyntheticType::Counter,
                SyntheticType::Histogram,
                SyntheticType::NativeHistogram,
            ]
            .map(SyntheticType::name),
            message,
            error,
        }
    }
}

/// `GET /synthetic`: the settings as a form, with the ground truth.
pub async fn get_synthetic_page(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    render(SyntheticPage::new(&state, None, None))
}

/// `POST /synthetic`: applies the form (or, with `action=reset`, the start settings) and shows the
/// page again; an invalid value or an unknown field gets 400 and the form with the reason.
pub async fn post_synthetic_page(
    State(state): State<AppState>,
    form: Result<Form<SyntheticForm>, FormRejection>,
) -> Response {
    let result = match form {
        Err(rejection) => Err(rejection.body_text()),
        Ok(Form(form)) if form.action.as_deref() == Some("reset") => Ok(state.synthetic.reset()),
        Ok(Form(form)) => form.settings().and_then(|settings| {
            state
                .synthetic
                .replace(settings)
                .map_err(|err| err.to_string())
        }),
    };
    let (status, page) = match result {
        Ok(run) => {
            run.settings
                .log("synthetic settings replaced from the form");
            (
                StatusCode::OK,
                SyntheticPage::new(&state, Some("Settings applied.".to_string()), None),
            )
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            SyntheticPage::new(&state, None, Some(error)),
        ),
    };
    match render(page) {
        Ok(html) => (status, html).into_response(),
        Err(err) => err.into_response(),
    }
}

/// The fields of the `/synthetic` form, as text: an empty field takes its default.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticForm {
    metrics: String,
    series_per_metric: String,
    labels: String,
    r#type: String,
    value_interval: String,
    churn: String,
    churn_ratio: String,
    /// `reset` goes back to the start settings.
    action: Option<String>,
}

impl SyntheticForm {
    /// The settings the form describes, as a JSON update would: the same defaults and checks.
    fn settings(&self) -> Result<Settings, String> {
        let mut object = serde_json::Map::new();
        for (name, value) in [
            ("metrics", &self.metrics),
            ("series_per_metric", &self.series_per_metric),
            ("labels", &self.labels),
            ("churn_ratio", &self.churn_ratio),
        ] {
            if let Some(value) = number(name, value)? {
                object.insert(name.to_string(), value);
            }
        }
        for (name, value) in [
            ("type", &self.r#type),
            ("value_interval", &self.value_interval),
            ("churn", &self.churn),
        ] {
            if !value.trim().is_empty() {
                object.insert(name.to_string(), value.trim().to_ascii_lowercase().into());
            }
        }
        let body = serde_json::Value::Object(object).to_string();
        from_json(body.as_bytes())?
            .settings()
            .map_err(|err| err.to_string())
    }
}

/// One number of the form, or none when the field is empty.
fn number(name: &str, value: &str) -> Result<Option<serde_json::Value>, String> {
    match value.trim() {
        "" => Ok(None),
        value => serde_json::from_str::<serde_json::Number>(value)
            .map(|n| Some(n.into()))
            .map_err(|_| format!("{name} must be a number, not {value:?}")),
    }
}

fn render(page: SyntheticPage) -> Result<Html<String>, AppError> {
    page.render()
        .map(Html)
        .map_err(|err| AppError::Internal(format!("rendering the synthetic page: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Result<Settings, String> {
        serde_urlencoded::from_str::<SyntheticForm>(body)
            .map_err(|err| err.to_string())?
            .settings()
    }

    #[test]
    fn the_form_reads_every_field_and_leaves_empty_ones_at_their_defaults() {
        let settings = form(
            "metrics=3&series_per_metric=50&labels=2&type=Counter&value_interval=5s&churn=&churn_ratio=0.5",
        )
        .unwrap();

        assert_eq!(
            settings,
            Settings {
                metrics: 3,
                series_per_metric: 50,
                labels: 2,
                kind: SyntheticType::Counter,
                value_interval: std::time::Duration::from_secs(5),
                churn_ratio: 0.5,
                ..Settings::default()
            }
        );
    }

    #[test]
    fn json_durations_are_text_or_seconds_and_are_written_back_as_prometheus_does() {
        let seconds = from_json(br#"{"churn": 90, "value_interval": "1m30s"}"#)
            .unwrap()
            .settings()
            .unwrap();
        let fraction = from_json(br#"{"churn": 0.5}"#).unwrap_err();
        let written = serde_json::to_value(&seconds).unwrap();

        assert_eq!(seconds.churn, std::time::Duration::from_secs(90));
        assert_eq!(seconds.value_interval, std::time::Duration::from_secs(90));
        assert!(fraction.starts_with("churn:"), "{fraction}");
        assert_eq!(
            (&written["churn"], &written["value_interval"]),
            (&serde_json::json!("1m30s"), &serde_json::json!("1m30s"))
        );
    }

    #[test]
    fn the_form_and_the_json_name_a_bad_field() {
        let bad = form("metrics=many").unwrap_err();
        let range = form("labels=40").unwrap_err();
        let unknown = from_json(br#"{"series": 3}"#).unwrap_err();
        let kind = from_json(br#"{"type": "summary"}"#).unwrap_err();

        assert!(bad.contains("metrics") && bad.contains("many"), "{bad}");
        assert!(range.starts_with("labels:"), "{range}");
        assert!(unknown.contains("unknown field `series`"), "{unknown}");
        assert!(kind.starts_with("type:"), "{kind}");
    }
}
