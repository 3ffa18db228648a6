//! Every page at a desktop size (1280x900) and a phone size (390x844, emulated) in a real
//! Chromium: no sideways scroll, one navigation with the current page marked, nothing logged,
//! the summary cards of `/view_metrics`. One tour collects the facts and saves the screenshots;
//! each test checks one of them.

use std::{collections::BTreeSet, sync::OnceLock, time::Duration};

use prom_metrics_app::{config::Config, http};
use serde_json::Value;

use super::{
    CLOSED_NETWORK,
    cdp::{Browser, Problem, Viewport},
    screenshots,
};
use crate::helpers::{free_port, spawn_app_configured};

const DESKTOP: Viewport = Viewport {
    name: "desktop",
    width: 1280,
    height: 900,
    mobile: false,
};
const PHONE: Viewport = Viewport {
    name: "phone",
    width: 390,
    height: 844,
    mobile: true,
};

/// The pages visited: a name for the screenshot, the path, and the link of the navigation that
/// must be marked current (`None`: no link is).
const PAGES: [(&str, &str, Option<&str>); 8] = [
    ("home", "/", Some("/")),
    ("index", "/index", Some("/")),
    ("view_metrics", "/view_metrics", Some("/view_metrics")),
    ("chaos", "/chaos", Some("/chaos")),
    ("synthetic", "/synthetic", None),
    ("chain", "/chain", Some("/chain")),
    (
        "do_task",
        "/do_task?seconds=0.1",
        Some("/do_task?seconds=0.5"),
    ),
    ("404", "/no-such-page", None),
];

/// The navigation every page shows, in order, with the Prometheus backend.
const NAVIGATION: [&str; 6] = [
    "/",
    "/view_metrics",
    "/metrics",
    "/chaos",
    "/chain",
    "/do_task?seconds=0.5",
];

/// What the page tells about itself, read in the browser.
const FACTS: &str = include_str!("facts.js");

/// One page seen at one size.
struct Visit {
    page: &'static str,
    path: &'static str,
    current: Option<&'static str>,
    viewport: Viewport,
    facts: Value,
    problems: Vec<Problem>,
}

impl Visit {
    fn name(&self) -> String {
        format!("{} at {}", self.path, self.viewport.name)
    }
}

/// What the tour saw: every visit, and the rate card of `/view_metrics` after its first
/// refresh.
struct Tour {
    visits: Vec<Visit>,
    rate_before: String,
    rate_after: String,
}

/// The tour, made once for all the tests of this module.
fn tour() -> &'static Tour {
    static TOUR: OnceLock<Tour> = OnceLock::new();
    TOUR.get_or_init(take_tour)
}

/// Starts an app whose `/chain` calls a healthy downstream and one that is down, makes some
/// traffic of each class, then visits every page at both sizes.
fn take_tour() -> Tour {
    let (url, runtime) = serve_app();
    let get = |path: &str| {
        reqwest::blocking::get(format!("{url}{path}")).expect("a request");
    };
    for path in [
        "/do_task?seconds=0",
        "/do_task?seconds=0.02",
        "/no-such-page",
        "/status/503",
    ] {
        get(path);
    }
    let mut browser = Browser::start(&[CLOSED_NETWORK]);
    let dir = screenshots();
    let mut visits = Vec::new();
    let mut rates = (String::new(), String::new());
    for viewport in [DESKTOP, PHONE] {
        browser.set_viewport(viewport);
        for (page, path, current) in PAGES {
            browser.navigate(&format!("{url}{path}"));
            if page == "view_metrics" && !viewport.mobile {
                rates = rate_over_one_refresh(&mut browser, &get);
            }
            let facts = browser.evaluate(FACTS);
            let png = browser.screenshot();
            std::fs::write(dir.join(format!("{page}-{}.png", viewport.name)), png)
                .expect("target/screenshots is writable");
            visits.push(Visit {
                page,
                path,
                current,
                viewport,
                facts,
                problems: browser.problems(),
            });
        }
    }
    drop(runtime);
    Tour {
        visits,
        rate_before: rates.0,
        rate_after: rates.1,
    }
}

/// The rate card before the page's first refresh and after it, with requests made between.
fn rate_over_one_refresh(browser: &mut Browser, get: &impl Fn(&str)) -> (String, String) {
    let rate = "(document.getElementById('rate') || {}).textContent || ''";
    let before = browser
        .evaluate(rate)
        .as_str()
        .unwrap_or_default()
        .to_string();
    for _ in 0..6 {
        get("/do_task?seconds=0");
    }
    browser.wait_for(&format!("/\\d/.test({rate})"), Duration::from_secs(8));
    let after = browser
        .evaluate(rate)
        .as_str()
        .unwrap_or_default()
        .to_string();
    (before, after)
}

/// Serves the app and its healthy downstream on a runtime of their own, which the tour drops
/// when it is done; returns the app's base URL.
fn serve_app() -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let url = runtime.block_on(async {
        let downstream = spawn_app_configured(Config::defaults(), http::counted_routes()).await;
        let down = format!("http://127.0.0.1:{}", free_port());
        let config = Config::try_parse_args([
            "prom-metrics-app",
            "--downstream-url",
            &format!("{},{down}", downstream.url("")),
        ])
        .expect("valid downstreams");
        let app = spawn_app_configured(config, http::counted_routes()).await;
        let url = app.url("");
        // Both keep serving until the runtime is dropped.
        tokio::spawn(async move {
            let _apps = (downstream, app);
            std::future::pending::<()>().await
        });
        url
    });
    (url, runtime)
}

/// The failures of `check` over every visit, one line each.
fn failures(check: impl Fn(&Visit) -> Option<String>) -> Vec<String> {
    tour()
        .visits
        .iter()
        .filter_map(|visit| check(visit).map(|why| format!("{}: {why}", visit.name())))
        .collect()
}

fn assert_none(failures: Vec<String>) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn no_page_scrolls_sideways_at_desktop_or_phone_width() {
    assert_none(failures(|visit| {
        let (scroll, client) = (
            visit.facts["scrollWidth"].as_f64()?,
            visit.facts["clientWidth"].as_f64()?,
        );
        (scroll > client || client > f64::from(visit.viewport.width)).then(|| {
            format!(
                "{scroll} px wide in a {client} px window; too wide: {}",
                visit.facts["tooWide"]
            )
        })
    }));
}

#[test]
fn every_page_shows_the_same_navigation_with_the_current_page_marked() {
    assert_none(failures(|visit| {
        let links: Vec<&str> = visit.facts["nav"]
            .as_array()?
            .iter()
            .filter_map(|link| link["href"].as_str())
            .collect();
        let marked: Vec<&str> = visit.facts["nav"]
            .as_array()?
            .iter()
            .filter(|link| link["current"] == "page")
            .filter_map(|link| link["href"].as_str())
            .collect();
        if links != NAVIGATION {
            return Some(format!("links {links:?}, expected {NAVIGATION:?}"));
        }
        if marked != visit.current.into_iter().collect::<Vec<_>>() {
            return Some(format!("marked {marked:?}, expected {:?}", visit.current));
        }
        (visit.current.is_some() && visit.facts["currentStyled"] != true)
            .then(|| "the current link looks like the others".to_string())
    }));
}

#[test]
fn the_name_of_the_app_never_breaks_and_the_footer_lines_up_with_the_content() {
    assert_none(failures(|visit| {
        let facts = &visit.facts;
        let broken: Vec<&Value> = facts["names"]
            .as_array()?
            .iter()
            .filter(|name| name["lines"] != 1)
            .collect();
        if facts["brand"] != "prom-metrics-app" || !broken.is_empty() {
            return Some(format!(
                "brand {}; prom-metrics-app drawn on several lines: {broken:?}",
                facts["brand"]
            ));
        }
        let (main, footer) = (facts["mainLeft"].as_f64()?, facts["footerLeft"].as_f64()?);
        ((main - footer).abs() > 1.0)
            .then(|| format!("the content starts at {main} px, the footer at {footer} px"))
    }));
}

#[test]
fn no_page_logs_an_error_or_a_content_security_policy_violation() {
    assert_none(failures(|visit| {
        // The pages that answer an error status are reported as a failed load, and only them.
        let status = match visit.page {
            "404" => Some("status of 404"),
            "chain" => Some("status of 502"),
            _ => None,
        };
        let problems: Vec<String> = visit
            .problems
            .iter()
            .filter(|p| {
                !(p.source == "network"
                    && status.is_some_and(|s| p.text.contains(s))
                    && p.url.ends_with(visit.path))
            })
            .map(|p| format!("[{}] {} {}", p.source, p.text, p.url))
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }));
}

#[test]
fn the_metrics_page_opens_with_summary_cards_and_a_full_width_chart() {
    let visits = tour().visits.iter().filter(|v| v.page == "view_metrics");

    let mut problems = Vec::new();
    for visit in visits {
        let cards = &visit.facts["cards"];
        let labels: BTreeSet<&str> = cards
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|card| card["id"].as_str())
            .collect();
        let expected = BTreeSet::from(["errors", "p50", "p99", "rate", "requests"]);
        if labels != expected {
            problems.push(format!("{}: cards {labels:?}", visit.name()));
        }
        if cards
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["tabular"] != true)
        {
            problems.push(format!(
                "{}: card figures not tabular: {cards}",
                visit.name()
            ));
        }
        let errors = &visit.facts["errorColours"];
        if errors["5xx"] == errors["ink"]
            || errors["4xx"] == errors["ink"]
            || errors["4xx"] == errors["5xx"]
        {
            problems.push(format!(
                "{}: 4xx and 5xx not coloured: {errors}",
                visit.name()
            ));
        }
        if visit.facts["bucketsFolded"] != true {
            problems.push(format!(
                "{}: the bucket table is not folded away",
                visit.name()
            ));
        }
        if !visit.viewport.mobile && visit.facts["chartShare"].as_f64().unwrap_or(0.0) < 0.95 {
            problems.push(format!(
                "{}: the chart fills {} of the content's width",
                visit.name(),
                visit.facts["chartShare"]
            ));
        }
    }

    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_request_rate_is_measured_from_two_snapshots() {
    let tour = tour();

    assert!(
        tour.rate_before.contains('—'),
        "before the first refresh: {:?}",
        tour.rate_before
    );
    let rate: f64 = tour
        .rate_after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("after the first refresh: {:?}", tour.rate_after));
    // 6 requests in one refresh interval of about 3 s.
    assert!((0.5..=6.0).contains(&rate), "{rate}");
}

#[test]
fn the_chaos_buttons_are_styled() {
    let chaos = tour().visits.iter().filter(|v| v.page == "chaos");

    let unstyled: Vec<String> = chaos
        .filter(|visit| visit.facts["buttonsStyled"] != true)
        .map(Visit::name)
        .collect();

    assert!(unstyled.is_empty(), "{unstyled:?}");
}

#[test]
fn a_screenshot_of_every_page_is_saved_at_both_sizes() {
    let tour = tour();

    assert_eq!(tour.visits.len(), PAGES.len() * 2);
    for (page, _, _) in PAGES {
        for size in [DESKTOP.name, PHONE.name] {
            let file = screenshots().join(format!("{page}-{size}.png"));
            let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(&png[1..4], b"PNG", "{}", file.display());
            assert!(
                png.len() > 10_000,
                "{}: a page with content, not a blank image: {} bytes",
                file.display(),
                png.len()
            );
        }
    }
}
