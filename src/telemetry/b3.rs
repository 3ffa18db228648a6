//! B3 context propagation (openzipkin/b3-propagation): the single `b3` header and the multiple
//! `X-B3-*` headers, read and written as OpenTelemetry's B3 requirements say.
//!
//! Written here because the maintained crate (`opentelemetry-propagator-b3` 0.33, a copy of the
//! deprecated `opentelemetry-zipkin` code) reads the `d` (debug) sampling state as *not sampled*,
//! so the default `parentbased_always_on` sampler dropped exactly the requests that a caller
//! forced to be traced; it also sets trace-flag bits that W3C gives other meanings.
//!
//! How B3 maps onto OpenTelemetry:
//! - Ids: a trace id of 16 or 32 lower-hex characters (a 64-bit id is left-padded with zeros to
//!   128 bits) and a span id of 16; an all-zero id is invalid. The B3 span id becomes the remote
//!   parent, so the server span gets an id of its own, as OpenTelemetry requires.
//! - Sampling: accept (`1`) and debug (`d`, `X-B3-Flags: 1`) are sampled; deny (`0`) is not. An
//!   absent decision ("defer") is not sampled either: a span context has no "undecided" state, and
//!   a sampled flag would claim a decision nobody made. Debug is also kept in the context, so that
//!   inject passes it on.
//! - Anything malformed is ignored, leaving the context as it was; so is a bare decision such as
//!   `b3: 0`, which carries no ids to continue.

use std::sync::LazyLock;

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};

// Lower case: HTTP header names are case-insensitive (the extractor matches any case), and gRPC
// metadata, which B3 also travels in, is lower-case only.
const SINGLE: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const PARENT_SPAN_ID: &str = "x-b3-parentspanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

/// Every header extraction reads, in either encoding (more than [`TextMapPropagator::fields`],
/// which names only what injection writes).
pub const READ_HEADERS: [&str; 6] = [SINGLE, TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS];

/// Which B3 headers [`B3Propagator`] writes. Both encodings are always read, the single header
/// first, as OpenTelemetry requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum B3Encoding {
    /// One header, `b3: {TraceId}-{SpanId}-{SamplingState}` (OpenTelemetry's default for B3).
    #[default]
    SingleHeader,
    /// `X-B3-TraceId`, `X-B3-SpanId`, and `X-B3-Sampled` or, for debug, `X-B3-Flags: 1`.
    MultipleHeaders,
}

/// Reads and writes trace context in the B3 formats.
#[derive(Clone, Debug, Default)]
pub struct B3Propagator {
    encoding: B3Encoding,
}

impl B3Propagator {
    /// A propagator that reads both encodings and writes `encoding`.
    pub fn new(encoding: B3Encoding) -> Self {
        Self { encoding }
    }
}

/// Marks a context whose caller sent the debug decision, which a span context cannot hold.
#[derive(Clone, Copy, Debug)]
struct B3Debug;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sampling {
    Defer,
    Deny,
    Accept,
    Debug,
}

/// What one encoding of the carrier held.
enum Carried {
    /// Absent or malformed: the other encoding may still hold a context.
    Nothing,
    /// A well-formed `b3` with a decision and no ids: it wins, but there is nothing to continue.
    DecisionOnly,
    Context(TraceId, SpanId, Sampling),
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        // B3 could carry a bare decision, but without a valid span there is no trace to continue.
        if !context.is_valid() {
            return;
        }
        let debug = cx.get::<B3Debug>().is_some();
        let (trace_id, span_id) = (context.trace_id(), context.span_id());
        // No parent span id: OpenTelemetry never shares a span id between client and server.
        match self.encoding {
            B3Encoding::SingleHeader => {
                let state = match (debug, context.is_sampled()) {
                    (true, _) => "d",
                    (false, true) => "1",
                    (false, false) => "0",
                };
                injector.set(SINGLE, format!("{trace_id}-{span_id}-{state}"));
            }
            B3Encoding::MultipleHeaders => {
                injector.set(TRACE_ID, trace_id.to_string());
                injector.set(SPAN_ID, span_id.to_string());
                // Debug implies sampled, and the specification says not to send both.
                if debug {
                    injector.set(FLAGS, "1".to_owned());
                } else {
                    let sampled = if context.is_sampled() { "1" } else { "0" };
                    injector.set(SAMPLED, sampled.to_owned());
                }
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let carried = match read_single(extractor) {
            Carried::Nothing => read_multiple(extractor),
            found => found,
        };
        let Carried::Context(trace_id, span_id, sampling) = carried else {
            return cx.clone();
        };
        let flags = match sampling {
            Sampling::Accept | Sampling::Debug => TraceFlags::SAMPLED,
            Sampling::Deny | Sampling::Defer => TraceFlags::NOT_SAMPLED,
        };
        let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
        let cx = cx.with_remote_span_context(remote);
        if sampling == Sampling::Debug {
            cx.with_value(B3Debug)
        } else {
            cx
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        // The headers that inject may write: that is what OpenTelemetry means by fields.
        static SINGLE_FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [SINGLE.to_owned()]);
        static MULTIPLE_FIELDS: LazyLock<[String; 4]> =
            LazyLock::new(|| [TRACE_ID, SPAN_ID, SAMPLED, FLAGS].map(str::to_owned));
        match self.encoding {
            B3Encoding::SingleHeader => FieldIter::new(&*SINGLE_FIELDS),
            B3Encoding::MultipleHeaders => FieldIter::new(&*MULTIPLE_FIELDS),
        }
    }
}

/// `b3: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`, or a sampling state alone.
fn read_single(extractor: &dyn Extractor) -> Carried {
    let Some(value) = extractor.get(SINGLE) else {
        return Carried::Nothing;
    };
    let parts: Vec<&str> = value.split('-').collect();
    let (trace, span, state, parent) = match parts[..] {
        [state] => {
            return match single_state(state) {
                Some(_) => Carried::DecisionOnly,
                None => Carried::Nothing,
            };
        }
        [trace, span] => (trace, span, None, None),
        [trace, span, state] => (trace, span, Some(state), None),
        [trace, span, state, parent] => (trace, span, Some(state), Some(parent)),
        _ => return Carried::Nothing,
    };
    let sampling = state.map_or(Some(Sampling::Defer), single_state);
    // The parent id is checked, then dropped: the B3 span id is the parent of the server span.
    let parent_ok = parent.is_none_or(|p| parse_span_id(p).is_some());
    match (parse_ids(trace, span), sampling) {
        (Some((trace_id, span_id)), Some(sampling)) if parent_ok => {
            Carried::Context(trace_id, span_id, sampling)
        }
        _ => Carried::Nothing,
    }
}

/// `X-B3-TraceId` and `X-B3-SpanId`, with optional `X-B3-ParentSpanId`, `X-B3-Sampled` and
/// `X-B3-Flags`.
fn read_multiple(extractor: &dyn Extractor) -> Carried {
    let ids = extractor
        .get(TRACE_ID)
        .zip(extractor.get(SPAN_ID))
        .and_then(|(trace, span)| parse_ids(trace, span));
    let Some((trace_id, span_id)) = ids else {
        return Carried::Nothing;
    };
    if extractor
        .get(PARENT_SPAN_ID)
        .is_some_and(|parent| parse_span_id(parent).is_none())
    {
        return Carried::Nothing;
    }
    // "Absent or any other value [than 1] can be ignored", says the specification of X-B3-Flags.
    let sampling = if extractor.get(FLAGS) == Some("1") {
        Sampling::Debug
    } else {
        match extractor.get(SAMPLED) {
            None => Sampling::Defer,
            // `true` and `false` come from clients older than the specification, which allows them.
            Some("1" | "true") => Sampling::Accept,
            Some("0" | "false") => Sampling::Deny,
            Some(_) => return Carried::Nothing,
        }
    };
    Carried::Context(trace_id, span_id, sampling)
}

/// The sampling state of the single header: `1`, `0` or `d`.
fn single_state(state: &str) -> Option<Sampling> {
    match state {
        "1" => Some(Sampling::Accept),
        "0" => Some(Sampling::Deny),
        "d" => Some(Sampling::Debug),
        _ => None,
    }
}

fn parse_ids(trace: &str, span: &str) -> Option<(TraceId, SpanId)> {
    parse_trace_id(trace).zip(parse_span_id(span))
}

/// 32 or 16 lower-hex characters, not all zero. Reading 16 into a `u128` is the left-padding to
/// 128 bits that B3 asks for.
fn parse_trace_id(hex: &str) -> Option<TraceId> {
    if (hex.len() != 32 && hex.len() != 16) || !is_lower_hex(hex) {
        return None;
    }
    u128::from_str_radix(hex, 16)
        .ok()
        .filter(|&id| id != 0)
        .map(TraceId::from)
}

/// 16 lower-hex characters, not all zero.
fn parse_span_id(hex: &str) -> Option<SpanId> {
    if hex.len() != 16 || !is_lower_hex(hex) {
        return None;
    }
    u64::from_str_radix(hex, 16)
        .ok()
        .filter(|&id| id != 0)
        .map(SpanId::from)
}

// The specification says "lower-hex" for every id; `from_str_radix` alone would also take upper
// case and a leading `+`.
fn is_lower_hex(hex: &str) -> bool {
    hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    use opentelemetry_http::HeaderExtractor;

    use super::*;

    // The examples of the B3 specification.
    const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const SPAN: &str = "e457b5a2e4d86bd1";
    const PARENT: &str = "05e3ac9a4f6e3b90";

    /// Extracts with the default propagator from headers given as `(name, value)`.
    fn extract<V: AsRef<str>>(headers: &[(&str, V)]) -> Context {
        let carrier: HashMap<String, String> = headers
            .iter()
            .map(|(name, value)| (name.to_lowercase(), value.as_ref().to_owned()))
            .collect();
        B3Propagator::default().extract(&carrier)
    }

    fn assert_remote(cx: &Context, trace: &str, span: &str, sampled: bool) {
        let context = cx.span().span_context().clone();
        assert!(context.is_valid(), "no valid context");
        assert!(context.is_remote());
        assert_eq!(context.trace_id().to_string(), trace);
        assert_eq!(context.span_id().to_string(), span);
        assert_eq!(context.is_sampled(), sampled, "sampled");
    }

    fn is_debug(cx: &Context) -> bool {
        cx.get::<B3Debug>().is_some()
    }

    fn multiple(trace: &str, span: &str, sampled: &str) -> Vec<(&'static str, String)> {
        vec![
            ("X-B3-TraceId", trace.to_owned()),
            ("X-B3-SpanId", span.to_owned()),
            ("X-B3-Sampled", sampled.to_owned()),
        ]
    }

    fn inject(encoding: B3Encoding, cx: &Context) -> HashMap<String, String> {
        let mut carrier = HashMap::new();
        B3Propagator::new(encoding).inject_context(cx, &mut carrier);
        carrier
    }

    /// A context whose span is the app's own (not remote), as around an outgoing call.
    fn local(sampled: bool) -> Context {
        let flags = TraceFlags::NOT_SAMPLED.with_sampled(sampled);
        let trace = TraceId::from_hex(TRACE).unwrap();
        let span = SpanId::from_hex(SPAN).unwrap();
        Context::new().with_remote_span_context(SpanContext::new(
            trace,
            span,
            flags,
            false,
            TraceState::default(),
        ))
    }

    #[test]
    fn a_single_header_continues_the_callers_trace_as_a_remote_parent() {
        let cx = extract(&[("b3", &format!("{TRACE}-{SPAN}-1-{PARENT}"))]);

        assert_remote(&cx, TRACE, SPAN, true);
        assert!(!is_debug(&cx));
    }

    #[test]
    fn the_single_header_sampling_states_map_to_the_sampled_flag() {
        for (state, sampled, debug) in [("1", true, false), ("0", false, false), ("d", true, true)]
        {
            let cx = extract(&[("b3", &format!("{TRACE}-{SPAN}-{state}"))]);

            assert_remote(&cx, TRACE, SPAN, sampled);
            assert_eq!(is_debug(&cx), debug, "state {state}");
        }
    }

    #[test]
    fn ids_without_a_sampling_state_defer_the_decision_which_is_not_sampled() {
        let single = extract(&[("b3", &format!("{TRACE}-{SPAN}"))]);
        let multiple = extract(&[("X-B3-TraceId", TRACE), ("X-B3-SpanId", SPAN)]);

        assert_remote(&single, TRACE, SPAN, false);
        assert_remote(&multiple, TRACE, SPAN, false);
    }

    #[test]
    fn a_64_bit_trace_id_is_left_padded_to_128_bits() {
        let padded = "0000000000000000a3ce929d0e0e4736";

        let single = extract(&[("b3", &format!("a3ce929d0e0e4736-{SPAN}-1"))]);
        let multiple = extract(&multiple("a3ce929d0e0e4736", SPAN, "1"));

        assert_remote(&single, padded, SPAN, true);
        assert_remote(&multiple, padded, SPAN, true);
    }

    #[test]
    fn a_sampling_state_alone_carries_no_ids_and_changes_nothing() {
        for state in ["0", "1", "d"] {
            let cx = extract(&[("b3", state)]);

            assert!(!cx.has_active_span(), "b3: {state}");
        }
    }

    #[test]
    fn malformed_single_headers_are_ignored() {
        let zero_trace = "0".repeat(32);
        let cases = [
            String::new(),
            "-".to_owned(),
            TRACE.to_owned(),
            format!("{TRACE}-{SPAN}-"),
            format!("{}-{SPAN}-1", &TRACE[1..]),
            format!("{TRACE}0-{SPAN}-1"),
            format!("{}-{SPAN}-1", &TRACE[..20]),
            format!("{TRACE}-{}-1", &SPAN[1..]),
            format!("{TRACE}-{SPAN}0-1"),
            format!("{}-{SPAN}-1", TRACE.to_uppercase()),
            format!("{TRACE}-{}-1", SPAN.to_uppercase()),
            format!("{TRACE}-{SPAN}-1-{}", PARENT.to_uppercase()),
            format!("+{}-{SPAN}-1", &TRACE[1..]),
            format!("g{}-{SPAN}-1", &TRACE[1..]),
            format!("{zero_trace}-{SPAN}-1"),
            format!("{}-{SPAN}-1", &zero_trace[..16]),
            format!("{TRACE}-0000000000000000-1"),
            format!("{TRACE}-{SPAN}-1-0000000000000000"),
            format!("{TRACE}-{SPAN}-2"),
            format!("{TRACE}-{SPAN}-true"),
            format!("{TRACE}-{SPAN}-D"),
            format!("{TRACE}-{SPAN}-01"),
            format!("{TRACE}-{SPAN}-{PARENT}"),
            format!("{TRACE}-{SPAN}-1-{PARENT}-1"),
            format!(" {TRACE}-{SPAN}-1"),
        ];
        for value in &cases {
            let cx = extract(&[("b3", value)]);

            assert!(!cx.has_active_span(), "b3: {value:?} was accepted");
        }
    }

    #[test]
    fn a_well_formed_single_header_takes_precedence_over_multiple_headers() {
        let other_trace = "463ac35c9f6413ad48485a3953bb6124";
        let mut headers = multiple(other_trace, PARENT, "1");
        headers.push(("b3", format!("{TRACE}-{SPAN}-0")));

        let cx = extract(&headers);

        assert_remote(&cx, TRACE, SPAN, false);
    }

    #[test]
    fn a_malformed_single_header_falls_back_to_multiple_headers() {
        let mut headers = multiple(TRACE, SPAN, "1");
        headers.push(("b3", format!("{TRACE}-{SPAN}-x")));

        let cx = extract(&headers);

        assert_remote(&cx, TRACE, SPAN, true);
    }

    #[test]
    fn multiple_headers_continue_the_callers_trace_as_a_remote_parent() {
        let mut headers = multiple(TRACE, SPAN, "1");
        headers.push(("X-B3-ParentSpanId", PARENT.to_owned()));

        let cx = extract(&headers);

        assert_remote(&cx, TRACE, SPAN, true);
        assert!(!is_debug(&cx));
    }

    #[test]
    fn x_b3_sampled_takes_1_and_0_and_the_legacy_true_and_false() {
        for (value, sampled) in [("1", true), ("0", false), ("true", true), ("false", false)] {
            let cx = extract(&multiple(TRACE, SPAN, value));

            assert_remote(&cx, TRACE, SPAN, sampled);
        }
    }

    #[test]
    fn the_debug_flag_implies_sampled_even_beside_a_deny() {
        let alone = extract(&[
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Flags", "1"),
        ]);
        let mut headers = multiple(TRACE, SPAN, "0");
        headers.push(("X-B3-Flags", "1".to_owned()));
        let beside_deny = extract(&headers);

        assert_remote(&alone, TRACE, SPAN, true);
        assert!(is_debug(&alone));
        assert_remote(&beside_deny, TRACE, SPAN, true);
        assert!(is_debug(&beside_deny));
    }

    #[test]
    fn x_b3_flags_other_than_1_are_ignored() {
        for flags in ["0", "2", "d", ""] {
            let mut headers = multiple(TRACE, SPAN, "0");
            headers.push(("X-B3-Flags", flags.to_owned()));

            let cx = extract(&headers);

            assert_remote(&cx, TRACE, SPAN, false);
            assert!(!is_debug(&cx), "X-B3-Flags: {flags}");
        }
    }

    #[test]
    fn malformed_multiple_headers_are_ignored() {
        let cases: Vec<Vec<(&str, String)>> = vec![
            vec![
                ("X-B3-SpanId", SPAN.to_owned()),
                ("X-B3-Sampled", "1".to_owned()),
            ],
            vec![
                ("X-B3-TraceId", TRACE.to_owned()),
                ("X-B3-Sampled", "1".to_owned()),
            ],
            vec![("X-B3-Sampled", "0".to_owned())],
            multiple(TRACE, SPAN, ""),
            multiple(TRACE, SPAN, "2"),
            multiple(TRACE, SPAN, "True"),
            multiple(&TRACE.to_uppercase(), SPAN, "1"),
            multiple(TRACE, &SPAN.to_uppercase(), "1"),
            multiple(&TRACE[..30], SPAN, "1"),
            multiple(TRACE, &SPAN[..15], "1"),
            multiple(&"0".repeat(32), SPAN, "1"),
            multiple(TRACE, &"0".repeat(16), "1"),
            [
                multiple(TRACE, SPAN, "1"),
                vec![("X-B3-ParentSpanId", "-".to_owned())],
            ]
            .concat(),
        ];
        for headers in &cases {
            let cx = extract(headers);

            assert!(!cx.has_active_span(), "{headers:?} was accepted");
        }
    }

    #[test]
    fn header_names_match_whatever_their_case_in_http_requests() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("X-B3-TraceId", TRACE),
            ("X-B3-SpanId", SPAN),
            ("X-B3-Sampled", "1"),
        ] {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }

        let cx = B3Propagator::default().extract(&HeaderExtractor(&headers));

        assert_remote(&cx, TRACE, SPAN, true);
    }

    #[test]
    fn the_single_header_is_injected_as_trace_span_and_decision() {
        for (sampled, state) in [(true, "1"), (false, "0")] {
            let carrier = inject(B3Encoding::SingleHeader, &local(sampled));

            let expected = HashMap::from([("b3".to_owned(), format!("{TRACE}-{SPAN}-{state}"))]);
            assert_eq!(carrier, expected);
        }
    }

    #[test]
    fn multiple_headers_are_injected_without_a_parent_span_id() {
        let carrier = inject(B3Encoding::MultipleHeaders, &local(true));

        let expected = HashMap::from([
            ("x-b3-traceid".to_owned(), TRACE.to_owned()),
            ("x-b3-spanid".to_owned(), SPAN.to_owned()),
            ("x-b3-sampled".to_owned(), "1".to_owned()),
        ]);
        assert_eq!(carrier, expected);
    }

    #[test]
    fn injected_headers_extract_to_the_same_context() {
        for encoding in [B3Encoding::SingleHeader, B3Encoding::MultipleHeaders] {
            for sampled in [true, false] {
                let carrier = inject(encoding, &local(sampled));

                let cx = B3Propagator::new(encoding).extract(&carrier);

                assert_remote(&cx, TRACE, SPAN, sampled);
            }
        }
    }

    #[test]
    fn a_debug_decision_received_is_passed_on() {
        let received = extract(&[("b3", &format!("{TRACE}-{SPAN}-d"))]);

        let single = inject(B3Encoding::SingleHeader, &received);
        let multiple = inject(B3Encoding::MultipleHeaders, &received);

        assert_eq!(single["b3"], format!("{TRACE}-{SPAN}-d"));
        assert_eq!(multiple.get("x-b3-flags").map(String::as_str), Some("1"));
        assert!(
            !multiple.contains_key("x-b3-sampled"),
            "debug implies sampled"
        );
    }

    #[test]
    fn a_context_without_a_valid_span_injects_nothing() {
        for encoding in [B3Encoding::SingleHeader, B3Encoding::MultipleHeaders] {
            assert!(inject(encoding, &Context::new()).is_empty());
        }
    }

    #[test]
    fn fields_name_the_headers_each_encoding_injects_and_single_is_the_default() {
        let fields = |p: B3Propagator| p.fields().map(str::to_owned).collect::<Vec<_>>();

        assert_eq!(fields(B3Propagator::default()), ["b3"]);
        assert_eq!(fields(B3Propagator::new(B3Encoding::SingleHeader)), ["b3"]);
        assert_eq!(
            fields(B3Propagator::new(B3Encoding::MultipleHeaders)),
            ["x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"]
        );
    }

    mod properties {
        use std::collections::HashMap;

        use opentelemetry::{
            Context,
            propagation::TextMapPropagator,
            trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
        };
        use opentelemetry_sdk::propagation::TraceContextPropagator;
        use proptest::prelude::*;

        use super::super::{B3Encoding, B3Propagator};

        fn carrier(pairs: &[(String, String)]) -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_lowercase(), v.clone()))
                .collect()
        }

        fn header_names() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("b3".to_string()),
                Just("x-b3-traceid".to_string()),
                Just("x-b3-spanid".to_string()),
                Just("x-b3-sampled".to_string()),
                Just("x-b3-flags".to_string()),
                Just("traceparent".to_string()),
                Just("tracestate".to_string()),
            ]
        }

        fn header_values() -> impl Strategy<Value = String> {
            prop_oneof![
                ".{0,80}",
                "[0-9a-f]{1,32}-[0-9a-f]{1,16}(-[01d])?(-[0-9a-f]{16})?",
                "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.{0,8})?",
            ]
        }

        fn contexts() -> impl Strategy<Value = SpanContext> {
            (any::<u128>(), any::<u64>(), any::<bool>())
                .prop_filter("valid ids", |(t, s, _)| *t != 0 && *s != 0)
                .prop_map(|(t, s, sampled)| {
                    SpanContext::new(
                        TraceId::from(t),
                        SpanId::from(s),
                        TraceFlags::NOT_SAMPLED.with_sampled(sampled),
                        true,
                        TraceState::default(),
                    )
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_propagation_headers_extract_without_panicking(
                pairs in proptest::collection::vec((header_names(), header_values()), 0..6)
            ) {
                let carrier = carrier(&pairs);
                for propagator in [
                    B3Propagator::new(B3Encoding::SingleHeader),
                    B3Propagator::new(B3Encoding::MultipleHeaders),
                ] {
                    let cx = propagator.extract(&carrier);
                    let span = cx.span();
                    let context = span.span_context();
                    prop_assert!(!context.is_valid() || context.is_remote());
                }
                let cx = TraceContextPropagator::new().extract(&carrier);
                let span = cx.span();
                prop_assert!(!span.span_context().is_valid() || span.span_context().is_remote());
            }

            #[test]
            fn injected_contexts_extract_to_the_same_ids_and_decision(context in contexts()) {
                let cx = Context::new().with_remote_span_context(context.clone());
                let propagators: [Box<dyn TextMapPropagator>; 3] = [
                    Box::new(B3Propagator::new(B3Encoding::SingleHeader)),
                    Box::new(B3Propagator::new(B3Encoding::MultipleHeaders)),
                    Box::new(TraceContextPropagator::new()),
                ];
                for propagator in propagators {
                    let mut carrier = HashMap::new();
                    propagator.inject_context(&cx, &mut carrier);
                    let back = propagator.extract(&carrier);
                    let span = back.span();
                    let extracted = span.span_context();
                    prop_assert_eq!(extracted.trace_id(), context.trace_id());
                    prop_assert_eq!(extracted.span_id(), context.span_id());
                    prop_assert_eq!(extracted.is_sampled(), context.is_sampled());
                }
            }
        }
    }
}
