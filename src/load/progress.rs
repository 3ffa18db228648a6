//! The progress bar of `load`: drawn on stderr, and only when stdout is a terminal, so that a
//! redirected or piped run prints nothing but its summary.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::outcome::Recorder;

/// How often the text beside the bar changes; the bar itself redraws at indicatif's own pace.
const MESSAGE_EVERY: Duration = Duration::from_millis(200);

/// The bar, or nothing when hidden.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
    next_message: Instant,
}

impl Progress {
    /// A bar over `planned` requests, shown when `shown` is true.
    pub fn new(planned: u64, shown: bool) -> Self {
        let bar = if shown {
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} done, {msg}",
            )
            .expect("the template is valid")
            .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(planned), ProgressDrawTarget::stderr())
                .with_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            next_message: Instant::now(),
        }
    }

    /// One more request is over.
    pub fn answered(&mut self, recorder: &Recorder, sent: u64) {
        self.bar.inc(1);
        if self.bar.is_hidden() || Instant::now() < self.next_message {
            return;
        }
        self.next_message = Instant::now() + MESSAGE_EVERY;
        let over = recorder.completed() + recorder.failed();
        self.bar.set_message(format!(
            "{} in flight, {} failed",
            sent.saturating_sub(over),
            recorder.failed()
        ));
    }

    /// Removes the bar, leaving the terminal to the summary.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
