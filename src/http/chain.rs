//! `GET /chain`: one request followed across instances, to see a trace span several services.
//!
//! Each instance calls the `/chain` of every `DOWNSTREAM_URL` in turn (`client` makes each call,
//! with its client span, propagation headers and client metrics), and answers with the hops it saw:
//! itself, then each downstream with its own hops, as an HTML page or, for a calling instance, as
//! JSON (`report`).
//!
//! Loops: every instance has a random id made at start. A caller sends the ids already on the path
//! in [`PATH_HEADER`]; an instance that finds its own id there, or a path of [`MAX_DEPTH`]
//! instances already, answers `508 Loop Detected` at once, and every caller above passes the 508
//! on. A downstream that fails, or gives no answer within `DOWNSTREAM_TIMEOUT`, makes its caller
//! answer `502 Bad Gateway`; both name the downstream and the cause.

mod client;
pub mod instance;
mod path;
mod report;

use std::time::Instant;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::{
    error::AppError,
    nav::{Nav, Page},
    state::AppState,
};
use instance::Chain;
use path::{MAX_DEPTH, PATH_HEADER, parse_path};

pub use report::{Call, Hop};

/// `GET /chain`: calls each downstream's `/chain` in turn and answers with the hops, as HTML or,
/// when the `Accept` header prefers it, as JSON. 200 when every call succeeded, 502 when one
/// failed, 508 when the path loops; a malformed [`PATH_HEADER`] gets a 400.
pub async fn get_chain(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let json = wants_json(headers.get(header::ACCEPT));
    let path = match parse_path(headers.get(PATH_HEADER)) {
        Ok(path) => path,
        Err(reason) => return AppError::BadRequest(reason).into_response(),
    };
    let hop = follow(&state, path).await;
    if json {
        report::json_response(&hop)
    } else {
        report::html_response(&hop, Nav::new(Some(Page::Chain), &state.about))
    }
}

/// This instance's hop: a loop stops here; otherwise every downstream is called, in order.
async fn follow(state: &AppState, path: Vec<String>) -> Hop {
    let chain = &state.chain;
    let start = Instant::now();
    let mut hop = Hop::new(&chain.service, &chain.instance, path);
    if let Some(reason) = loop_reason(chain, &hop.path) {
        hop.fail(508, reason);
        hop.duration = start.elapsed();
        return hop;
    }
    let mut onward = hop.path.join(",");
    if !onward.is_empty() {
        onward.push(',');
    }
    onward.push_str(&chain.instance);
    let onward = HeaderValue::from_str(&onward).expect("ids are checked to be visible ASCII");
    for downstream in &chain.downstreams {
        let call = chain.client.call(&state.tracing, downstream, &onward).await;
        hop.calls.push(call);
    }
    hop.settle();
    hop.duration = start.elapsed();
    hop
}

/// Why this instance must not go on: its own id is on the path, or the path is full.
fn loop_reason(chain: &Chain, path: &[String]) -> Option<String> {
    if path.contains(&chain.instance) {
        Some(format!(
            "loop detected: instance {} ({}) is already on the path {}",
            chain.instance,
            chain.service,
            path.join(" -> ")
        ))
    } else if path.len() >= MAX_DEPTH {
        Some(format!(
            "loop detected: the path already has {MAX_DEPTH} instances, the most /chain follows"
        ))
    } else {
        None
    }
}

/// Whether the `Accept` header prefers JSON to HTML (`*/*` counts for HTML, so browsers and curl
/// get the page).
fn wants_json(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut json, mut html): (f32, f32) = (0.0, 0.0);
    for (media, quality) in crate::accept::media_ranges(accept) {
        match media.as_str() {
            "application/json" | "application/*" => json = json.max(quality),
            "text/html" | "text/*" | "*/*" => html = html.max(quality),
            _ => {}
        }
    }
    json > 0.0 && json >= html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        Chain::new(&crate::config::Config::defaults())
    }

    #[test]
    fn own_id_on_the_path_is_a_loop() {
        let chain = chain();
        let path = vec!["first".to_string(), chain.instance().to_string()];

        let reason = loop_reason(&chain, &path).unwrap();

        assert!(reason.starts_with("loop detected"), "{reason}");
        assert!(
            reason.contains(&format!("first -> {}", chain.instance())),
            "{reason}"
        );
        assert!(loop_reason(&chain, &path[..1]).is_none());
    }

    #[test]
    fn a_full_path_is_a_loop() {
        let chain = chain();
        let path: Vec<String> = (0..MAX_DEPTH).map(|i| format!("i{i}")).collect();

        assert!(loop_reason(&chain, &path).unwrap().contains("8 instances"));
        assert!(loop_reason(&chain, &path[1..]).is_none());
    }

    #[test]
    fn json_only_when_preferred_to_html() {
        let accepts = |text: &str| wants_json(Some(&HeaderValue::from_str(text).unwrap()));

        assert!(accepts("application/json"));
        assert!(accepts("application/json, */*;q=0.5"));
        assert!(!accepts("*/*"));
        assert!(!accepts(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!accepts("application/json;q=0"));
        assert!(!wants_json(None));
    }
}
