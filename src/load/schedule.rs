//! The open-loop schedule: request `i` is due at `start + i / rate`, whatever happened to the
//! requests before it. The schedule is told the time rather than reading a clock, so its tests
//! drive it with made-up instants.

use std::time::{Duration, Instant};

/// A request that starts more than this after its due time counts as late. Above the jitter of
/// a thread's timed wait (tens of microseconds), well below anything a person would call slow.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// What the sender should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing is due before this instant.
    WaitUntil(Instant),
    /// Request `index` is due (or overdue) since `due`: send it, then call [`Schedule::sent`].
    Send { index: u64, due: Instant },
    /// The run is over.
    Done,
}

/// The schedule of one run and what became of it.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    rate: f64,
    /// Requests due within the bounds.
    planned: u64,
    /// When sending stops in a run bounded by time: the end of the duration, plus [`LATE_AFTER`]
    /// so that the last requests, due just before the end, are not lost to timer jitter.
    deadline: Option<Instant>,
    next: u64,
    /// Requests sent more than [`LATE_AFTER`] after their due time.
    pub started_late: u64,
    /// Requests that found every slot busy and had to wait for one.
    pub waited_for_slot: u64,
    /// Requests due before the deadline that could not be sent before it.
    pub not_sent: u64,
    /// When the last request was sent.
    pub last_sent: Option<Instant>,
    /// When the deadline cut the sending short.
    cut_off: Option<Instant>,
}

impl Schedule {
    /// A schedule from `start` at `rate` requests per second, bounded by `duration`, by
    /// `requests`, or by both (whichever comes first). Unbounded if both are `None`.
    pub fn new(
        start: Instant,
        rate: f64,
        duration: Option<Duration>,
        requests: Option<u64>,
    ) -> Self {
        let within_duration = duration.map(|d| due_within(d, rate));
        let planned = match (within_duration, requests) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        Self {
            start,
            rate,
            planned,
            deadline: duration.map(|d| start + d + LATE_AFTER),
            next: 0,
            started_late: 0,
            waited_for_slot: 0,
            not_sent: 0,
            last_sent: None,
            cut_off: None,
        }
    }

    /// How many requests the bounds allow.
    pub fn planned(&self) -> u64 {
        self.planned
    }

    /// When sending stops, in a run bounded by time.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How many requests were sent so far.
    pub fn sent_count(&self) -> u64 {
        self.next
    }

    /// When request `index` is due.
    pub fn due(&self, index: u64) -> Instant {
        self.start + Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Instant) -> Step {
        if self.next >= self.planned {
            return Step::Done;
        }
        if self.deadline.is_some_and(|deadline| now > deadline) {
            self.not_sent = self.planned - self.next;
            self.cut_off = Some(now);
            return Step::Done;
        }
        let due = self.due(self.next);
        if now < due {
            Step::WaitUntil(due)
        } else {
            Step::Send {
                index: self.next,
                due,
            }
        }
    }

    /// The request that [`Schedule::next`] handed out was sent at `started`.
    pub fn sent(&mut self, started: Instant) {
        if started.saturating_duration_since(self.due(self.next)) > LATE_AFTER {
            self.started_late += 1;
        }
        self.next += 1;
        self.last_sent = Some(started);
    }

    /// The request about to be sent found every slot busy.
    pub fn waited_for_slot(&mut self) {
        self.waited_for_slot += 1;
    }

    /// Requests per second actually sent: the count over the time from the start to the last
    /// send (or to the deadline, if it cut the sending short), plus one interval, so that a run
    /// that kept every due time achieves exactly the rate.
    pub fn achieved_rate(&self) -> f64 {
        match self.last_sent.max(self.cut_off) {
            Some(last) => {
                let span = last.duration_since(self.start).as_secs_f64() + 1.0 / self.rate;
                self.next as f64 / span
            }
            None => 0.0,
        }
    }
}

/// How many requests fall due strictly before `duration`: `ceil(duration * rate)`, with a
/// little slack for floating point (0.3 s at 10/s is 3 requests, not 4).
fn due_within(duration: Duration, rate: f64) -> u64 {
    let exact = duration.as_secs_f64() * rate;
    ((exact - exact.max(1.0) * 1e-9).ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs the schedule against a fake clock that jumps straight to each due time, plus `delay`,
    /// and returns when each request was sent, relative to the start.
    fn run(schedule: &mut Schedule, start: Instant, delay: Duration) -> Vec<Duration> {
        let mut now = start;
        let mut sent = Vec::new();
        loop {
            match schedule.next(now) {
                Step::WaitUntil(at) => now = at + delay,
                Step::Send { .. } => {
                    sent.push(now - start);
                    schedule.sent(now);
                }
                Step::Done => return sent,
            }
        }
    }

    #[test]
    fn requests_are_due_at_fixed_intervals_from_the_start() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 200.0, None, Some(4));

        let sent = run(&mut schedule, start, Duration::ZERO);

        assert_eq!(sent, vec![ms(0), ms(5), ms(10), ms(15)]);
        assert_eq!(schedule.started_late, 0);
        assert!((schedule.achieved_rate() - 200.0).abs() < 1e-6);
    }

    #[test]
    fn a_duration_plans_the_requests_due_before_its_end() {
        let start = Instant::now();

        assert_eq!(Schedule::new(start, 10.0, Some(ms(300)), None).planned(), 3);
        assert_eq!(
            Schedule::new(start, 1000.0, Some(ms(10_000)), None).planned(),
            10_000
        );
        assert_eq!(
            Schedule::new(start, 0.5, Some(ms(1_000)), None).planned(),
            1
        );
        assert_eq!(
            Schedule::new(start, 1000.0, Some(ms(1_000)), Some(400)).planned(),
            400
        );
        assert_eq!(
            Schedule::new(start, 10.0, Some(ms(1_000)), Some(400)).planned(),
            10
        );
    }

    #[test]
    fn a_slow_sender_does_not_slow_the_schedule_down() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 100.0, None, Some(5));
        // The first request is sent 35 ms late: the ones due meanwhile go at once, back to back.
        let mut now = start + ms(35);
        let mut sent = Vec::new();

        while let Step::Send { index, due } = schedule.next(now) {
            sent.push((index, due - start));
            schedule.sent(now);
            now += Duration::from_micros(10);
        }

        assert_eq!(
            sent,
            vec![(0, ms(0)), (1, ms(10)), (2, ms(20)), (3, ms(30))]
        );
        assert_eq!(schedule.next(now), Step::WaitUntil(start + ms(40)));
        assert_eq!(
            schedule.started_late, 3,
            "0, 1 and 2 are over 10 ms late, 3 is not"
        );
    }

    #[test]
    fn jitter_below_the_threshold_is_not_late() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 1000.0, None, Some(100));

        run(&mut schedule, start, Duration::from_micros(900));

        assert_eq!(schedule.started_late, 0);
        assert!((schedule.achieved_rate() - 1000.0).abs() < 10.0);
    }

    #[test]
    fn requests_not_sent_by_the_deadline_are_counted() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 100.0, Some(ms(100)), None);
        for _ in 0..4 {
            let Step::Send { .. } = schedule.next(start + ms(30)) else {
                panic!("due")
            };
            schedule.sent(start + ms(30));
        }

        let step = schedule.next(start + ms(111));

        assert_eq!(step, Step::Done);
        assert_eq!(schedule.not_sent, 6);
        assert_eq!(schedule.sent_count(), 4);
        // 4 requests in the 111 ms until the cut, plus one interval.
        assert!((schedule.achieved_rate() - 4.0 / 0.121).abs() < 1e-6);
    }
}
