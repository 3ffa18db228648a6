//! Security headers on every response, set by one layer outside all the others.

use axum::http::{HeaderName, HeaderValue, header};
use tower::{Layer as _, layer::util::Stack};
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};

/// Only the app's own origin, no inline script or style, no plugins, no framing. Pages use
/// classes and SVG presentation attributes, never `style=`, so `style-src 'self'` holds.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// No URL, not even this origin, leaks to another site through `Referer`.
pub const REFERRER_POLICY: &str = "no-referrer";

/// The three layers as one.
pub type SecurityHeaders = Stack<
    SetResponseHeaderLayer<HeaderValue>,
    Stack<SetResponseHeaderLayer<HeaderValue>, SetResponseHeaderLayer<HeaderValue>>,
>;

/// `inner` with the security headers on every response.
pub type WithHeaders<S> = SetResponseHeader<
    SetResponseHeader<SetResponseHeader<S, HeaderValue>, HeaderValue>,
    HeaderValue,
>;

/// Puts the security headers around `inner`, outside the router: each request pays for them
/// once, where a layer inside the router would be one more boxed service to clone on every route.
pub fn around<S>(inner: S) -> WithHeaders<S> {
    layer().layer(inner)
}

/// `Content-Security-Policy`, `X-Content-Type-Options: nosniff` and `Referrer-Policy` on every
/// response. Outermost, so the tracing and counting layers see the responses unchanged; the
/// policy is harmless on non-HTML responses and a handler cannot forget it.
pub fn layer() -> SecurityHeaders {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Stack::new(
        set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        Stack::new(
            set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            set(header::REFERRER_POLICY, REFERRER_POLICY),
        ),
    )
}
