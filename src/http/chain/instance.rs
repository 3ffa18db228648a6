//! This instance as a link of a chain: its random id, its `service.name`, its downstreams and the
//! client that calls them. Made once at start.

use super::client::{Client, Downstream};
use crate::config::Config;

/// What `/chain` needs, made once at start from the configuration.
pub struct Chain {
    /// This instance's id on paths: random, new at each start.
    pub(super) instance: String,
    /// `service.name`, shown on each hop.
    pub(super) service: String,
    pub(super) downstreams: Vec<Downstream>,
    pub(super) client: Client,
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
                .map(Downstream::new)
                .collect(),
            client: Client::new(config),
        }
    }

    /// This instance's id, as sent in [`PATH_HEADER`].
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::http::chain::path::parse_path;

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
}
