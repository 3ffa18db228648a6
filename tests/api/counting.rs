//! The original's counting rule, exact under concurrency, with bounded label values.

use std::collections::HashSet;

use axum::routing::get;

use crate::helpers::{spawn_app, spawn_app_with, value};

#[tokio::test]
async fn each_route_counts_by_the_original_rule() {
    let app = spawn_app().await;

    app.get("/").await;
    app.post("/index").await;
    app.get("/do_task?seconds=0").await;
    app.get("/missing").await;
    app.get("/do_task?seconds=bad").await;
    let metrics = app.metrics().await;

    assert_eq!(value(&metrics, "http_requests_total"), 5.0);
    assert_eq!(value(&metrics, "http_successful_request_total"), 3.0);
    assert_eq!(value(&metrics, "http_error_4xx_total"), 2.0);
    assert_eq!(value(&metrics, "http_error_5xx_total"), 0.0);
    assert_eq!(value(&metrics, "request_processing_seconds_count"), 5.0);
    assert_eq!(
        value(&metrics, "request_processing_seconds_bucket{le=\"+Inf\"}"),
        5.0
    );
}

#[tokio::test]
async fn viewing_scraping_and_probing_count_nothing() {
    let app = spawn_app().await;

    for path in [
        "/view_metrics",
        "/metrics",
        "/healthz",
        "/readyz",
        "/static/style.css",
        "/favicon.ico",
    ] {
        app.get(path).await;
    }
    app.post("/view_metrics").await;
    let metrics = app.metrics().await;

    assert_eq!(value(&metrics, "http_requests_total"), 0.0);
    assert_eq!(value(&metrics, "request_processing_seconds_count"), 0.0);
    assert!(
        !metrics
            .keys()
            .any(|k| k.starts_with("http_server_request_duration_seconds_count"))
    );
}

#[tokio::test]
async fn failures_count_as_5xx() {
    let mut routes = prom_metrics_app::http::counted_routes();
    routes.push(("/boom", get(crate::helpers::panicking_handler)));
    let app = spawn_app_with(routes).await;

    app.get("/boom").await;
    let metrics = app.metrics().await;

    assert_eq!(value(&metrics, "http_requests_total"), 1.0);
    assert_eq!(value(&metrics, "http_error_5xx_total"), 1.0);
    assert_eq!(
        value(
            &metrics,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/boom\",http_response_status_code=\"500\",url_scheme=\"http\",error_type=\"500\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn a_new_route_is_counted_and_labelled_without_extra_code() {
    let mut routes = prom_metrics_app::http::counted_routes();
    routes.push(("/items/{id}", get(|| async { "item" })));
    let app = spawn_app_with(routes).await;

    app.get("/items/1").await;
    app.get("/items/2").await;
    let metrics = app.metrics().await;

    assert_eq!(value(&metrics, "http_successful_request_total"), 2.0);
    assert_eq!(
        value(
            &metrics,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/items/{id}\",http_response_status_code=\"200\",url_scheme=\"http\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn random_urls_share_one_series() {
    let app = spawn_app().await;

    for i in 0..20 {
        app.get(&format!("/random-{i}/{}", i * 7)).await;
    }
    let text = app.get("/metrics").await.text().await.unwrap();

    assert!(
        !text.contains("random-"),
        "raw paths must never become label values"
    );
    let series: HashSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count"))
        .collect();
    assert_eq!(series.len(), 1, "{series:?}");
    assert!(text.contains(
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"unmatched\",http_response_status_code=\"404\",url_scheme=\"http\"} 20"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_counter_is_exact_after_1000_concurrent_mixed_requests() {
    let app = spawn_app().await;
    let paths = [
        "/",
        "/index",
        "/do_task?seconds=0.01",
        "/missing",
        "/do_task?seconds=x",
    ];

    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (client, url, post) = (
            app.client.clone(),
            app.url(paths[i % paths.len()]),
            i % 2 == 0,
        );
        tasks.push(tokio::spawn(async move {
            let request = if post {
                client.post(url)
            } else {
                client.get(url)
            };
            request
                .send()
                .await
                .expect("request sent")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let metrics = app.metrics().await;

    let ok = statuses.iter().filter(|s| **s < 400).count() as f64;
    let client_errors = statuses.iter().filter(|s| (400..500).contains(*s)).count() as f64;
    assert_eq!((ok, client_errors), (600.0, 400.0));
    assert_eq!(value(&metrics, "http_requests_total"), 1000.0);
    assert_eq!(value(&metrics, "http_successful_request_total"), 600.0);
    assert_eq!(value(&metrics, "http_error_4xx_total"), 400.0);
    assert_eq!(value(&metrics, "http_error_5xx_total"), 0.0);
    assert_eq!(value(&metrics, "request_processing_seconds_count"), 1000.0);
    let labelled: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("http_server_request_duration_seconds_count"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(labelled, 1000.0);
}

#[tokio::test]
async fn view_metrics_shows_the_backend_values_and_every_bucket() {
    let app = spawn_app().await;

    app.get("/").await;
    app.get("/missing").await;
    app.get("/do_task?seconds=0.06").await;
    let page = app.get("/view_metrics").await.text().await.unwrap();

    for (name, count) in [
        ("http_requests_total", 3),
        ("http_successful_request_total", 2),
        ("http_error_4xx_total", 1),
        ("http_error_5xx_total", 0),
    ] {
        assert!(
            page.contains(&format!("<td>{name}</td><td class=\"num\">{count}</td>")),
            "{name}: {page}"
        );
    }
    assert!(page.contains("id=\"histogram-count\">3</td>"), "{page}");
    assert_eq!(cumulative(&page, "0.05"), Some("2"), "{page}");
    assert_eq!(cumulative(&page, "0.075"), Some("3"), "{page}");
    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5",
        "7.5", "10", "+Inf",
    ] {
        assert!(
            page.contains(&format!("<tr data-le=\"{le}\"><td>{le}</td>")),
            "bucket {le}: {page}"
        );
    }
}

#[tokio::test]
async fn a_request_abandoned_by_its_client_is_counted_once_as_499() {
    let app = spawn_app().await;
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();

    let result = impatient.get(app.url("/do_task?seconds=2")).send().await;
    let metrics = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        let metrics = app.metrics().await;
        (metrics.get("http_requests_total") == Some(&1.0)).then_some(metrics)
    })
    .await
    .expect("the abandoned request is counted");

    assert!(result.is_err(), "the client gave up");
    assert_eq!(value(&metrics, "http_requests_total"), 1.0);
    assert_eq!(value(&metrics, "http_error_4xx_total"), 1.0);
    assert_eq!(
        value(
            &metrics,
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"/do_task\",http_response_status_code=\"499\",url_scheme=\"http\",error_type=\"client_closed\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn a_405_on_a_counted_route_counts_as_4xx() {
    let app = spawn_app().await;

    let response = app.client.delete(app.url("/do_task")).send().await.unwrap();
    let metrics = app.metrics().await;

    assert_eq!(response.status(), 405);
    assert_eq!(value(&metrics, "http_requests_total"), 1.0);
    assert_eq!(value(&metrics, "http_error_4xx_total"), 1.0);
    assert_eq!(value(&metrics, "http_successful_request_total"), 0.0);
}

/// The cumulative count in the row of bucket `le` of the page's bucket table.
pub fn cumulative<'a>(page: &'a str, le: &str) -> Option<&'a str> {
    let row = page.split(&format!("<tr data-le=\"{le}\">")).nth(1)?;
    let row = row.split("</tr>").next()?;
    row.rsplit("<td class=\"num\">")
        .next()?
        .strip_suffix("</td>")
}
