//! The worker's 20 ms tick schedule.
//!
//! Meet first: [`TickClock`] — `deadline()` to sleep until, `due(now)` for
//! each tick to run now, at its *nominal* time.
//!
//! Why nominal times. A room's jitter buffers play one frame per tick and
//! judge lateness against the tick's time. If a worker that overslept ran
//! one tick at the wake-up time and skipped the rest, every participant's
//! buffer would be left a few frames too full (dropped later, a click
//! each) and the listeners' streams would lose those 20 ms slices. Running
//! the missed ticks, each at the time it was due, keeps every stream whole
//! and every delay where it was; the listeners see a burst, which their own
//! jitter buffers absorb like network jitter.
//!
//! Only so far: beyond [`MAX_CATCH_UP`] ticks behind (a suspended VM, a
//! stopped process) the clock gives the lost time up and resumes with the
//! latest tick due, keeping the phase.
//!
//! Not here: measuring lateness (the worker records it per tick run).

use std::time::{Duration, Instant};

use palaver_media::room::TICK;

/// Ticks a late worker still runs to catch up (200 ms).
pub(crate) const MAX_CATCH_UP: u32 = 10;

/// When the worker's ticks are due. See the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TickClock {
    next: Instant,
    skipped: u64,
}

impl TickClock {
    /// A schedule whose first tick is due at `first`.
    pub(crate) fn new(first: Instant) -> Self {
        Self {
            next: first,
            skipped: 0,
        }
    }

    /// When the next tick is due.
    pub(crate) fn deadline(&self) -> Instant {
        self.next
    }

    /// Ticks given up so far because the worker was too far behind.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Runs `tick` for every tick due at `round` — the time the worker's
    /// round began — each with its nominal time, and returns how many ran.
    ///
    /// Only those: when ticks take longer than 20 ms (an overloaded worker)
    /// a loop that asked "is one due now?" after each tick would never end,
    /// and the packets, the commands that close rooms and the shutdown
    /// would wait behind it while the load only grew. The next round reads
    /// them first, then runs what has come due since.
    pub(crate) fn run_round(&mut self, round: Instant, mut tick: impl FnMut(Instant)) -> u64 {
        let mut ran = 0;
        while let Some(due) = self.due(round) {
            tick(due);
            ran += 1;
        }
        ran
    }

    /// The nominal time of the next tick to run at `now`, if one is due.
    /// Call until `None`.
    pub(crate) fn due(&mut self, now: Instant) -> Option<Instant> {
        if now < self.next {
            return None;
        }
        let behind = ticks_in(now - self.next);
        if behind >= u64::from(MAX_CATCH_UP) {
            // Keep the latest due tick, give up the ones before it.
            self.skipped += behind;
            self.next += TICK * behind as u32;
        }
        let t = self.next;
        self.next += TICK;
        Some(t)
    }
}

/// Whole ticks in `d`.
fn ticks_in(d: Duration) -> u64 {
    (d.as_nanos() / TICK.as_nanos()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn run_at(c: &mut TickClock, now: Instant) -> Vec<Instant> {
        std::iter::from_fn(|| c.due(now)).collect()
    }

    #[test]
    fn on_time_runs_one_tick_each() {
        let t0 = Instant::now();
        let mut c = TickClock::new(t0 + TICK);
        assert!(run_at(&mut c, t0 + 19 * MS).is_empty());
        assert_eq!(run_at(&mut c, t0 + 21 * MS), vec![t0 + TICK]);
        assert_eq!(c.deadline(), t0 + 2 * TICK);
        assert_eq!(run_at(&mut c, t0 + 40 * MS), vec![t0 + 2 * TICK]);
    }

    #[test]
    fn a_late_worker_runs_every_missed_tick_at_its_nominal_time() {
        let t0 = Instant::now();
        let mut c = TickClock::new(t0 + TICK);
        // Woke 95 ms late: ticks due at 20, 40, 60, 80, 100 ms all run.
        let ran = run_at(&mut c, t0 + 115 * MS);
        assert_eq!(ran, (1..=5).map(|k| t0 + TICK * k).collect::<Vec<_>>());
        assert_eq!(c.deadline(), t0 + 6 * TICK);
        assert_eq!(c.skipped(), 0);
    }

    /// Ticks slower than the tick period: a round still ends after the
    /// ticks that were due when it began, and the next round picks up the
    /// rest, so the worker gets back to its sockets and commands.
    #[test]
    fn a_round_of_slow_ticks_ends() {
        let t0 = Instant::now();
        let mut c = TickClock::new(t0 + TICK);
        // Each tick "takes" 30 ms: the clock the worker would read next
        // runs ahead of the schedule for as long as it keeps ticking.
        let mut clock = t0 + 45 * MS;
        let mut ran = Vec::new();
        let n = c.run_round(clock, |due| {
            ran.push(due);
            clock += 30 * MS;
        });
        assert_eq!(n, 2);
        assert_eq!(ran, vec![t0 + TICK, t0 + 2 * TICK]);
        assert_eq!(
            clock,
            t0 + 105 * MS,
            "the round is over, later than it began"
        );
        // The next round runs what came due meanwhile (60, 80, 100 ms).
        let n = c.run_round(clock, |due| ran.push(due));
        assert_eq!(n, 3);
        assert_eq!(ran.last(), Some(&(t0 + 5 * TICK)));
    }

    #[test]
    fn far_behind_gives_the_time_up_and_keeps_the_phase() {
        let t0 = Instant::now();
        let mut c = TickClock::new(t0 + TICK);
        // A 2 s stop: only the latest due tick runs.
        let ran = run_at(&mut c, t0 + 2_005 * MS);
        assert_eq!(ran, vec![t0 + 2_000 * MS]);
        assert_eq!(c.skipped(), 99);
        assert_eq!(c.deadline(), t0 + 2_020 * MS);
        // Just under the limit: all run.
        let mut c = TickClock::new(t0 + TICK);
        let ran = run_at(&mut c, t0 + TICK + TICK * (MAX_CATCH_UP - 1));
        assert_eq!(ran.len(), MAX_CATCH_UP as usize);
        assert_eq!(c.skipped(), 0);
    }
}
