//! Graceful shutdown of the real binary on SIGTERM and SIGINT.

use std::time::Duration;

use crate::helpers::spawn_binary;

async fn in_flight_task_completes_after(signal: i32) {
    let mut binary = spawn_binary(&[]);
    let url = binary.url("/do_task?seconds=2");
    let task = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(500)).await;

    binary.signal(signal);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = reqwest::get(binary.url("/healthz")).await;
    let status = task.await.unwrap();
    let code = tokio::task::spawn_blocking(move || binary.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();

    assert_eq!(status.ok(), Some(200), "the in-flight task completes");
    assert!(refused.is_err(), "no new connections once shutdown began");
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_task_finish_then_exits_0() {
    in_flight_task_completes_after(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_lets_an_in_flight_task_finish_then_exits_0() {
    in_flight_task_completes_after(libc::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grace_period_bounds_the_drain() {
    let mut binary = spawn_binary(&[("SHUTDOWN_GRACE_PERIOD", "500ms")]);
    let url = binary.url("/do_task?seconds=30");
    let task = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = std::time::Instant::now();
    binary.signal(libc::SIGTERM);
    let code = tokio::task::spawn_blocking(move || binary.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();

    assert_eq!(code, Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        task.await.unwrap().is_err(),
        "the unfinished task is cut off"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_503_during_the_drain_delay_before_the_listener_closes() {
    let mut binary = spawn_binary(&[("SHUTDOWN_DRAIN_DELAY", "2s")]);
    let client = reqwest::Client::builder()
        // A new connection for each request: what a load balancer's probe does.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(binary.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    binary.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = client
        .get(binary.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    let live = client
        .get(binary.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    let home = client.get(binary.url("/")).send().await.unwrap().status();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = client.get(binary.url("/readyz")).send().await;
    let (code, stdout) = tokio::task::spawn_blocking(move || {
        let code = binary.wait_exit(Duration::from_secs(10));
        (code, binary.stdout())
    })
    .await
    .unwrap();

    assert_eq!(ready, 503, "not ready, seen over a new connection");
    assert_eq!(live, 200, "still alive");
    assert_eq!(home, 200, "still serving during the drain");
    assert!(after.is_err(), "the listener is closed after the delay");
    assert_eq!(code, Some(0));
    // Each step of the shutdown is logged, in order.
    let steps = [
        "received SIGTERM",
        "/readyz answers 503",
        "listener closed",
        "requests drained",
        "telemetry flushed",
        "exiting",
    ];
    let mut rest = stdout.as_str();
    for step in steps {
        let at = rest
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing or out of order in {stdout}"));
        rest = &rest[at..];
    }
}
