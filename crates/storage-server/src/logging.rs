//! Logs through `tracing`: human-readable by default, JSON with `log.encoding: json`, level
//! from `log.level` (or `RUST_LOG` when set, for debugging).
//!
//! Transfer progress (events with the target [`git_backend::PROGRESS_TARGET`]) is a progress
//! bar redrawn in place when stderr is a terminal and the encoding is `console`, and a log line
//! every few seconds otherwise (BEHAVIOUR §3). Log lines clear the bar before they print; the
//! next tick draws it again below them.

use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use config_model::{LogConfig, LogEncoding};
use git_backend::PROGRESS_TARGET;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// ANSI: carriage return, then erase the whole line.
const CLEAR_LINE: &[u8] = b"\r\x1b[2K";

pub(crate) fn init(log: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log.level.as_str()));
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal && log.encoding == LogEncoding::Console;
    let result = if bar {
        // The bar replaces the periodic progress line.
        let filter = filter.add_directive(
            format!("{PROGRESS_TARGET}=off")
                .parse()
                .expect("a constant directive parses"),
        );
        let showing = Arc::new(AtomicBool::new(false));
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(ClearingStderr {
                showing: showing.clone(),
            })
            .with_ansi(true)
            .with_filter(filter);
        let progress = ProgressBar::new(std::io::stderr(), showing)
            .with_filter(Targets::new().with_target(PROGRESS_TARGET, tracing::Level::TRACE));
        tracing_subscriber::registry()
            .with(lines)
            .with(progress)
            .try_init()
    } else {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(terminal);
        match log.encoding {
            LogEncoding::Json => builder.json().finish().try_init(),
            LogEncoding::Console => builder.finish().try_init(),
        }
    };
    if let Err(e) = result {
        eprintln!("cannot start logging: {e}");
    }
}

/// Standard error for log lines: erases a progress bar drawn on the current line first.
#[derive(Debug, Clone)]
struct ClearingStderr {
    showing: Arc<AtomicBool>,
}

impl<'a> MakeWriter<'a> for ClearingStderr {
    type Writer = ClearingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        ClearingWriter {
            showing: self.showing.clone(),
            out: std::io::stderr(),
        }
    }
}

#[derive(Debug)]
struct ClearingWriter {
    showing: Arc<AtomicBool>,
    out: std::io::Stderr,
}

impl Write for ClearingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.showing.swap(false, Ordering::AcqRel) {
            self.out.write_all(CLEAR_LINE)?;
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Draws transfer-progress events as a one-line bar on `out`.
#[derive(Debug)]
pub(crate) struct ProgressBar<W> {
    out: Mutex<W>,
    /// Set while a bar is on screen; log lines clear it.
    showing: Arc<AtomicBool>,
    /// When the current transfer's first tick arrived (for the rate).
    started: Mutex<Option<Instant>>,
}

impl<W: Write> ProgressBar<W> {
    pub(crate) fn new(out: W, showing: Arc<AtomicBool>) -> Self {
        ProgressBar {
            out: Mutex::new(out),
            showing,
            started: Mutex::new(None),
        }
    }
}

/// The fields of one progress event.
#[derive(Debug, Default)]
struct Progress {
    remote: String,
    objects: u64,
    total_objects: u64,
    bytes: u64,
    done: bool,
}

impl Visit for Progress {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "objects" => self.objects = value,
            "total_objects" => self.total_objects = value,
            "bytes" => self.bytes = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "done" {
            self.done = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "remote" {
            self.remote = value.to_owned();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "remote" {
            self.remote = format!("{value:?}");
        }
    }
}

/// One line of the bar: `fetch <remote> [#####.....] 50% 1200/2400 objects 3.1 MiB 1.2 MiB/s`.
fn render(p: &Progress, secs: f64) -> String {
    const WIDTH: u64 = 24;
    let mib = p.bytes as f64 / (1024.0 * 1024.0);
    let rate = mib / secs.max(0.001);
    let received = p.objects.min(p.total_objects);
    let (bar, percent) = match (
        (received * WIDTH).checked_div(p.total_objects),
        (received * 100).checked_div(p.total_objects),
    ) {
        (Some(done), Some(percent)) => (
            format!(
                "[{}{}]",
                "#".repeat(done as usize),
                ".".repeat((WIDTH - done) as usize)
            ),
            format!(" {percent:>3}%"),
        ),
        _ => (String::new(), String::new()),
    };
    format!(
        "fetch {} {bar}{percent} {}/{} objects {mib:.1} MiB {rate:.1} MiB/s",
        p.remote, p.objects, p.total_objects
    )
}

impl<S, W> Layer<S> for ProgressBar<W>
where
    S: tracing::Subscriber,
    W: Write + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut p = Progress::default();
        event.record(&mut p);
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A terminal that went away is no reason to disturb the service: drawing is best effort.
        if p.done {
            *started = None;
            if self.showing.swap(false, Ordering::AcqRel) {
                let _ = out.write_all(CLEAR_LINE);
                let _ = out.flush();
            }
            return;
        }
        let secs = started
            .get_or_insert_with(Instant::now)
            .elapsed()
            .as_secs_f64();
        let mut line = CLEAR_LINE.to_vec();
        line.extend_from_slice(render(&p, secs).as_bytes());
        let _ = out.write_all(&line);
        let _ = out.flush();
        self.showing.store(true, Ordering::Release);
    }
}

/// The registry type the bar layer is tested with.
#[cfg(test)]
type TestSubscriber = tracing_subscriber::layer::Layered<
    tracing_subscriber::filter::Filtered<
        ProgressBar<SharedBuf>,
        Targets,
        tracing_subscriber::Registry,
    >,
    tracing_subscriber::Registry,
>;

#[cfg(test)]
#[derive(Debug, Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

#[cfg(test)]
impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(buf: &SharedBuf, showing: &Arc<AtomicBool>) -> TestSubscriber {
        tracing_subscriber::registry().with(
            ProgressBar::new(buf.clone(), showing.clone())
                .with_filter(Targets::new().with_target(PROGRESS_TARGET, tracing::Level::TRACE)),
        )
    }

    #[test]
    fn ticks_draw_one_line_in_place_and_the_end_clears_it() {
        let buf = SharedBuf::default();
        let showing = Arc::new(AtomicBool::new(false));
        tracing::subscriber::with_default(subscriber(&buf, &showing), || {
            tracing::info!("an ordinary line is not drawn");
            tracing::trace!(target: PROGRESS_TARGET, remote = "https://example.com/flags.git", objects = 600_u64, total_objects = 2400_u64, bytes = 3_145_728_u64, done = false);
            assert!(showing.load(Ordering::Acquire));
            tracing::trace!(target: PROGRESS_TARGET, remote = "https://example.com/flags.git", objects = 2400_u64, total_objects = 2400_u64, bytes = 6_291_456_u64, done = false);
            tracing::trace!(target: PROGRESS_TARGET, remote = "https://example.com/flags.git", done = true);
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let draws: Vec<&str> = text.split("\r\x1b[2K").collect();
        assert_eq!(
            draws[0], "",
            "every draw starts by clearing the line: {text:?}"
        );
        assert!(
            draws[1].starts_with("fetch https://example.com/flags.git [######..................]  25% 600/2400 objects 3.0 MiB"),
            "{text:?}"
        );
        assert!(
            draws[2].contains("[########################] 100% 2400/2400 objects 6.0 MiB"),
            "{text:?}"
        );
        assert_eq!(draws.len(), 4, "two draws and one clear: {text:?}");
        assert_eq!(draws[3], "", "the end clears the bar: {text:?}");
        assert!(!text.contains("ordinary"), "{text:?}");
        assert!(!showing.load(Ordering::Acquire));
    }

    #[test]
    fn an_unknown_total_draws_counts_without_a_bar() {
        let p = Progress {
            remote: "r".into(),
            objects: 7,
            total_objects: 0,
            bytes: 0,
            done: false,
        };
        assert_eq!(render(&p, 1.0), "fetch r  7/0 objects 0.0 MiB 0.0 MiB/s");
    }

    #[test]
    fn a_log_line_clears_the_bar_first() {
        let showing = Arc::new(AtomicBool::new(true));
        let mut w = ClearingStderr {
            showing: showing.clone(),
        }
        .make_writer();
        w.write_all(b"a log line from the test\n").unwrap();
        assert!(!showing.load(Ordering::Acquire), "the bar is marked gone");
    }
}
