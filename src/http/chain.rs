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
mod report;

use std::time::Instant;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::{AppError, AppState};
use crate::config::Config;

pub use report::{Call, Hop};

/// The request header that carries the ids of the instances already on the path, comma-separated,
/// first caller first.
pub const PATH_HEADER: &str = "x-chain-path";

/// The most instances one chain may pass through; a longer path is answered as a loop.
pub const MAX_DEPTH: usize = 8;

/// The longest instance id accepted in [`PATH_HEADER`].
const MAX_ID_LENGTH: usize = 64;

/// What `/chain` needs, made once at start from the configuration.
pub struct Chain {
    /// This instance's id on paths: random, new at each start.
    instance: String,
    /// `service.name`, shown on each hop.
    service: String,
    downstreams: Vec<client::Downstream>,
    client: client::Client,
}

impl Chain {
    /// The chain of `DOWNSTREAM_URL`, each call bounded by `DOWNSTREAM_TIMEOUT`.
    pub fn new(config: &Config) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            instance: id[..16].to_string(),
            service: crate::telemetry::service_name(config),
            downstreams: config
                .downstream_url
                .0
                .iter()
                .map(client::Downstream::new)
                .collect(),
            client: client::Client::new(config),
        }
    }

    /// This instance's id, as sent in [`PATH_HEADER`].
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

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
        report::html_response(&hop)
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
        let call = chain.client.call(state, downstream, &onward).await;
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

/// Reads [`PATH_HEADER`]: ids of letters, digits, `-` and `_`, comma-separated. Reading stops
/// after [`MAX_DEPTH`] ids: a longer path is answered as a loop anyway.
fn parse_path(value: Option<&HeaderValue>) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let invalid = || {
        format!(
            "{PATH_HEADER} must list instance ids (letters, digits, - and _, at most {MAX_ID_LENGTH} each), comma-separated"
        )
    };
    let text = value.to_str().map_err(|_| invalid())?;
    let mut path = Vec::new();
    for id in text.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let valid = id.len() <= MAX_ID_LENGTH
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(invalid());
        }
        if path.len() == MAX_DEPTH {
            break;
        }
        path.push(id.to_string());
    }
    Ok(path)
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
        Chain::new(&Config::defaults())
    }

    #[test]
    fn instance_ids_are_random_and_fit_the_path_header() {
        let (a, b) = (chain(), chain());

        assert_ne!(a.instance(), b.instance());
        assert_eq!(a.instance().len(), 16);
        let header = HeaderValue::from_str(a.instance()).unwrap();
        assert_eq!(parse_path(Some(&header)).unwrap(), [a.instance()]);
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
    fn the_path_header_is_read_strictly_and_bounded() {
        let read = |text: &str| parse_path(Some(&HeaderValue::from_str(text).unwrap()));

        assert_eq!(read(" a1, b-2 ,,c_3").unwrap(), ["a1", "b-2", "c_3"]);
        assert_eq!(parse_path(None).unwrap(), Vec::<String>::new());
        assert!(read("a b").unwrap_err().contains(PATH_HEADER));
        assert!(read("<script>").is_err());
        assert!(read(&"x".repeat(65)).is_err());
        let long: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(read(&long.join(",")).unwrap().len(), MAX_DEPTH);
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
