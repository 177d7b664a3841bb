//! `target/bench/scaling.svg`: time against the number of services,
//! log-log, kube-ipvs beside the kernel's own tools.

use std::path::Path;

use plotters::prelude::*;

use crate::{report::Derived, results::RunResults, BenchError, Result};

/// One line of the plot: (services, seconds) points.
pub struct Series {
    pub label: &'static str,
    pub color: RGBColor,
    /// Reference tools are drawn thin, with hollow markers.
    pub reference: bool,
    pub points: Vec<(f64, f64)>,
}

/// The plotted series: what the goals compare.
pub fn series(run: &RunResults) -> Vec<Series> {
    let each = |f: &dyn Fn(&crate::results::SizeResults) -> Option<f64>| -> Vec<(f64, f64)> {
        run.sizes
            .iter()
            .filter_map(|s| Some((s.services as f64, f(s)?)))
            .filter(|(_, y)| *y > 0.0)
            .collect()
    };
    let red = RGBColor(200, 30, 30);
    let blue = RGBColor(30, 80, 200);
    let green = RGBColor(20, 140, 60);
    vec![
        Series {
            label: "kube-ipvs cold sync",
            color: red,
            reference: false,
            points: each(&|s| Some(s.cold.sync.elapsed_ms as f64 / 1000.0)),
        },
        Series {
            label: "reference: ipvsadm -R + ipset restore + ip -batch",
            color: red,
            reference: true,
            points: each(&|s| Some(s.reference.programming_s())),
        },
        Series {
            label: "kube-ipvs full resync, nothing changed",
            color: blue,
            reference: false,
            points: each(&|s| Some(s.resync.sync.elapsed_ms as f64 / 1000.0)),
        },
        Series {
            label: "reference: ipvsadm -Sn",
            color: blue,
            reference: true,
            points: each(&|s| Some(s.reference.ipvsadm_save.seconds)),
        },
        Series {
            label: "kube-ipvs endpoint change (median sync)",
            color: green,
            reference: false,
            // A sync under a millisecond logs 0: plotted at 1 ms.
            points: each(&|s| {
                Derived::of(s)
                    .change_elapsed
                    .map(|(m, _)| m.max(1.0) / 1000.0)
            }),
        },
    ]
}

/// Decades that cover `lo..hi`.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    )
}

pub fn write_svg(run: &RunResults, path: &Path, subtitle: &str) -> Result<()> {
    let series = series(run);
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x_lo, x_hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (y_lo, y_hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if x_lo > x_hi || y_lo > y_hi {
        return Err(BenchError::Check("nothing to plot".into()));
    }
    let (x_lo, x_hi) = decades(x_lo, x_hi.max(x_lo * 10.0));
    let (y_lo, y_hi) = decades(y_lo, y_hi);

    let root = SVGBackend::new(path, (900, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("time against services (×10 endpoints each); {subtitle}"),
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("services")
        .y_desc("seconds")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y}")
            }
        })
        .draw()
        .map_err(plot_error)?;
    for s in &series {
        let color = s.color;
        let style = color.stroke_width(if s.reference { 1 } else { 3 });
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))
            .map_err(plot_error)?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        let reference = s.reference;
        chart
            .draw_series(s.points.iter().map(move |&p| {
                if reference {
                    Circle::new(p, 5, color.stroke_width(2))
                } else {
                    Circle::new(p, 5, color.filled())
                }
            }))
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

fn plot_error(error: impl std::fmt::Display) -> BenchError {
    BenchError::Plot(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_round_outwards() {
        assert_eq!(decades(100.0, 10_000.0), (100.0, 10_000.0));
        assert_eq!(decades(0.003, 441.0), (0.001, 1000.0));
    }
}
