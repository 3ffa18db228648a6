//! Time limits on whole exports (`OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_METRIC_EXPORT_TIMEOUT`), which
//! the SDK's thread-based batch span processor and periodic reader do not enforce themselves: an
//! export that takes longer is given up and counted as lost, and the next one can start.

use std::{future::Future, time::Duration};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use tokio::runtime::Handle;

/// The time limit of one export. The SDK runs exports on threads of its own, outside the tokio
/// runtime; the timer is made on the runtime found when the limit is built, whose driver wakes
/// those threads when it fires.
#[derive(Debug, Clone)]
pub struct Deadline {
    limit: Duration,
    runtime: Option<Handle>,
}

impl Deadline {
    /// A limit of `limit` per export, enforced when built on a tokio runtime (as the app builds
    /// it); without one, the exporter's own time limit is the only one.
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            runtime: Handle::try_current().ok(),
        }
    }

    /// `export`, or a [`OTelSdkError::Timeout`] once the limit has passed.
    pub async fn bound(&self, export: impl Future<Output = OTelSdkResult>) -> OTelSdkResult {
        let Some(runtime) = &self.runtime else {
            return export.await;
        };
        let timer = {
            let _entered = runtime.enter();
            tokio::time::sleep(self.limit)
        };
        tokio::select! {
            result = export => result,
            () = timer => Err(OTelSdkError::Timeout(self.limit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn an_export_past_the_limit_is_given_up_on_a_thread_outside_the_runtime() {
        let deadline = Deadline::new(Duration::from_millis(50));

        let (quick, slow) = std::thread::spawn(move || {
            let quick = block_on(deadline.bound(async { Ok(()) }));
            let started = std::time::Instant::now();
            let slow = block_on(deadline.bound(std::future::pending()));
            (quick, (slow, started.elapsed()))
        })
        .join()
        .unwrap();

        assert!(quick.is_ok());
        assert!(matches!(slow.0, Err(OTelSdkError::Timeout(_))), "{slow:?}");
        assert!(slow.1 < Duration::from_secs(2), "{:?}", slow.1);
    }

    /// Polls `future` to completion on this thread, as the SDK's threads do.
    fn block_on<F: Future>(future: F) -> F::Output {
        let thread = std::thread::current();
        let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(thread)));
        let mut context = std::task::Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
            std::thread::park();
        }
    }

    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
}
