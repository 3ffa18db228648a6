//! How a request that ends without an answer is recorded. Until shutdown cuts the requests still
//! in flight, an unanswered request is one whose client went away; from then on, it is one the
//! server cut. Shared by the server, which decides, and the request layer, which records.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::conventions::{CLIENT_CLOSED_REQUEST, ErrorType};

/// Status recorded for a request cut at the end of the shutdown grace period: the server, not the
/// client, gave up, as it does when it is unavailable.
pub const CUT_AT_SHUTDOWN: u16 = 503;

/// Whether the server is cutting its requests in flight; read when a request is dropped
/// unanswered.
#[derive(Debug, Default)]
pub struct Unanswered {
    cutting: AtomicBool,
}

impl Unanswered {
    /// From now on, a request dropped unanswered was cut by the server. Called before the server
    /// cancels its connections, so their requests see it.
    pub fn begin_cutting(&self) {
        self.cutting.store(true, Ordering::SeqCst);
    }

    /// The status and error type of a request dropped unanswered now.
    pub fn outcome(&self) -> (u16, ErrorType) {
        if self.cutting.load(Ordering::SeqCst) {
            (CUT_AT_SHUTDOWN, ErrorType::Shutdown)
        } else {
            (CLIENT_CLOSED_REQUEST, ErrorType::ClientClosed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_request_is_the_clients_doing_until_the_server_cuts() {
        let unanswered = Unanswered::default();
        let before = unanswered.outcome();

        unanswered.begin_cutting();

        assert_eq!(before, (499, ErrorType::ClientClosed));
        assert_eq!(unanswered.outcome(), (503, ErrorType::Shutdown));
    }
}
