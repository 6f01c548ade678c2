//! The load generator: a number of connections (workers), each sending
//! one request at a time, either at a constant total rate (open loop) or
//! as fast as answers come (closed loop, saturation).
//!
//! In the open loop each worker has a schedule (request `i` is due at
//! `start + offset + i × interval`, the offsets spreading the workers
//! over one interval) and a request a worker is late for is measured
//! from when it was *due*, not from when it went out: a server that
//! stalls is charged for every request the stall held back, as wrk2 and
//! fortio correct for coordinated omission (one sent on time is measured
//! from its send, so that the timer's own lateness is not). In the closed loop latency is measured from the
//! send. Latencies go into an HDR histogram (microseconds, three
//! significant digits); requests in the warm-up are sent but not counted.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use hdrhistogram::Histogram;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A client the generator drives: sends a request, gives the response's
/// status once its body has been read whole.
pub type Send = Arc<
    dyn Fn(http::Request<Full<Bytes>>) -> BoxFuture<'static, Result<u16, String>>
        + Sync
        + std::marker::Send,
>;

/// How much load, for how long.
#[derive(Clone, Debug)]
pub struct Load {
    /// Requests in flight at most: one per worker.
    pub connections: usize,
    /// Requests per second over all workers; `None` for saturation.
    pub rate: Option<f64>,
    /// How long requests are counted.
    pub duration: Duration,
    /// How long requests are sent before they are counted.
    pub warmup: Duration,
    /// The request body's size (a `POST`), which the servers answer with
    /// a body of the same size.
    pub payload: usize,
}

/// What a run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Requests counted (sent after the warm-up and answered or failed
    /// before the end).
    pub requests: u64,
    /// Of those, the ones answered `2xx`.
    pub ok: u64,
    /// The others: another status, or no response.
    pub failed: u64,
    /// The first failure's reason, if any.
    pub first_error: Option<String>,
    /// Seconds counted.
    pub seconds: f64,
    /// Requests counted per second.
    pub requests_per_second: f64,
    /// Latency percentiles, in microseconds.
    pub latency: Latency,
}

/// Latency percentiles, microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// The median.
    pub p50: u64,
    /// The 90th percentile.
    pub p90: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
    /// The slowest.
    pub max: u64,
    /// How many latencies the histogram holds (the requests counted).
    pub samples: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            samples: h.len(),
        }
    }
}

/// What one worker counted.
struct Tally {
    histogram: Histogram<u64>,
    ok: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            // 1 µs to 5 minutes, three significant digits.
            histogram: Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid bounds"),
            ok: 0,
            failed: 0,
            first_error: None,
        }
    }

    fn record(&mut self, latency: Duration, outcome: Result<u16, String>) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros.max(1));
        match outcome {
            Ok(status) if (200..300).contains(&status) => self.ok += 1,
            Ok(status) => self.fail(format!("status {status}")),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, reason: String) {
        self.failed += 1;
        self.first_error.get_or_insert(reason);
    }
}

/// Runs `load` against `uri` through `send`, printing a progress line on
/// standard error every `progress` when given.
pub async fn run(send: Send, uri: &http::Uri, load: &Load, progress: Option<Duration>) -> Measured {
    let workers = load.connections.max(1);
    let body = Bytes::from(vec![b'x'; load.payload]);
    let start = Instant::now();
    let counted_from = start + load.warmup;
    let end = counted_from + load.duration;
    let interval = load
        .rate
        .filter(|r| *r > 0.0)
        .map(|rate| Duration::from_secs_f64(workers as f64 / rate));
    let ticker = progress.map(|every| tokio::spawn(report_progress(start, end, every)));
    let tasks: Vec<_> = (0..workers)
        .map(|k| {
            let (send, uri, body) = (send.clone(), uri.clone(), body.clone());
            tokio::spawn(async move {
                let mut tally = Tally::new();
                let offset = interval.map(|i| i.mul_f64(k as f64 / workers as f64));
                let mut due = start + offset.unwrap_or_default();
                loop {
                    // From when it was due if the worker is behind (the
                    // server held it back); from when it went out if the
                    // worker waited for it (the timer's lateness is the
                    // generator's, not the server's).
                    let now = Instant::now();
                    let from = if interval.is_some() && now < due {
                        tokio::time::sleep_until(due).await;
                        Instant::now()
                    } else if interval.is_some() {
                        due
                    } else {
                        due = now;
                        now
                    };
                    if due >= end {
                        break;
                    }
                    let req = http::Request::post(uri.clone())
                        .body(Full::new(body.clone()))
                        .expect("a valid request");
                    let outcome = send(req).await;
                    let done = Instant::now();
                    if due >= counted_from && done <= end {
                        tally.record(done - from, outcome);
                    }
                    if let Some(interval) = interval {
                        due += interval;
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::new();
    for task in tasks {
        let Ok(tally) = task.await else { continue };
        all.histogram.add(&tally.histogram).expect("same bounds");
        all.ok += tally.ok;
        all.failed += tally.failed;
        if all.first_error.is_none() {
            all.first_error = tally.first_error;
        }
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    let seconds = load.duration.as_secs_f64();
    let requests = all.ok + all.failed;
    Measured {
        requests,
        ok: all.ok,
        failed: all.failed,
        first_error: all.first_error,
        seconds,
        requests_per_second: if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        },
        latency: Latency::of(&all.histogram),
    }
}

/// Writes how far the run is every `every` until `end`.
async fn report_progress(start: Instant, end: Instant, every: Duration) {
    use std::io::Write;
    let total = (end - start).as_secs_f64();
    loop {
        tokio::time::sleep(every).await;
        let done = start.elapsed().as_secs_f64().min(total);
        let _ = writeln!(std::io::stderr(), "  … {done:.0}/{total:.0} s");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A client whose first request takes `stall`, the others nothing.
    fn stalling_once(stall: Duration) -> Send {
        let calls = Arc::new(AtomicU64::new(0));
        Arc::new(move |_req| {
            let first = calls.fetch_add(1, Ordering::Relaxed) == 0;
            Box::pin(async move {
                if first {
                    tokio::time::sleep(stall).await;
                }
                Ok(200)
            })
        })
    }

    fn load(rate: Option<f64>) -> Load {
        Load {
            connections: 1,
            rate,
            duration: Duration::from_secs(3),
            warmup: Duration::ZERO,
            payload: 8,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_is_charged_to_every_request_it_held_back() {
        let uri = http::Uri::from_static("http://backend/");
        let m = run(
            stalling_once(Duration::from_secs(1)),
            &uri,
            &load(Some(10.0)),
            None,
        )
        .await;
        // Due every 100 ms for 3 s: the first took 1 s, and the nine due
        // while it was out went late, each charged from when it was due.
        assert_eq!(m.requests, 30);
        assert_eq!((m.ok, m.failed), (30, 0));
        assert_eq!(m.latency.samples, 30);
        assert!(m.latency.max >= 999_000, "{m:?}");
        assert!(m.latency.p90 >= 100_000, "{m:?}");
        assert!((m.requests_per_second - 10.0).abs() < f64::EPSILON);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_measures_from_the_send() {
        let uri = http::Uri::from_static("http://backend/");
        let stall = stalling_once(Duration::from_secs(1));
        let slow: Send = Arc::new(move |req| {
            let stall = stall(req);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                stall.await
            })
        });
        let m = run(slow, &uri, &load(None), None).await;
        // 1.1 s, then 100 ms each: 20 more in the 3 s.
        assert_eq!(m.requests, 20);
        assert!(m.latency.p90 < 200_000, "{m:?}");
        assert!(m.latency.max >= 1_099_000, "{m:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_with_the_first_reason() {
        let uri = http::Uri::from_static("http://backend/");
        let send: Send = Arc::new(|_req| Box::pin(async { Ok(503) }));
        let m = run(send, &uri, &load(Some(2.0)), None).await;
        assert_eq!((m.requests, m.ok, m.failed), (6, 0, 6));
        assert_eq!(m.first_error.as_deref(), Some("status 503"));
    }
}
