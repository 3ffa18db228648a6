//! Why a run of `prom-metrics-app load` failed, and the exit code that says so.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path of the mix does not make a URL on the target.
    #[error("invalid value '{value}' for --mix: {reason}")]
    Mix { value: String, reason: String },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// Every request failed to connect.
    #[error(
        "could not reach {target}: all {sent} requests failed to connect ({cause}); check the URL and that the app runs there"
    )]
    Unreachable {
        target: String,
        sent: u64,
        cause: String,
    },
}

impl LoadError {
    /// The exit code: 2 for a bad flag, as clap's own errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Mix { .. } => crate::config::EXIT_CONFIG as u8,
            LoadError::Client(_) | LoadError::Unreachable { .. } => 1,
        }
    }
}
