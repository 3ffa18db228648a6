//! Authentication of `/metrics` and, with `METRICS_AUTH_SCOPE=all`, of the pages and controls
//! that read or change the metrics: 401 with a challenge, nothing counted, secrets never shown.

use std::time::Duration;

use prom_metrics_app::{config::Config, http};

use crate::{
    helpers::{TestApp, binary_command, spawn_app_configured, spawn_binary, value},
    prometheus::Prometheus,
};

const TOKEN: &str = "t0ken-for-tests";

fn config(args: &[&str]) -> Config {
    Config::try_parse_args(std::iter::once("prom-metrics-app").chain(args.iter().copied()))
        .expect("valid test arguments")
}

async fn app_with(args: &[&str]) -> TestApp {
    spawn_app_configured(config(args), http::counted_routes()).await
}

async fn get_with(app: &TestApp, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("request sent")
}

/// The counters of `/metrics`, read with the token.
async fn counters(app: &TestApp) -> [f64; 4] {
    let text = get_with(app, "/metrics", Some(&format!("Bearer {TOKEN}")))
        .await
        .text()
        .await
        .unwrap();
    let metrics = crate::helpers::parse_exposition(&text);
    [
        "http_requests_total",
        "http_successful_request_total",
        "http_error_4xx_total",
        "http_error_5xx_total",
    ]
    .map(|name| value(&metrics, name))
}

#[tokio::test]
async fn metrics_without_a_token_get_401_with_a_bearer_challenge_and_count_nothing() {
    let app = app_with(&["--metrics-auth-token", TOKEN]).await;
    app.get("/").await;
    let before = counters(&app).await;

    let missing = get_with(&app, "/metrics", None).await;
    let wrong = get_with(&app, "/metrics", Some("Bearer not-the-token")).await;
    let basic = get_with(&app, "/metrics", Some("Basic dXNlcjpwYXNz")).await;
    let right = get_with(&app, "/metrics", Some(&format!("Bearer {TOKEN}"))).await;

    for refused in [missing, wrong, basic] {
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.headers()["www-authenticate"],
            "Bearer realm=\"prom-metrics-app\""
        );
        let body = refused.text().await.unwrap();
        assert!(body.starts_with("401 Unauthorized: "), "{body}");
        assert!(!body.contains(TOKEN), "{body}");
    }
    assert_eq!(right.status(), 200);
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("http_requests_total 1")
    );
    assert_eq!(counters(&app).await, before);
}

#[tokio::test]
async fn only_metrics_is_protected_by_default() {
    let app = app_with(&["--metrics-auth-token", TOKEN]).await;

    for path in [
        "/",
        "/view_metrics",
        "/api/chaos",
        "/chaos",
        "/healthz",
        "/readyz",
    ] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(app.get("/metrics").await.status(), 401);
}

#[tokio::test]
async fn scope_all_protects_the_metrics_pages_the_chaos_controls_and_panic() {
    let app = app_with(&["--metrics-auth-token", TOKEN, "--metrics-auth-scope", "all"]).await;
    let bearer = format!("Bearer {TOKEN}");

    for path in ["/metrics", "/view_metrics", "/api/chaos", "/chaos"] {
        assert_eq!(get_with(&app, path, None).await.status(), 401, "{path}");
        assert_eq!(
            get_with(&app, path, Some(&bearer)).await.status(),
            200,
            "{path}"
        );
    }
    let put = app
        .client
        .put(app.url("/api/chaos"))
        .body(r#"{"error_rate": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 401);
    assert_eq!(app.state.chaos.settings().error_rate, 0.0, "unchanged");
    let panic = |authorization: Option<&str>| {
        let mut request = app.client.post(app.url("/panic"));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send()
    };
    assert_eq!(panic(None).await.unwrap().status(), 401, "/panic");
    // With credentials it reaches the handler, which refuses: CHAOS_ALLOW_PANIC is not set.
    assert_eq!(panic(Some(&bearer)).await.unwrap().status(), 403, "/panic");
    for path in ["/", "/healthz", "/readyz", "/static/style.css"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn basic_credentials_alone_get_a_basic_challenge() {
    let app = app_with(&[
        "--metrics-auth-username",
        "prometheus",
        "--metrics-auth-password",
        "pa55",
    ])
    .await;

    let refused = get_with(&app, "/metrics", None).await;
    let accepted = app
        .client
        .get(app.url("/metrics"))
        .basic_auth("prometheus", Some("pa55"))
        .send()
        .await
        .unwrap();
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .basic_auth("prometheus", Some("pa56"))
        .send()
        .await
        .unwrap();

    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Basic realm=\"prom-metrics-app\""
    );
    assert_eq!(accepted.status(), 200);
    assert_eq!(wrong.status(), 401);
}

fn exit_of(envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = binary_command()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_empty_or_doubled_token_setting_stops_the_start_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("pma-auth-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.join("missing").display().to_string();
    let empty = empty.display().to_string();

    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("METRICS_AUTH_TOKEN_FILE", &missing)],
            "METRICS_AUTH_TOKEN_FILE",
        ),
        (
            &[("METRICS_AUTH_TOKEN_FILE", &empty)],
            "METRICS_AUTH_TOKEN_FILE",
        ),
        (
            &[
                ("METRICS_AUTH_TOKEN", "a"),
                ("METRICS_AUTH_TOKEN_FILE", &empty),
            ],
            "METRICS_AUTH_TOKEN_FILE",
        ),
        (
            &[("METRICS_AUTH_USERNAME", "prom")],
            "METRICS_AUTH_PASSWORD",
        ),
    ];
    for (envs, named) in cases {
        let (code, stderr) = exit_of(envs);
        assert_eq!(code, Some(2), "{envs:?}: {stderr}");
        assert!(stderr.contains(named), "{envs:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_secret_from_a_variable_a_flag_or_a_file_stops_the_start_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("pma-auth-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.display().to_string();
    // An app that starts anyway is stopped after a few seconds: a failure, not a hang.
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut child = binary_command()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("OTEL_EXPORTER", "none")
            .envs(envs.iter().copied())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 7] = [
        (&[("METRICS_AUTH_TOKEN", "")], &[], "METRICS_AUTH_TOKEN"),
        (
            &[("METRICS_AUTH_TOKEN_FILE", "")],
            &[],
            "METRICS_AUTH_TOKEN_FILE",
        ),
        (
            &[
                ("METRICS_AUTH_USERNAME", "prom"),
                ("METRICS_AUTH_PASSWORD", ""),
            ],
            &[],
            "METRICS_AUTH_PASSWORD",
        ),
        (
            &[("METRICS_AUTH_PASSWORD_FILE", "")],
            &[],
            "METRICS_AUTH_PASSWORD_FILE",
        ),
        (&[], &["--metrics-auth-token", ""], "METRICS_AUTH_TOKEN"),
        (&[], &["--metrics-auth-token="], "METRICS_AUTH_TOKEN"),
        (
            &[
                ("METRICS_AUTH_PASSWORD_FILE", &empty),
                ("METRICS_AUTH_USERNAME", "prom"),
            ],
            &[],
            "METRICS_AUTH_PASSWORD_FILE",
        ),
    ];
    for (envs, args, named) in cases {
        let (code, stderr) = run(envs, args);
        assert_eq!(code, Some(2), "{envs:?} {args:?}: {stderr}");
        assert!(stderr.contains(named), "{envs:?} {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn empty_presented_credentials_never_match() {
    let bearer = app_with(&["--metrics-auth-token", "s3cret"]).await;
    let basic = app_with(&[
        "--metrics-auth-username",
        "prom",
        "--metrics-auth-password",
        "pw",
    ])
    .await;

    let statuses = [
        get_with(&bearer, "/metrics", Some("Bearer")).await.status(),
        get_with(&bearer, "/metrics", Some("Bearer "))
            .await
            .status(),
        get_with(&bearer, "/metrics", Some("Bearer    "))
            .await
            .status(),
        get_with(&basic, "/metrics", Some("Basic")).await.status(),
        get_with(&basic, "/metrics", Some("Basic Og=="))
            .await
            .status(),
    ];
    let good = get_with(&bearer, "/metrics", Some("Bearer s3cret"))
        .await
        .status();

    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(good, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_never_appears_in_logs_or_pages() {
    let dir = std::env::temp_dir().join(format!("pma-auth-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let binary = spawn_binary(&[
        ("METRICS_AUTH_TOKEN_FILE", file.to_str().unwrap()),
        ("METRICS_AUTH_SCOPE", "all"),
        ("RUST_LOG", "debug"),
    ]);
    let client = reqwest::Client::new();

    let refused = client
        .get(binary.url("/metrics"))
        .header("authorization", "Bearer t0ken-for-test")
        .send()
        .await
        .unwrap();
    let accepted = client
        .get(binary.url("/view_metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let page = accepted.text().await.unwrap();
    let home = client
        .get(binary.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Every line of these requests is out once the last one's access line is.
    crate::helpers::eventually(Duration::from_secs(5), || async {
        binary.stdout().contains("access: GET / 200").then_some(())
    })
    .await
    .expect("the access line of the last request");

    assert_eq!(refused.status(), 401);
    for text in [page, home, binary.stdout()] {
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_with_the_token_file_and_a_job_without_it_is_down() {
    let app = app_with(&["--metrics-auth-token", TOKEN]).await;
    let target = app.address;
    let jobs = format!(
        "  - job_name: app\n    authorization:\n      type: Bearer\n      credentials_file: token\n    static_configs:\n      - targets: ['{target}']\n  - job_name: anonymous\n    static_configs:\n      - targets: ['{target}']\n"
    );
    let prometheus = Prometheus::start_with_jobs(
        &jobs,
        |dir| std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap(),
        &[],
    )
    .await;
    for path in ["/", "/missing", "/"] {
        app.get(path).await;
    }

    assert_eq!(prometheus.wait_for("up{job=\"app\"}", 1.0).await, Some(1.0));
    assert_eq!(
        prometheus.wait_for("up{job=\"anonymous\"}", 0.0).await,
        Some(0.0)
    );
    assert_eq!(
        prometheus
            .wait_for("http_requests_total{job=\"app\"}", 3.0)
            .await,
        Some(3.0)
    );
    // Several refused scrapes later, the counters are the same.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(counters(&app).await, [3.0, 2.0, 1.0, 0.0]);
    assert_eq!(
        prometheus.query("http_requests_total{job=\"app\"}").await,
        Some(3.0)
    );
}
