//! The benchmark harness behind `cargo xtask bench`: it generates the data sets of
//! PERFORMANCE.md (10,000 flags with 2 variants and 1 rule each and 100 segments in 100
//! namespace files, and 100- and 1,000-flag sizes) as git repositories on tmpfs, starts the
//! real `flipt-storage` binary (release build) where a figure says so, measures every figure
//! interleaved with its baseline (a bare tonic echo server run as its own process with the
//! same client and payload sizes; raw git2 commits, pushes and fetches over the same
//! transports; the YAML library alone), and writes `report.md`, `report.json` and SVG charts.
//!
//! It is a tool, like the integration tests: it may use any workspace crate (the proto
//! clients, resource-model and a backend for the in-process figures, test-support's
//! smart-HTTP git server), and nothing may depend on it.
//!
//! ```
//! use storage_bench::report::{Figure, Target};
//!
//! // A figure is the median of its runs against the median of its baseline's runs.
//! let w1 = Figure::compared(
//!     "W1", "CreateResource p50", "ms",
//!     vec![2.6, 2.3, 2.4], "raw git2 + echo", vec![1.1, 1.0, 1.2],
//!     Target::RatioAtMost(2.0), 100, 20,
//! );
//! assert_eq!(w1.ratio, Some(2.4 / 1.1)); // above the target of 2 x
//! assert_eq!(w1.pass, Some(false));
//! ```

pub mod charts;
pub mod data;
pub mod echo;
pub mod figures;
pub mod load;
pub mod process;
pub mod report;
