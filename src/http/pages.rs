//! The HTML pages, rendered from templates compiled into the binary, and their embedded assets.

use std::time::Duration;

use askama::Template;
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use opentelemetry::{
    Context, KeyValue,
    context::FutureExt as _,
    trace::{TraceContextExt as _, Tracer as _},
};

use super::{
    about::About,
    error::{AppError, page_with_status},
    nav::{Nav, Page},
    state::AppState,
};

/// The longest `/do_task` may be asked to take, in seconds.
pub const MAX_TASK_SECONDS: f64 = 60.0;
/// How long `/do_task` takes without `?seconds=`, as in the original.
pub const DEFAULT_TASK_SECONDS: f64 = 5.0;

#[derive(Template)]
#[template(path = "index.html")]
struct HomePage<'a> {
    nav: Nav,
    about: &'a About,
}

#[derive(Template)]
#[template(path = "do_task.html")]
struct TaskPage {
    nav: Nav,
    seconds: f64,
}

#[derive(Template)]
#[template(path = "404.html")]
struct NotFoundPage {
    nav: Nav,
}

fn render(template: &impl Template) -> Result<Html<String>, AppError> {
    template
        .render()
        .map(Html)
        .map_err(|err| AppError::Internal(format!("rendering a page: {err}")))
}

/// `/` and `/index`: the home page, rendered on the first request (see [`home_page`]).
pub async fn get_home(State(state): State<AppState>) -> Html<Bytes> {
    Html(home(&state))
}

/// The home page of `state`'s app, rendered once, on first use.
pub fn home(state: &AppState) -> Bytes {
    state.home.get_or_init(|| home_page(&state.about)).clone()
}

/// The home page: what it shows is fixed at start, so it is rendered once, not per request.
pub fn home_page(about: &About) -> Bytes {
    let nav = Nav::new(Some(Page::Home), about);
    match (HomePage { nav, about }).render() {
        Ok(html) => Bytes::from(html),
        Err(err) => {
            tracing::error!(%err, "rendering the home page");
            Bytes::from_static(b"prom-metrics-app")
        }
    }
}

/// `/do_task`: simulated work of 5 s, or `?seconds=` from 0 to 60, in a child span of its own.
pub async fn do_task(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Html<String>, AppError> {
    let seconds = task_seconds(query.as_deref())?;
    let tracer = &state.tracing.tracer;
    let work = tracer
        .span_builder("do_task work")
        .with_attributes([KeyValue::new("task.seconds", seconds)])
        .start_with_context(tracer, &Context::current());
    let work = Context::current().with_span(work);
    // Inside the child span, so that these lines and records carry its ids: the application's
    // own logs, tied to the trace.
    {
        let _inside = work.clone().attach();
        tracing::info!(task.seconds = seconds, "task started");
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds))
        .with_context(work.clone())
        .await;
    {
        let _inside = work.clone().attach();
        tracing::info!(task.seconds = seconds, "task finished");
    }
    work.span().end();
    render(&TaskPage {
        nav: Nav::new(Some(Page::DoTask), &state.about),
        seconds,
    })
}

/// Reads `seconds` from the query string: a number from 0 to [`MAX_TASK_SECONDS`].
fn task_seconds(query: Option<&str>) -> Result<f64, AppError> {
    let Some(value) = query
        .into_iter()
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find_map(|(key, value)| (key == "seconds").then_some(value))
    else {
        return Ok(DEFAULT_TASK_SECONDS);
    };
    match value.trim().parse::<f64>() {
        Ok(seconds) if (0.0..=MAX_TASK_SECONDS).contains(&seconds) => Ok(seconds),
        _ => Err(AppError::BadRequest(format!(
            "seconds must be a number from 0 to {MAX_TASK_SECONDS}, got '{}'",
            value.chars().take(32).collect::<String>()
        ))),
    }
}

/// Any unknown path: the HTML 404 page.
pub async fn not_found(State(state): State<AppState>) -> Response {
    let nav = Nav::new(None, &state.about);
    page_with_status(StatusCode::NOT_FOUND, &NotFoundPage { nav })
}

/// The stylesheet of every page, embedded so pages look right offline.
pub async fn get_stylesheet() -> impl IntoResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    )
}

/// The script that refreshes `/view_metrics` in place, embedded.
pub async fn get_view_metrics_script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/view_metrics.js"),
    )
}

/// The icon, embedded.
pub async fn get_favicon() -> impl IntoResponse {
    asset("image/svg+xml", include_str!("../../static/favicon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_seconds_defaults_to_five() {
        assert_eq!(task_seconds(None).unwrap(), 5.0);
        assert_eq!(task_seconds(Some("other=1")).unwrap(), 5.0);
    }

    #[test]
    fn task_seconds_accepts_fractions_in_range() {
        assert_eq!(task_seconds(Some("seconds=0.25")).unwrap(), 0.25);
        assert_eq!(task_seconds(Some("seconds=60")).unwrap(), 60.0);
        assert_eq!(task_seconds(Some("seconds=0")).unwrap(), 0.0);
    }

    #[test]
    fn task_seconds_rejects_bad_values_with_a_reason() {
        for bad in [
            "seconds=61",
            "seconds=-1",
            "seconds=abc",
            "seconds=NaN",
            "seconds=inf",
            "seconds=",
        ] {
            let err = task_seconds(Some(bad)).unwrap_err();
            assert!(err.to_string().contains("from 0 to 60"), "{bad}: {err}");
        }
    }
}
