//! PNG charts of training curves (plotters, with an embedded DejaVu font so
//! no system fonts are needed).

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::train::EpochMetrics;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font always parses; a failure would only cost the labels.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// One line of a panel.
pub struct Series {
    /// Legend text.
    pub name: &'static str,
    /// Line colour.
    pub color: RGBColor,
    /// `(x, y)` points.
    pub points: Vec<(f32, f32)>,
}

/// One chart of a figure: its y axis and its lines.
pub struct Panel {
    /// The y axis label.
    pub y_desc: &'static str,
    /// The lines drawn on it.
    pub series: Vec<Series>,
}

/// Loss (left) and accuracy (right) against epoch, train and validation.
pub fn plot_metrics(path: &Path, rows: &[EpochMetrics], title: &str) -> anyhow::Result<()> {
    let series = |name, color, f: fn(&EpochMetrics) -> f32| Series {
        name,
        color,
        points: rows.iter().map(|m| (m.epoch as f32, f(m))).collect(),
    };
    let panels = [
        Panel {
            y_desc: "loss",
            series: vec![
                series("train", BLUE, |m| m.train_loss),
                series("validation", RED, |m| m.val_loss),
            ],
        },
        Panel {
            y_desc: "accuracy (%)",
            series: vec![
                series("train", BLUE, |m| 100.0 * m.train_acc),
                series("validation", RED, |m| 100.0 * m.val_acc),
            ],
        },
    ];
    plot_panels(path, title, "epoch", &panels)
}

/// Panels side by side, 550 pixels wide each, sharing the x axis `x_desc`.
pub fn plot_panels(path: &Path, title: &str, x_desc: &str, panels: &[Panel]) -> anyhow::Result<()> {
    register_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: cannot draw chart: {e}", path.display());
    let width = 550 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        let all = || panel.series.iter().flat_map(|s| s.points.iter());
        let fold = |init: f32, f: fn(f32, f32) -> f32, pick: fn(&(f32, f32)) -> f32| {
            all().map(pick).fold(init, f)
        };
        let (lo, hi) = (
            fold(f32::INFINITY, f32::min, |p| p.1),
            fold(f32::NEG_INFINITY, f32::max, |p| p.1),
        );
        let (first, last) = (
            fold(f32::INFINITY, f32::min, |p| p.0),
            fold(f32::NEG_INFINITY, f32::max, |p| p.0),
        );
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let last = if last.is_finite() { last.max(1.0) } else { 1.0 };
        let first = if first.is_finite() {
            first.min(last - 1.0)
        } else {
            0.0
        };
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(first..last, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(panel.y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        for s in &panel.series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Writes `metrics.csv`: the `header` line, then one line per row.
pub fn write_csv(
    path: &std::path::Path,
    header: &str,
    rows: impl IntoIterator<Item = String>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut text = format!("{header}\n");
    for row in rows {
        text += &row;
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
