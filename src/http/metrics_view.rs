//! `/view_metrics`: the backend's current values as an HTML page (an inline SVG bar chart and
//! tables, refreshed in place by `/static/view_metrics.js`) or as a versioned JSON snapshot
//! (`Accept: application/json` or `?format=json`). Neither form counts anything.

use std::time::SystemTime;

use askama::Template;
use axum::{
    Json,
    extract::{RawQuery, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};

use super::metrics_json::SnapshotJson;
use super::metrics_page::MetricsPage;
use super::{error::AppError, state::AppState};

/// `/view_metrics`: JSON when asked for (`?format=json`, or an `Accept` preferring
/// `application/json`), the page otherwise.
pub async fn get_view_metrics(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let json = wants_json(query.as_deref(), accept)?;
    let snapshot = state.backend.snapshot();
    let chaos = state.chaos.settings();
    let now = SystemTime::now();
    let headers = [
        (header::VARY, "Accept"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    if json {
        let body = SnapshotJson::new(&snapshot, &state.about, now).with_chaos(chaos);
        return Ok((headers, Json(body)).into_response());
    }
    let html = MetricsPage::new(&snapshot, &state.about, now)
        .with_faults(&chaos)
        .render()
        .map_err(|err| AppError::Internal(format!("rendering /view_metrics: {err}")))?;
    Ok((headers, axum::response::Html(html)).into_response())
}

/// Whether to answer JSON: `format=json` or `format=html` decide; without it, JSON when
/// `application/json` has a positive quality at least that of `text/html` (the earlier wins a
/// tie). A browser's `Accept` never names `application/json`, so it gets the page.
fn wants_json(query: Option<&str>, accept: Option<&str>) -> Result<bool, AppError> {
    let format = query
        .into_iter()
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find_map(|(key, value)| (key == "format").then_some(value));
    match format.as_deref() {
        Some("json") => return Ok(true),
        Some("html") => return Ok(false),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "format must be json or html, got '{}'",
                other.chars().take(32).collect::<String>()
            )));
        }
        None => {}
    }
    let mut json = None;
    let mut html = None;
    for (index, (media, quality)) in crate::accept::media_ranges(accept.unwrap_or("")).enumerate() {
        match media.as_str() {
            "application/json" => json = json.or(Some((quality, index))),
            "text/html" => html = html.or(Some((quality, index))),
            _ => {}
        }
    }
    Ok(match (json, html) {
        (Some((q, _)), None) => q > 0.0,
        (Some((jq, ji)), Some((hq, hi))) => jq > 0.0 && (jq > hq || (jq == hq && ji < hi)),
        (None, _) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_parameter_decides_and_rejects_other_values() {
        assert!(wants_json(Some("format=json"), Some("text/html")).unwrap());
        assert!(!wants_json(Some("format=html"), Some("application/json")).unwrap());
        let err = wants_json(Some("format=xml"), None).unwrap_err();
        assert!(err.to_string().contains("json or html"));
    }

    #[test]
    fn accept_picks_json_only_when_preferred() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

        assert!(wants_json(None, Some("application/json")).unwrap());
        assert!(wants_json(None, Some("application/json, text/html;q=0.5")).unwrap());
        assert!(wants_json(None, Some("application/json, text/html")).unwrap());
        assert!(!wants_json(None, Some("text/html, application/json")).unwrap());
        assert!(!wants_json(None, Some("application/json;q=0")).unwrap());
        assert!(!wants_json(None, Some(browser)).unwrap());
        assert!(!wants_json(None, Some("*/*")).unwrap());
        assert!(!wants_json(None, None).unwrap());
    }
}
