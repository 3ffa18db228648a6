//! The settings of `/metrics` authentication: a bearer token, HTTP basic credentials, or both,
//! and the routes they protect. Secrets are read once at start, from a flag, a variable or a file,
//! and held as [`SecretString`], which never shows in `Debug` output.
//!
//! Secrets fail closed: an empty token or password, from any source, stops the start, because an
//! empty secret would match empty credentials or silently leave `/metrics` public.

use clap::{Args, ValueEnum};
use secrecy::SecretString;

/// The variables whose empty value is an error rather than "unset" (see [`super::env`]).
pub const SECRET_VARIABLES: [&str; 4] = [
    "METRICS_AUTH_TOKEN",
    "METRICS_AUTH_TOKEN_FILE",
    "METRICS_AUTH_PASSWORD",
    "METRICS_AUTH_PASSWORD_FILE",
];

/// Which routes need credentials once credentials are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// `/metrics` only.
    Metrics,
    /// `/metrics`, `/view_metrics`, `/chaos`, `/api/chaos`, `/panic`, `/synthetic` and `/api/synthetic`.
    All,
}

/// The authentication settings, as flags and variables (flattened into [`super::Config`]).
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// Bearer token that /metrics requires (`Authorization: Bearer <token>`); unset: no token; empty: an error.
    #[arg(long, env = "METRICS_AUTH_TOKEN", value_name = "METRICS_AUTH_TOKEN", value_parser = parse_token, hide_env_values = true)]
    pub metrics_auth_token: Option<SecretString>,

    /// File holding the bearer token (a trailing newline is ignored), read once at start.
    #[arg(long, env = "METRICS_AUTH_TOKEN_FILE", value_name = "METRICS_AUTH_TOKEN_FILE", value_parser = read_secret_file)]
    pub metrics_auth_token_file: Option<SecretString>,

    /// User name of HTTP basic authentication on /metrics; needs a password too.
    #[arg(long, env = "METRICS_AUTH_USERNAME", value_name = "METRICS_AUTH_USERNAME", value_parser = parse_username)]
    pub metrics_auth_username: Option<String>,

    /// Password of HTTP basic authentication on /metrics; needs a user name too; empty: an error.
    #[arg(long, env = "METRICS_AUTH_PASSWORD", value_name = "METRICS_AUTH_PASSWORD", value_parser = parse_password, hide_env_values = true)]
    pub metrics_auth_password: Option<SecretString>,

    /// File holding the basic authentication password (a trailing newline is ignored).
    #[arg(long, env = "METRICS_AUTH_PASSWORD_FILE", value_name = "METRICS_AUTH_PASSWORD_FILE", value_parser = read_secret_file)]
    pub metrics_auth_password_file: Option<SecretString>,

    /// Routes that need the credentials: `metrics` (/metrics only) or `all` (also /view_metrics, /chaos, /api/chaos, /panic, /synthetic and /api/synthetic).
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

    /// The bearer token, from the flag, the variable or the file.
    pub fn token(&self) -> Option<&SecretString> {
        self.metrics_auth_token
            .as_ref()
            .or(self.metrics_auth_token_file.as_ref())
    }

    /// The basic authentication password, from the flag, the variable or the file.
    pub fn password(&self) -> Option<&SecretString> {
        self.metrics_auth_password
            .as_ref()
            .or(self.metrics_auth_password_file.as_ref())
    }
}

/// A secret on one line, never empty.
fn parse_secret(value: &str, what: &str) -> Result<SecretString, String> {
    if value.is_empty() {
        return Err(format!(
            "the {what} is empty; an empty {what} would accept empty credentials: set a {what} or unset the setting"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("the value has control characters; expected a single line".to_string());
    }
    Ok(SecretString::from(value))
}

fn parse_token(value: &str) -> Result<SecretString, String> {
    parse_secret(value, "token")
}

fn parse_password(value: &str) -> Result<SecretString, String> {
    parse_secret(value, "password")
}

fn parse_username(value: &str) -> Result<String, String> {
    if value.contains(':') || value.chars().any(char::is_control) {
        return Err("expected a user name without ':' or control characters".to_string());
    }
    Ok(value.to_string())
}

/// Reads a secret from a file at start: its content with trailing line breaks removed; a file
/// that is missing, unreadable or empty is an error (which names the path, never the content).
fn read_secret_file(value: &str) -> Result<SecretString, String> {
    if value.is_empty() {
        return Err("the path is empty; expected the path of a readable file".to_string());
    }
    let content = std::fs::read_to_string(value)
        .map_err(|err| format!("cannot read the file: {err}; expected a readable file"))?;
    let secret = content.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err("the file is empty; expected the secret on its first line".to_string());
    }
    parse_secret(secret, "secret").map_err(|_| {
        "the file has control characters inside; expected the secret on one line".to_string()
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

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

    #[test]
    fn settings_that_do_not_go_together_are_refused() {
        let both = AuthSettings {
            metrics_auth_token: Some("a".into()),
            metrics_auth_token_file: Some("b".into()),
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
            metrics_auth_token: Some("hunter2".into()),
            ..settings()
        };

        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn an_empty_token_or_password_is_refused() {
        assert!(parse_token("").unwrap_err().contains("token is empty"));
        assert!(
            parse_password("")
                .unwrap_err()
                .contains("password is empty")
        );
        assert!(read_secret_file("").unwrap_err().contains("path is empty"));
        assert_eq!(parse_token("t").unwrap().expose_secret(), "t");
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline_and_must_not_be_empty() {
        let dir = std::env::temp_dir().join(format!("pma-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, empty) = (dir.join("token"), dir.join("empty"));
        std::fs::write(&good, "tok en\n").unwrap();
        std::fs::write(&empty, "\n").unwrap();

        assert_eq!(
            read_secret_file(good.to_str().unwrap())
                .unwrap()
                .expose_secret(),
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
