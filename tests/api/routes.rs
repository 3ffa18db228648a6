//! Every route answers as the original did, with HTML pages that need nothing from the internet.

use axum::routing::get;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn home_and_index_answer_get_and_post_with_the_home_page() {
    let app = spawn_app().await;

    for (method, path) in [
        ("GET", "/"),
        ("POST", "/"),
        ("GET", "/index"),
        ("POST", "/index"),
    ] {
        let response = match method {
            "GET" => app.get(path).await,
            _ => app.post(path).await,
        };

        assert_eq!(response.status(), 200, "{method} {path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = response.text().await.unwrap();
        assert!(
            body.contains("<h1>Welcome to <span class=\"name\">prom-metrics-app</span></h1>"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn pages_load_no_external_resources() {
    let app = spawn_app().await;

    for path in ["/", "/view_metrics", "/do_task?seconds=0", "/missing"] {
        let body = app.get(path).await.text().await.unwrap();

        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} refers outside: {body}"
        );
        assert!(body.contains("/static/style.css"), "{path}");
    }
}

#[tokio::test]
async fn embedded_assets_are_served_with_their_types() {
    let app = spawn_app().await;

    let css = app.get("/static/style.css").await;
    let icon = app.get("/static/favicon.svg").await;

    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("body"));
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn do_task_takes_the_requested_seconds() {
    let app = spawn_app().await;

    let start = std::time::Instant::now();
    let response = app.get("/do_task?seconds=0.3").await;

    assert_eq!(response.status(), 200);
    assert!(start.elapsed() >= std::time::Duration::from_millis(300));
    assert!(response.text().await.unwrap().contains("Task done"));
}

#[tokio::test]
async fn do_task_takes_five_seconds_by_default() {
    let app = spawn_app().await;

    let start = std::time::Instant::now();
    let response = app.post("/do_task").await;

    assert_eq!(response.status(), 200);
    let elapsed = start.elapsed().as_secs_f64();
    assert!((5.0..6.5).contains(&elapsed), "took {elapsed} s");
}

#[tokio::test]
async fn do_task_rejects_bad_seconds_with_a_one_line_reason() {
    let app = spawn_app().await;

    for bad in ["abc", "-1", "60.5", "NaN", "inf", "1e9", ""] {
        let response = app.get(&format!("/do_task?seconds={bad}")).await;

        assert_eq!(response.status(), 400, "seconds={bad}");
        let body = response.text().await.unwrap();
        assert_eq!(body.trim().lines().count(), 1, "{body}");
        assert!(
            body.contains("seconds must be a number from 0 to 60"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_get_the_html_404_page() {
    let app = spawn_app().await;

    let response = app.get("/no/such/page?x=1").await;

    assert_eq!(response.status(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("404: page not found")
    );
}

#[tokio::test]
async fn a_panicking_handler_gets_the_500_page_and_the_server_carries_on() {
    let mut routes = prom_metrics_app::http::counted_routes();
    routes.push(("/boom", get(crate::helpers::panicking_handler)));
    let app = spawn_app_with(routes).await;

    let failed = app.get("/boom").await;
    let after = app.get("/").await;

    assert_eq!(failed.status(), 500);
    assert!(
        failed
            .text()
            .await
            .unwrap()
            .contains("500: something went wrong")
    );
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn a_failing_handler_gets_the_500_page() {
    let mut routes = prom_metrics_app::http::counted_routes();
    routes.push((
        "/fail",
        get(|| async {
            Err::<String, _>(prom_metrics_app::http::AppError::Internal(
                "disk on fire".into(),
            ))
        }),
    ));
    let app = spawn_app_with(routes).await;

    let response = app.get("/fail").await;

    assert_eq!(response.status(), 500);
    let body = response.text().await.unwrap();
    assert!(body.contains("500: something went wrong"));
    assert!(
        !body.contains("disk on fire"),
        "the cause goes to the log, not to the user"
    );
}

#[tokio::test]
async fn probes_report_liveness_and_readiness() {
    let app = spawn_app().await;

    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.state.begin_shutdown();

    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn unsupported_methods_get_405() {
    let app = spawn_app().await;

    let response = app.client.delete(app.url("/do_task")).send().await.unwrap();

    assert_eq!(response.status(), 405);
}
