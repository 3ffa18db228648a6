//! The HTML pages as served: one navigation on every page, `/metrics` in it only when served,
//! the routes the home page lists, and what the task page tells.

use prom_metrics_app::{
    config::{Backend, Config},
    http,
};

use crate::helpers::spawn_app_configured;

/// Every page the navigation is on, the 404 page included.
const PAGES: [&str; 8] = [
    "/",
    "/index",
    "/view_metrics",
    "/chaos",
    "/synthetic",
    "/chain",
    "/do_task?seconds=0",
    "/no-such-page",
];

/// The `href`s of the main navigation of `page`, and the one marked current.
fn navigation(page: &str) -> (Vec<String>, Vec<String>) {
    let nav = page
        .split("<nav aria-label=\"Main\">")
        .nth(1)
        .and_then(|rest| rest.split("</nav>").next())
        .unwrap_or_else(|| panic!("no main navigation: {page}"));
    let mut links = Vec::new();
    let mut current = Vec::new();
    for anchor in nav.split("<a href=\"").skip(1) {
        let href = anchor.split('"').next().unwrap().to_string();
        if anchor
            .split('>')
            .next()
            .unwrap()
            .contains("aria-current=\"page\"")
        {
            current.push(href.clone());
        }
        links.push(href);
    }
    (links, current)
}

async fn navigation_with(backend: Backend) -> Vec<(&'static str, Vec<String>, Vec<String>)> {
    let mut config = Config::defaults();
    config.metrics_backend = backend;
    let app = spawn_app_configured(config, http::counted_routes()).await;
    let mut seen = Vec::new();
    for path in PAGES {
        let page = app.get(path).await.text().await.unwrap();
        let (links, current) = navigation(&page);
        seen.push((path, links, current));
    }
    seen
}

#[tokio::test]
async fn every_page_has_one_navigation_that_links_metrics_only_when_it_is_served() {
    let scraped = navigation_with(Backend::Prometheus).await;
    let pushed = navigation_with(Backend::Otel).await;

    for (path, links, _) in &scraped {
        assert_eq!(
            links,
            &[
                "/",
                "/view_metrics",
                "/metrics",
                "/chaos",
                "/chain",
                "/do_task?seconds=0.5"
            ],
            "{path}"
        );
    }
    for (path, links, _) in &pushed {
        assert_eq!(
            links,
            &[
                "/",
                "/view_metrics",
                "/chaos",
                "/chain",
                "/do_task?seconds=0.5"
            ],
            "{path}"
        );
    }
    let current: Vec<(&str, Vec<String>)> = scraped
        .into_iter()
        .map(|(path, _, current)| (path, current))
        .collect();
    assert_eq!(
        current,
        [
            ("/", vec!["/".to_string()]),
            ("/index", vec!["/".to_string()]),
            ("/view_metrics", vec!["/view_metrics".to_string()]),
            ("/chaos", vec!["/chaos".to_string()]),
            ("/synthetic", vec![]),
            ("/chain", vec!["/chain".to_string()]),
            (
                "/do_task?seconds=0",
                vec!["/do_task?seconds=0.5".to_string()]
            ),
            ("/no-such-page", vec![]),
        ]
    );
}

#[tokio::test]
async fn the_task_page_tells_how_to_ask_for_the_original_five_seconds() {
    let app = spawn_app_configured(Config::defaults(), http::counted_routes()).await;

    let page = app.get("/do_task?seconds=0").await.text().await.unwrap();
    let text = page.split_whitespace().collect::<Vec<_>>().join(" ");

    assert!(
        text.contains("took <strong class=\"num\">0 s</strong>"),
        "{page}"
    );
    assert!(
        text.contains("The original's task takes 5 seconds"),
        "{page}"
    );
    assert!(page.contains("<a href=\"/do_task\">"), "{page}");
    assert!(page.contains("<a href=\"/do_task?seconds=5\">"), "{page}");
}

#[tokio::test]
async fn the_home_page_lists_every_route_a_user_can_call() {
    let app = spawn_app_configured(Config::defaults(), http::counted_routes()).await;

    let page = app.get("/").await.text().await.unwrap();
    let list = page
        .split("id=\"route-list\"")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .unwrap_or_else(|| panic!("no route list: {page}"));
    let named: Vec<&str> = list
        .split("<tr><td>")
        .skip(1)
        .map(|cell| cell.split("</td>").next().unwrap())
        .collect();

    for route in [
        "/",
        "/index",
        "/do_task",
        "/chain",
        "/status/{code}",
        "/chaos",
        "/api/chaos",
        "/panic",
        "/synthetic",
        "/api/synthetic",
        "/view_metrics",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            named
                .iter()
                .any(|cell| cell.contains(&format!(">{route}<")) || *cell == route),
            "{route} is not in the home page's route list: {named:?}"
        );
    }
}
