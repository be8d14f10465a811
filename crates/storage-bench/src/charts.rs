//! SVG charts of the run (plotters, SVG backend only): latency percentile curves (R2, W1,
//! W2) and growth curves (W3, M2). A chart that cannot be drawn is reported, not fatal.

use std::path::PathBuf;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Name and points of one line.
pub type Series = (String, Vec<(f64, f64)>);

/// The charts written so far.
#[derive(Debug)]
pub struct Charts {
    dir: PathBuf,
    /// File names (relative to the report directory), in the order written.
    pub files: Vec<String>,
    /// Charts that failed, with the reason.
    pub errors: Vec<String>,
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

const SIZE: (u32, u32) = (900, 520);

impl Charts {
    /// Charts written into `dir`.
    pub fn new(dir: PathBuf) -> Charts {
        Charts {
            dir,
            files: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn record(&mut self, file: &str, result: DrawResult) {
        match result {
            Ok(()) => self.files.push(file.to_owned()),
            Err(e) => self.errors.push(format!("{file}: {e}")),
        }
    }

    /// Latency against percentile (x in "nines": 90, 99, 99.9), log-scaled latency, in µs.
    pub fn latency(&mut self, file: &str, title: &str, series: Vec<Series>) {
        let path = self.dir.join(file);
        let result = (|| -> DrawResult {
            let root = SVGBackend::new(&path, SIZE).into_drawing_area();
            latency_chart(&root, title, &series)?;
            root.present()?;
            Ok(())
        })();
        self.record(file, result);
    }

    /// A growth curve with point markers (x on a log scale when `log_x`).
    pub fn growth(
        &mut self,
        file: &str,
        title: &str,
        x_desc: &str,
        y_desc: &str,
        series: Vec<Series>,
        log_x: bool,
    ) {
        let path = self.dir.join(file);
        let result = (|| -> DrawResult {
            let root = SVGBackend::new(&path, SIZE).into_drawing_area();
            growth_chart(&root, title, x_desc, y_desc, &series, log_x)?;
            root.present()?;
            Ok(())
        })();
        self.record(file, result);
    }
}

/// Percentile to "nines": 90 -> 1, 99 -> 2, 99.9 -> 3.
fn nines(p: f64) -> f64 {
    -(1.0 - p / 100.0).max(1e-4).log10()
}

fn bounds(series: &[Series], f: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let values = series.iter().flat_map(|(_, pts)| pts.iter().map(&f));
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn latency_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let series: Vec<Series> = series
        .iter()
        .map(|(name, pts)| {
            let pts = pts
                .iter()
                .filter(|(p, v)| *p <= 99.9 && *v > 0.0)
                .map(|&(p, v)| (nines(p), v))
                .collect();
            (name.clone(), pts)
        })
        .collect();
    let (lo, hi) = bounds(&series, |p| p.1);
    if !lo.is_finite() || !hi.is_finite() {
        return Err("no data".into());
    }
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..3.0, (lo * 0.8..hi * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (us, log scale)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_labels(12)
        .max_light_lines(1)
        .x_labels(4)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            if p >= 99.5 {
                format!("{p:.1}")
            } else {
                format!("{p:.0}")
            }
        })
        .draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn growth_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    log_x: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (x_lo, x_hi) = bounds(series, |p| p.0);
    let (_, y_hi) = bounds(series, |p| p.1);
    if !x_lo.is_finite() || !y_hi.is_finite() || x_hi <= x_lo {
        return Err("no data".into());
    }
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart.draw_series(
                    pts.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    if log_x {
        draw!(builder.build_cartesian_2d((x_lo * 0.8..x_hi * 1.25).log_scale(), 0.0..y_hi * 1.2)?);
    } else {
        draw!(builder.build_cartesian_2d(x_lo..x_hi, 0.0..y_hi * 1.2)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut charts = Charts::new(dir.path().to_owned());
        charts.latency(
            "l.svg",
            "latency",
            vec![(
                "a".into(),
                vec![(50.0, 100.0), (99.0, 300.0), (100.0, 900.0)],
            )],
        );
        charts.growth(
            "g.svg",
            "growth",
            "flags",
            "ms",
            vec![(
                "p50".into(),
                vec![(100.0, 1.0), (1000.0, 1.2), (10000.0, 1.5)],
            )],
            true,
        );
        charts.latency("empty.svg", "nothing", vec![]);
        assert_eq!(charts.files, ["l.svg", "g.svg"]);
        assert_eq!(charts.errors.len(), 1, "{:?}", charts.errors);
        let svg = std::fs::read_to_string(dir.path().join("l.svg")).expect("written");
        assert!(svg.starts_with("<svg") && svg.contains("latency"), "{svg}");
    }
}
