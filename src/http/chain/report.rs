//! What `/chain` answers: the hops it saw, as JSON (read back by a calling instance to nest them)
//! or as an HTML page.
//!
//! The JSON form, one hop:
//! `{"service":"a","instance":"5f0c…","status":502,"reason":"…","duration_ms":12.5,"path":["…"],
//! "calls":[{"url":"http://b:5000/chain","status":200,"duration_ms":11.9,"error":"…","hop":{…}}]}`;
//! `reason`, a call's `status`, `error` and `hop` appear only when there is one.

use std::time::Duration;

use askama::Template;
use axum::{
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use super::path::MAX_DEPTH;
use crate::http::{error::AppError, nav::Nav};

/// The longest reason kept from a downstream's report.
const MAX_REASON: usize = 1024;

/// One instance on the path, with the calls it made.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// Its `service.name`.
    pub service: String,
    /// Its random id.
    pub instance: String,
    /// What it answered: 200, 502 or 508.
    pub status: u16,
    /// Why it did not answer 200.
    pub reason: Option<String>,
    /// Time it took, calls included.
    pub duration: Duration,
    /// The ids of the instances before it.
    pub path: Vec<String>,
    /// Its downstream calls, in order.
    pub calls: Vec<Call>,
}

/// One call of a downstream's `/chain`, as its caller saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The URL called, credentials redacted.
    pub url: String,
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// Time from sending to having read the answer, or to giving up.
    pub duration: Duration,
    /// Why no usable answer came: a timeout, a refused connection, an unreadable answer.
    pub error: Option<String>,
    /// The downstream's own report, when it sent one.
    pub hop: Option<Hop>,
}

impl Hop {
    /// A hop that has made no call yet: a 200 leaf.
    pub fn new(service: &str, instance: &str, path: Vec<String>) -> Self {
        Self {
            service: service.to_string(),
            instance: instance.to_string(),
            status: 200,
            reason: None,
            duration: Duration::ZERO,
            path,
            calls: Vec::new(),
        }
    }

    /// Answers `status` for `reason`.
    pub fn fail(&mut self, status: u16, reason: String) {
        self.status = status;
        self.reason = Some(reason);
    }

    /// Sets the status from the calls: a loop below (508) comes first, then the first failed call
    /// (502); the reason names the downstream, then its own reason or the cause.
    pub fn settle(&mut self) {
        let looped = self.calls.iter().find(|c| c.status == Some(508));
        let failed = looped.or_else(|| self.calls.iter().find(|c| c.failed()));
        let Some(call) = failed else {
            return;
        };
        let status = if looped.is_some() { 508 } else { 502 };
        let reason = format!("{}: {}", call.url, call.cause());
        self.fail(status, reason);
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let mut hop = Map::new();
        hop.insert("service".into(), json!(self.service));
        hop.insert("instance".into(), json!(self.instance));
        hop.insert("status".into(), json!(self.status));
        if let Some(reason) = &self.reason {
            hop.insert("reason".into(), json!(reason));
        }
        hop.insert("duration_ms".into(), json!(millis(self.duration)));
        hop.insert("path".into(), json!(self.path));
        let calls: Vec<Value> = self.calls.iter().map(Call::to_json).collect();
        hop.insert("calls".into(), Value::Array(calls));
        Value::Object(hop)
    }

    /// Reads the JSON form back, `None` if it is not one. Nesting deeper than [`MAX_DEPTH`] is cut
    /// off, and strings are shortened, so a downstream cannot make the answer grow without bound.
    pub fn from_json(value: &Value) -> Option<Self> {
        Self::read(value, 0)
    }

    fn read(value: &Value, depth: usize) -> Option<Self> {
        let text = |key: &str| value.get(key)?.as_str().map(|s| shorten(s, 128));
        let calls = match value.get("calls")?.as_array() {
            Some(calls) if depth < MAX_DEPTH => calls
                .iter()
                .take(MAX_DEPTH * 4)
                .filter_map(|call| Call::read(call, depth))
                .collect(),
            _ => Vec::new(),
        };
        Some(Self {
            service: text("service")?,
            instance: text("instance")?,
            status: value.get("status")?.as_u64()?.try_into().ok()?,
            reason: value
                .get("reason")
                .and_then(Value::as_str)
                .map(|s| shorten(s, MAX_REASON)),
            duration: duration(value.get("duration_ms")),
            path: value
                .get("path")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .take(MAX_DEPTH)
                        .filter_map(|id| id.as_str().map(|s| shorten(s, 64)))
                        .collect()
                })
                .unwrap_or_default(),
            calls,
        })
    }
}

impl Call {
    /// Whether the call went wrong: no usable answer, or a status of 400 or more.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.status.is_none_or(|status| status >= 400)
    }

    /// Why it went wrong, for the caller's reason.
    fn cause(&self) -> String {
        if let Some(error) = &self.error {
            return error.clone();
        }
        if let Some(reason) = self.hop.as_ref().and_then(|hop| hop.reason.as_ref()) {
            return reason.clone();
        }
        match self.status {
            Some(status) => format!("answered {}", status_text(status)),
            None => "no answer".to_string(),
        }
    }

    fn to_json(&self) -> Value {
        let mut call = Map::new();
        call.insert("url".into(), json!(self.url));
        if let Some(status) = self.status {
            call.insert("status".into(), json!(status));
        }
        call.insert("duration_ms".into(), json!(millis(self.duration)));
        if let Some(error) = &self.error {
            call.insert("error".into(), json!(error));
        }
        if let Some(hop) = &self.hop {
            call.insert("hop".into(), hop.to_json());
        }
        Value::Object(call)
    }

    fn read(value: &Value, depth: usize) -> Option<Self> {
        Some(Self {
            url: shorten(value.get("url")?.as_str()?, 512),
            status: value
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| s.try_into().ok()),
            duration: duration(value.get("duration_ms")),
            error: value
                .get("error")
                .and_then(Value::as_str)
                .map(|s| shorten(s, MAX_REASON)),
            hop: value.get("hop").and_then(|hop| Hop::read(hop, depth + 1)),
        })
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

fn duration(value: Option<&Value>) -> Duration {
    let millis = value.and_then(Value::as_f64).unwrap_or(0.0);
    Duration::try_from_secs_f64(millis / 1e3).unwrap_or_default()
}

fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// `502 Bad Gateway`, `508 Loop Detected`.
fn status_text(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The JSON answer, with the hop's status.
pub fn json_response(hop: &Hop) -> Response {
    let status = StatusCode::from_u16(hop.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        hop.to_json().to_string(),
    )
        .into_response()
}

/// One line of the page's table: a hop, indented by its depth.
struct Row {
    indent: String,
    /// The hop's service, or the URL called when no report came back.
    name: String,
    /// Whether the hop sent its report, so that `name` is its service.
    reported: bool,
    /// The URL called, under the service's name; `None` for this instance and when `name` is it.
    url: Option<String>,
    /// The hop's instance id, when it sent its report.
    instance: Option<String>,
    status: String,
    /// Whether the call or the hop failed.
    failed: bool,
    millis: String,
    /// Why it failed.
    note: String,
}

#[derive(Template)]
#[template(path = "chain.html")]
struct ChainPage {
    nav: Nav,
    status: String,
    reason: Option<String>,
    rows: Vec<Row>,
}

/// The HTML page, with the hop's status and the navigation `nav`.
pub fn html_response(hop: &Hop, nav: Nav) -> Response {
    let mut rows = vec![Row {
        indent: String::new(),
        name: hop.service.clone(),
        reported: true,
        url: None,
        instance: Some(hop.instance.clone()),
        status: status_text(hop.status),
        failed: hop.status >= 400,
        millis: format!("{:.1}", millis(hop.duration)),
        note: String::new(),
    }];
    add_rows(&mut rows, &hop.calls, 1);
    let page = ChainPage {
        nav,
        status: status_text(hop.status),
        reason: hop.reason.clone(),
        rows,
    };
    let status = StatusCode::from_u16(hop.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(err) => AppError::Internal(format!("rendering the chain page: {err}")).into_response(),
    }
}

/// A row per call, then the calls of the hop it reached; a call that brought back no report
/// shows the URL it called and why it failed.
fn add_rows(rows: &mut Vec<Row>, calls: &[Call], depth: usize) {
    for call in calls {
        let hop = call.hop.as_ref();
        rows.push(Row {
            indent: format!("{}└ ", "\u{a0}\u{a0}\u{a0}".repeat(depth - 1)),
            name: hop.map_or_else(|| call.url.clone(), |h| h.service.clone()),
            reported: hop.is_some(),
            url: hop.map(|_| call.url.clone()),
            instance: hop.map(|h| h.instance.clone()),
            status: call
                .status
                .map_or_else(|| "no answer".to_string(), status_text),
            failed: call.failed(),
            millis: format!("{:.1}", millis(call.duration)),
            note: if call.failed() {
                call.cause()
            } else {
                String::new()
            },
        });
        if let Some(hop) = hop {
            add_rows(rows, &hop.calls, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(url: &str, status: Option<u16>, error: Option<&str>, hop: Option<Hop>) -> Call {
        Call {
            url: url.to_string(),
            status,
            duration: Duration::from_millis(12),
            error: error.map(str::to_string),
            hop,
        }
    }

    fn leaf(service: &str) -> Hop {
        Hop::new(service, &format!("{service}-id"), vec!["a-id".to_string()])
    }

    #[test]
    fn a_hop_without_calls_is_a_200_leaf() {
        let mut hop = leaf("c");

        hop.settle();

        assert_eq!((hop.status, hop.reason), (200, None));
    }

    #[test]
    fn a_failed_call_makes_a_502_naming_the_downstream_and_the_cause() {
        let mut hop = leaf("a");
        hop.calls = vec![
            call("http://b/chain", Some(200), None, Some(leaf("b"))),
            call("http://c/chain", None, Some("no answer within 500ms"), None),
        ];

        hop.settle();

        assert_eq!(hop.status, 502);
        assert_eq!(
            hop.reason.as_deref(),
            Some("http://c/chain: no answer within 500ms")
        );
    }

    #[test]
    fn a_loop_below_comes_first_and_its_reason_is_passed_up() {
        let mut below = leaf("a");
        below.fail(
            508,
            "loop detected: instance a-id (a) is already on the path a-id -> b-id".into(),
        );
        let mut hop = leaf("b");
        hop.calls = vec![
            call("http://x/chain", Some(500), None, None),
            call("http://a/chain", Some(508), None, Some(below)),
        ];

        hop.settle();

        assert_eq!(hop.status, 508);
        assert_eq!(
            hop.reason.as_deref(),
            Some(
                "http://a/chain: loop detected: instance a-id (a) is already on the path a-id -> b-id"
            )
        );
    }

    #[test]
    fn an_error_status_without_a_report_is_named() {
        let mut hop = leaf("a");
        hop.calls = vec![call("http://b/chain", Some(404), None, None)];

        hop.settle();

        assert_eq!(
            hop.reason.as_deref(),
            Some("http://b/chain: answered 404 Not Found")
        );
    }

    #[test]
    fn the_json_form_reads_back_as_the_same_hops() {
        let mut hop = leaf("a");
        hop.duration = Duration::from_micros(12_345);
        hop.calls = vec![
            call("http://b/chain", Some(200), None, Some(leaf("b"))),
            call("http://c/chain", None, Some("cannot connect"), None),
        ];
        hop.settle();

        let json = hop.to_json();
        let back = Hop::from_json(&json).unwrap();

        assert_eq!(back, hop);
        assert_eq!(json["calls"][0]["hop"]["service"], "b");
        assert!(json["calls"][1].get("status").is_none());
        assert!(Hop::from_json(&json!({"service": "x"})).is_none());
    }

    #[test]
    fn nesting_from_a_downstream_is_cut_at_the_maximum_depth() {
        let mut hop = leaf("deepest");
        for i in 0..20 {
            let mut parent = leaf(&format!("s{i}"));
            parent.calls = vec![call("http://x/chain", Some(200), None, Some(hop))];
            hop = parent;
        }

        let back = Hop::from_json(&hop.to_json()).unwrap();

        let mut depth = 0;
        let mut current = &back;
        while let Some(next) = current.calls.first().and_then(|c| c.hop.as_ref()) {
            current = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
    }

    #[tokio::test]
    async fn the_page_escapes_what_downstreams_report() {
        let mut below = leaf("<b>");
        below.fail(502, "<script>alert(1)</script>".into());
        let mut hop = leaf("a");
        hop.calls = vec![call("http://b/chain", Some(502), None, Some(below))];
        hop.settle();

        let response = html_response(&hop, Nav::without_state());
        assert_eq!(response.status(), 502);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();

        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&#60;script&#62;alert(1)"), "{page}");
        assert!(page.contains("&#60;b&#62;"), "{page}");
        assert!(page.contains("502 Bad Gateway"), "{page}");
    }

    #[tokio::test]
    async fn a_call_without_a_report_shows_the_url_called_and_why() {
        let mut hop = leaf("a");
        hop.calls = vec![
            call("http://b/chain", Some(200), None, Some(leaf("b"))),
            call("http://down:5000/chain", None, Some("cannot connect"), None),
        ];
        hop.settle();

        let response = html_response(&hop, Nav::without_state());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();

        let failed = page
            .split("<tr class=\"failed\">")
            .last()
            .and_then(|row| row.split("</tr>").next())
            .unwrap();
        assert!(
            failed.contains("└ <span class=\"url\">http://down:5000/chain</span>"),
            "{failed}"
        );
        assert!(failed.contains("no report"), "{failed}");
        assert!(failed.contains(">cannot connect</td>"), "{failed}");
        assert!(!page.contains("└ ?"), "{page}");
        assert!(
            page.contains(
                "└ <span class=\"service\">b</span><span class=\"called\">http://b/chain</span>"
            ),
            "{page}"
        );
    }
}
