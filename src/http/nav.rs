//! The navigation that every page shows, written down once: the same links in the same order,
//! with the page the reader is on marked for assistive technology (`aria-current="page"`) and
//! for the eye. `base.html` draws it from the [`Nav`] each page's template carries.

use super::about::About;

/// The pages the navigation links; the one a page is marks its link current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Home,
    ViewMetrics,
    Metrics,
    Chaos,
    Chain,
    DoTask,
}

/// How long the task that the navigation asks for takes: short enough to feel like a click. The
/// original's 5 s is still the default of `/do_task` without a parameter.
pub const NAV_TASK: &str = "/do_task?seconds=0.5";

/// One link of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub href: &'static str,
    pub label: &'static str,
    /// Whether it is the page shown.
    pub current: bool,
}

/// The navigation of one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nav {
    /// The page shown, if the navigation links it (the error pages are none of them).
    current: Option<Page>,
    /// Whether `/metrics` is served, hence linked: only with the Prometheus backend.
    metrics: bool,
}

impl Nav {
    /// The navigation of `current` in the app that `about` describes.
    pub fn new(current: Option<Page>, about: &About) -> Self {
        Self {
            current,
            metrics: about.scraped(),
        }
    }

    /// The navigation of the 500 page, drawn where the app's state is out of reach (a panic, a
    /// failed rendering): without `/metrics`, which it cannot tell is served.
    pub fn without_state() -> Self {
        Self {
            current: None,
            metrics: false,
        }
    }

    /// The links, in order.
    pub fn links(&self) -> Vec<Link> {
        [
            (Page::Home, "/", "Home"),
            (Page::ViewMetrics, "/view_metrics", "View metrics"),
            (Page::Metrics, "/metrics", "/metrics"),
            (Page::Chaos, "/chaos", "Chaos"),
            (Page::Chain, "/chain", "Chain"),
            (Page::DoTask, NAV_TASK, "Do a task"),
        ]
        .into_iter()
        .filter(|(page, _, _)| *page != Page::Metrics || self.metrics)
        .map(|(page, href, label)| Link {
            href,
            label,
            current: self.current == Some(page),
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, Config};

    fn about(backend: Backend) -> About {
        let mut config = Config::defaults();
        config.metrics_backend = backend;
        About::of(&config)
    }

    #[test]
    fn metrics_is_linked_only_when_it_is_served() {
        let hrefs = |backend| -> Vec<&str> {
            Nav::new(None, &about(backend))
                .links()
                .iter()
                .map(|link| link.href)
                .collect()
        };

        assert_eq!(
            hrefs(Backend::Prometheus),
            [
                "/",
                "/view_metrics",
                "/metrics",
                "/chaos",
                "/chain",
                NAV_TASK
            ]
        );
        assert_eq!(
            hrefs(Backend::Otel),
            ["/", "/view_metrics", "/chaos", "/chain", NAV_TASK]
        );
    }

    #[test]
    fn only_the_page_shown_is_current() {
        let nav = Nav::new(Some(Page::Chain), &about(Backend::Prometheus));

        let current: Vec<&str> = nav
            .links()
            .iter()
            .filter(|link| link.current)
            .map(|link| link.href)
            .collect();

        assert_eq!(current, ["/chain"]);
        assert!(Nav::without_state().links().iter().all(|l| !l.current));
    }
}
