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
