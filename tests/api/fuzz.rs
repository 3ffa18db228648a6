//! Properties of `/do_task?seconds=` over HTTP (its parser is private to the pages): any value
//! gets 200 or a 400 that quotes it, never a 5xx; valid values round-trip into the page.

use proptest::prelude::*;

use crate::helpers::{TestApp, spawn_app};

fn app() -> (tokio::runtime::Runtime, TestApp) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(spawn_app());
    (runtime, app)
}

fn do_task(runtime: &tokio::runtime::Runtime, app: &TestApp, raw: &str) -> (u16, String) {
    runtime.block_on(async {
        let response = app
            .client
            .get(format!("{}?seconds={raw}", app.url("/do_task")))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

/// Values that are not numbers from 0 to 60, or are so small they take no time.
fn seconds_values() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^0-9&#]{0,12}",
        "-[0-9]{1,4}(\\.[0-9]{1,3})?",
        "[6-9][1-9][0-9]{0,3}",
        "0\\.000[0-9]{1,3}",
        "(inf|NaN|1e999|0x10|1_0|\\+1)",
        "%[0-9A-F]{2}%[0-9A-F]{2}",
    ]
}

/// What the app must answer to `?seconds=<raw>`, worked out from the URL as the client sends it:
/// the value of `seconds` in the query, as a form decodes it, must be a number from 0 to 60.
fn expected_answer(url: &str) -> (u16, Option<String>) {
    let url = url::Url::parse(url).expect("a valid URL");
    let value = url
        .query_pairs()
        .find_map(|(key, value)| (key == "seconds").then(|| value.into_owned()));
    let Some(value) = value else {
        return (200, None);
    };
    match value.trim().parse::<f64>() {
        Ok(seconds) if (0.0..=60.0).contains(&seconds) => (200, None),
        _ => (
            400,
            Some(format!(
                "seconds must be a number from 0 to 60, got '{}'\n",
                value.chars().take(32).collect::<String>()
            )),
        ),
    }
}

#[test]
fn any_seconds_value_gets_exactly_the_answer_its_value_calls_for() {
    let (runtime, app) = app();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));

    runner
        .run(&seconds_values(), |raw| {
            let url = format!("{}?seconds={raw}", app.url("/do_task"));
            let (expected_status, expected_body) = expected_answer(&url);
            let (status, body) = runtime.block_on(async {
                let response = app.client.get(&url).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            });

            prop_assert_eq!(status, expected_status, "{}", raw);
            if let Some(expected_body) = expected_body {
                prop_assert_eq!(body, expected_body, "{}", raw);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn small_valid_seconds_round_trip_into_the_page() {
    let (runtime, app) = app();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(50));

    runner
        .run(&(0u32..=20), |millis| {
            let seconds = f64::from(millis) / 1000.0;
            let (status, body) = do_task(&runtime, &app, &seconds.to_string());
            prop_assert_eq!(status, 200);
            prop_assert!(body.contains(&seconds.to_string()), "{}", body);
            Ok(())
        })
        .unwrap();
}
