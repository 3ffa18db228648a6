//! Optional authentication of `/metrics` (and, with `METRICS_AUTH_SCOPE=all`, of the metrics
//! pages and the chaos controls): a bearer token, HTTP basic credentials, or both.
//!
//! The secrets come from [`AuthSettings`], held as `secrecy` secrets (out of `Debug`, logs, pages
//! and errors), and are compared with the `subtle` crate's constant-time equality. Empty
//! credentials never match: the settings refuse an empty secret, and an empty token or password
//! presented by a client is refused before any comparison.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;

use crate::config::{AuthSettings, Scope};

/// The realm named in `WWW-Authenticate` challenges.
pub const REALM: &str = "prom-metrics-app";

/// The credentials a protected route accepts.
pub struct Auth {
    /// The bearer token, if any.
    token: Option<SecretString>,
    /// `user:password` of basic authentication, if any.
    basic: Option<SecretString>,
    /// The routes protected.
    scope: Scope,
    /// The `WWW-Authenticate` challenges, strongest first.
    challenges: Vec<HeaderValue>,
}

impl Auth {
    /// The credentials of `settings`, or `None` when no credential is configured (nothing is
    /// protected). The settings must have passed [`AuthSettings::validate`].
    pub fn from_settings(settings: &AuthSettings) -> Option<Arc<Self>> {
        let token = settings.token().cloned();
        let basic = match (&settings.metrics_auth_username, settings.password()) {
            (Some(user), Some(password)) => Some(SecretString::from(format!(
                "{user}:{}",
                password.expose_secret()
            ))),
            _ => None,
        };
        let mut challenges = Vec::new();
        if token.is_some() {
            challenges.push(HeaderValue::from_static(
                "Bearer realm=\"prom-metrics-app\"",
            ));
        }
        if basic.is_some() {
            challenges.push(HeaderValue::from_static("Basic realm=\"prom-metrics-app\""));
        }
        (!challenges.is_empty()).then(|| {
            Arc::new(Self {
                token,
                basic,
                scope: settings.metrics_auth_scope,
                challenges,
            })
        })
    }

    /// Whether requests to the route `path` need credentials.
    pub fn protects(&self, path: &str) -> bool {
        match self.scope {
            Scope::Metrics => path == "/metrics",
            Scope::All => {
                path == "/metrics"
                    || path.starts_with("/view_metrics")
                    || path == "/chaos"
                    || path.starts_with("/api/chaos")
                    || path == "/synthetic"
                    || path.starts_with("/api/synthetic")
                    || path == "/panic"
            }
        }
    }

    /// Checks an `Authorization` header value; `Err` holds the reason shown to the client.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), &'static str> {
        let Some(value) = authorization else {
            return Err("missing credentials: this route needs an Authorization header");
        };
        let value = value.as_bytes();
        let (scheme, credentials) = match value.iter().position(|b| *b == b' ') {
            Some(at) => (&value[..at], trim(&value[at + 1..])),
            None => (value, &b""[..]),
        };
        if credentials.is_empty() {
            return Err("missing credentials: the Authorization header has none after its scheme");
        }
        let accepted = if scheme.eq_ignore_ascii_case(b"bearer") {
            self.token
                .as_ref()
                .is_some_and(|token| equal(credentials, token.expose_secret().as_bytes()))
        } else if scheme.eq_ignore_ascii_case(b"basic") {
            self.basic.as_ref().is_some_and(|basic| {
                base64::engine::general_purpose::STANDARD
                    .decode(credentials)
                    .is_ok_and(|decoded| equal(&decoded, basic.expose_secret().as_bytes()))
            })
        } else {
            return Err("unsupported authorization scheme");
        };
        if accepted {
            Ok(())
        } else {
            Err("invalid credentials")
        }
    }

    /// A 401 with the challenges and `reason`.
    fn unauthorized(&self, reason: &'static str) -> Response {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            format!("401 Unauthorized: {reason}\n"),
        )
            .into_response();
        for challenge in &self.challenges {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, challenge.clone());
        }
        response
    }
}

/// Middleware of the protected routes: the request goes on with valid credentials, else 401.
pub async fn require_credentials(
    State(auth): State<Arc<Auth>>,
    request: Request,
    next: Next,
) -> Response {
    match auth.check(request.headers().get(header::AUTHORIZATION)) {
        Ok(()) => next.run(request).await,
        Err(reason) => auth.unauthorized(reason),
    }
}

/// Constant-time equality: the time taken depends on the lengths, never on where the bytes differ.
fn equal(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |at| at + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            metrics_auth_token: None,
            metrics_auth_token_file: None,
            metrics_auth_username: None,
            metrics_auth_password: None,
            metrics_auth_password_file: None,
            metrics_auth_scope: Scope::Metrics,
        }
    }

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn nothing_is_protected_without_credentials() {
        assert!(Auth::from_settings(&settings()).is_none());
    }

    #[test]
    fn a_bearer_token_is_accepted_only_when_it_matches() {
        let auth = Auth::from_settings(&AuthSettings {
            metrics_auth_token: Some("s3cret".into()),
            ..settings()
        })
        .unwrap();

        assert_eq!(auth.check(Some(&header("Bearer s3cret"))), Ok(()));
        assert_eq!(auth.check(Some(&header("bearer  s3cret "))), Ok(()));
        assert!(auth.check(Some(&header("Bearer s3cre"))).is_err());
        assert!(auth.check(Some(&header("Bearer s3crett"))).is_err());
        assert!(auth.check(Some(&header("Bearer"))).is_err());
        assert!(auth.check(Some(&header("Basic czNjcmV0"))).is_err());
        assert!(auth.check(None).is_err());
    }

    #[test]
    fn basic_credentials_are_decoded_and_compared_whole() {
        let auth = Auth::from_settings(&AuthSettings {
            metrics_auth_username: Some("prom".into()),
            metrics_auth_password: Some("pa:ss".into()),
            ..settings()
        })
        .unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode("prom:pa:ss");

        assert_eq!(
            auth.check(Some(&header(&format!("Basic {encoded}")))),
            Ok(())
        );
        assert!(auth.check(Some(&header("Basic cHJvbTpwYQ=="))).is_err());
        assert!(auth.check(Some(&header("Basic !!!"))).is_err());
        assert!(auth.check(Some(&header("Bearer pa:ss"))).is_err());
        assert_eq!(
            auth.challenges[0].to_str().unwrap(),
            "Basic realm=\"prom-metrics-app\""
        );
    }

    #[test]
    fn the_scope_decides_which_routes_are_protected() {
        let mut all = AuthSettings {
            metrics_auth_token: Some("t".into()),
            ..settings()
        };
        let metrics = Auth::from_settings(&all).unwrap();
        all.metrics_auth_scope = Scope::All;
        let all = Auth::from_settings(&all).unwrap();

        assert!(metrics.protects("/metrics"));
        assert!(!metrics.protects("/view_metrics"));
        for path in ["/metrics", "/view_metrics", "/chaos", "/api/chaos"] {
            assert!(all.protects(path), "{path}");
        }
        for path in ["/", "/healthz", "/readyz", "/do_task"] {
            assert!(!all.protects(path), "{path}");
        }
    }
}
