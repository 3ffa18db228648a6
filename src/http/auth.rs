//! Optional authentication of `/metrics` (and, with `METRICS_AUTH_SCOPE=all`, of the metrics
//! pages and the chaos controls): a bearer token, HTTP basic credentials, or both.
//!
//! Secrets are read once at start (from a flag, a variable or a file), kept out of `Debug`, logs,
//! pages and errors, and compared with the `subtle` crate's constant-time equality.

use std::{fmt, path::PathBuf, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use clap::{Args, ValueEnum};
use subtle::ConstantTimeEq as _;

/// The realm named in `WWW-Authenticate` challenges.
pub const REALM: &str = "prom-metrics-app";

/// A secret string; its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which routes need credentials once credentials are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// `/metrics` only.
    Metrics,
    /// `/metrics`, `/view_metrics`, `/chaos` and `/api/chaos`.
    All,
}

/// The authentication settings, as flags and variables (flattened into [`crate::config::Config`]).
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// Bearer token that /metrics requires (`Authorization: Bearer <token>`); unset: no token.
    #[arg(long, env = "METRICS_AUTH_TOKEN", value_name = "METRICS_AUTH_TOKEN", value_parser = parse_secret, hide_env_values = true)]
    pub metrics_auth_token: Option<Secret>,

    /// File holding the bearer token (a trailing newline is ignored), read once at start.
    #[arg(long, env = "METRICS_AUTH_TOKEN_FILE", value_name = "METRICS_AUTH_TOKEN_FILE", value_parser = read_secret_file)]
    pub metrics_auth_token_file: Option<Secret>,

    /// User name of HTTP basic authentication on /metrics; needs a password too.
    #[arg(long, env = "METRICS_AUTH_USERNAME", value_name = "METRICS_AUTH_USERNAME", value_parser = parse_username)]
    pub metrics_auth_username: Option<String>,

    /// Password of HTTP basic authentication on /metrics; needs a user name too.
    #[arg(long, env = "METRICS_AUTH_PASSWORD", value_name = "METRICS_AUTH_PASSWORD", value_parser = parse_secret, hide_env_values = true)]
    pub metrics_auth_password: Option<Secret>,

    /// File holding the basic authentication password (a trailing newline is ignored).
    #[arg(long, env = "METRICS_AUTH_PASSWORD_FILE", value_name = "METRICS_AUTH_PASSWORD_FILE", value_parser = read_secret_file)]
    pub metrics_auth_password_file: Option<Secret>,

    /// Routes that need the credentials: `metrics` (/metrics only) or `all` (also /view_metrics, /chaos and /api/chaos).
    #[arg(
        long,
        env = "METRICS_AUTH_SCOPE",
        value_name = "METRICS_AUTH_SCOPE",
        default_value = "metrics",
        ignore_case = true
    )]
    pub metrics_auth_scope: Scope,
}

impl AuthSettings {
    /// Checks that the settings go together: one source per secret, and basic credentials whole.
    pub fn validate(&self) -> Result<(), String> {
        if self.metrics_auth_token.is_some() && self.metrics_auth_token_file.is_some() {
            return Err(
                "METRICS_AUTH_TOKEN (--metrics-auth-token) and METRICS_AUTH_TOKEN_FILE (--metrics-auth-token-file) are both set: set one of them".to_string(),
            );
        }
        if self.metrics_auth_password.is_some() && self.metrics_auth_password_file.is_some() {
            return Err(
                "METRICS_AUTH_PASSWORD (--metrics-auth-password) and METRICS_AUTH_PASSWORD_FILE (--metrics-auth-password-file) are both set: set one of them".to_string(),
            );
        }
        let password =
            self.metrics_auth_password.is_some() || self.metrics_auth_password_file.is_some();
        match (self.metrics_auth_username.is_some(), password) {
            (true, false) => Err("METRICS_AUTH_USERNAME (--metrics-auth-username) is set without a password: set METRICS_AUTH_PASSWORD or METRICS_AUTH_PASSWORD_FILE too".to_string()),
            (false, true) => Err("a basic authentication password is set without METRICS_AUTH_USERNAME (--metrics-auth-username): set both".to_string()),
            _ => Ok(()),
        }
    }
}

/// The credentials a protected route accepts.
pub struct Auth {
    /// The bearer token, if any.
    token: Option<Secret>,
    /// `user:password` of basic authentication, if any.
    basic: Option<Secret>,
    /// The routes protected.
    scope: Scope,
    /// The `WWW-Authenticate` challenges, strongest first.
    challenges: Vec<HeaderValue>,
}

impl Auth {
    /// The credentials of `settings`, or `None` when no credential is configured (nothing is
    /// protected). The settings must have passed [`AuthSettings::validate`].
    pub fn from_settings(settings: &AuthSettings) -> Option<Arc<Self>> {
        let token = settings
            .metrics_auth_token
            .clone()
            .or_else(|| settings.metrics_auth_token_file.clone());
        let password = settings
            .metrics_auth_password
            .clone()
            .or_else(|| settings.metrics_auth_password_file.clone());
        let basic = match (&settings.metrics_auth_username, password) {
            (Some(user), Some(password)) => Some(Secret(format!("{user}:{}", password.expose()))),
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
        let accepted = if scheme.eq_ignore_ascii_case(b"bearer") {
            self.token
                .as_ref()
                .is_some_and(|token| equal(credentials, token.expose().as_bytes()))
        } else if scheme.eq_ignore_ascii_case(b"basic") {
            self.basic.as_ref().is_some_and(|basic| {
                base64::engine::general_purpose::STANDARD
                    .decode(credentials)
                    .is_ok_and(|decoded| equal(&decoded, basic.expose().as_bytes()))
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

fn parse_secret(value: &str) -> Result<Secret, String> {
    if value.chars().any(char::is_control) {
        return Err("the value has control characters; expected a single line".to_string());
    }
    Ok(Secret(value.to_string()))
}

fn parse_username(value: &str) -> Result<String, String> {
    if value.contains(':') || value.chars().any(char::is_control) {
        return Err("expected a user name without ':' or control characters".to_string());
    }
    Ok(value.to_string())
}

/// Reads a secret from a file at start: its content with trailing line breaks removed; a file
/// that is missing, unreadable or empty is an error (which names the path, never the content).
fn read_secret_file(value: &str) -> Result<Secret, String> {
    let path = PathBuf::from(value);
    let content = std::fs::read_to_string(&path)
        .map_err(|err| format!("cannot read the file: {err}; expected a readable file"))?;
    let secret = content.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err("the file is empty; expected the secret on its first line".to_string());
    }
    parse_secret(secret).map_err(|_| {
        "the file has control characters inside; expected the secret on one line".to_string()
    })
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
            metrics_auth_token: Some(Secret("s3cret".into())),
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
            metrics_auth_password: Some(Secret("pa:ss".into())),
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
            metrics_auth_token: Some(Secret("t".into())),
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

    #[test]
    fn settings_that_do_not_go_together_are_refused() {
        let both = AuthSettings {
            metrics_auth_token: Some(Secret("a".into())),
            metrics_auth_token_file: Some(Secret("b".into())),
            ..settings()
        };
        let half = AuthSettings {
            metrics_auth_username: Some("prom".into()),
            ..settings()
        };

        assert!(
            both.validate()
                .unwrap_err()
                .contains("METRICS_AUTH_TOKEN_FILE")
        );
        assert!(
            half.validate()
                .unwrap_err()
                .contains("METRICS_AUTH_PASSWORD")
        );
        assert!(settings().validate().is_ok());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = AuthSettings {
            metrics_auth_token: Some(Secret("hunter2".into())),
            ..settings()
        };

        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline_and_must_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("pma-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, empty) = (dir.join("token"), dir.join("empty"));
        std::fs::write(&good, "tok en\n").unwrap();
        std::fs::write(&empty, "\n").unwrap();

        assert_eq!(
            read_secret_file(good.to_str().unwrap()).unwrap().expose(),
            "tok en"
        );
        assert!(
            read_secret_file(empty.to_str().unwrap())
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            read_secret_file(dir.join("missing").to_str().unwrap())
                .unwrap_err()
                .contains("cannot read")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
