//! The load client: a fixed number of workers, closed-loop (each worker sends its next
//! request when the previous answer arrived, so the offered load follows the server), latencies
//! in an HDR histogram.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;

/// Latencies of one run, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
    /// Completed operations.
    pub ops: u64,
    /// Wall time of the run (first request sent to last answer received).
    pub elapsed: Duration,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty record (1 ns to 10 minutes, 3 significant digits).
    pub fn new() -> Self {
        Latencies {
            hist: Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds"),
            ops: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Records one operation.
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.hist.saturating_record(nanos.max(1));
        self.ops += 1;
    }

    /// Adds another record's operations (the elapsed time is the longer one).
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.ops += other.ops;
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    /// The latency at percentile `p` (0-100), in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        self.hist.value_at_percentile(p) as f64 / 1_000.0
    }

    /// The median, in microseconds.
    pub fn p50_us(&self) -> f64 {
        self.percentile_us(50.0)
    }

    /// Operations per second over the run.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// Points of the percentile curve, (percentile, microseconds), for charts.
    pub fn curve(&self) -> Vec<(f64, f64)> {
        CURVE_PERCENTILES
            .iter()
            .map(|&p| (p, self.percentile_us(p)))
            .collect()
    }
}

/// Percentiles drawn in the latency charts.
pub const CURVE_PERCENTILES: &[f64] = &[
    1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0,
];

/// One operation of a load run: a future per call.
pub type Op = Arc<dyn Fn(u64) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Wraps an async closure into an [`Op`].
pub fn op<F, Fut>(f: F) -> Op
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |i| Box::pin(f(i)))
}

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this many operations in total.
    Ops(u64),
    /// After this long (operations in flight at the deadline still complete and count).
    Duration(Duration),
}

/// Runs `op` closed-loop with `concurrency` workers until `stop`; the argument of `op` is
/// the operation's sequence number (from `first`). Fails on the first failed operation.
pub async fn closed_loop(op: &Op, concurrency: usize, stop: Stop, first: u64) -> Result<Latencies> {
    if concurrency == 0 {
        bail!("concurrency must be at least 1");
    }
    let next = Arc::new(AtomicU64::new(first));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let op = op.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Latencies::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let more = match stop {
                    Stop::Ops(n) => i - first < n,
                    Stop::Duration(d) => start.elapsed() < d,
                };
                if !more {
                    break;
                }
                let t = Instant::now();
                op(i).await?;
                lat.record(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut total = Latencies::new();
    for worker in workers {
        total.merge(&worker.await??);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_loop_run_counts_every_operation_once() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let run = op(move |i| {
            let s = s.clone();
            async move {
                s.lock().expect("lock").push(i);
                Ok(())
            }
        });
        let lat = closed_loop(&run, 4, Stop::Ops(100), 7).await.expect("run");
        assert_eq!(lat.ops, 100);
        let mut seen = seen.lock().expect("lock").clone();
        seen.sort_unstable();
        assert_eq!(seen, (7..107).collect::<Vec<_>>());
        assert!(lat.p50_us() <= lat.percentile_us(100.0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_operation_fails_the_run() {
        let run = op(|i| async move {
            if i == 3 {
                anyhow::bail!("boom")
            }
            Ok(())
        });
        let err = closed_loop(&run, 2, Stop::Ops(10), 0).await.unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }
}
