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

/// Loss (left) and accuracy (right) against epoch, train and validation.
pub fn plot_metrics(path: &Path, rows: &[EpochMetrics], title: &str) -> anyhow::Result<()> {
    register_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: cannot draw chart: {e}", path.display());
    let root = BitMapBackend::new(path, (1100, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(550);
    let last = rows.last().map_or(1, |m| m.epoch).max(1) as f32;
    let first = rows.first().map_or(0, |m| m.epoch) as f32;
    let series = |f: fn(&EpochMetrics) -> f32| {
        rows.iter()
            .map(move |m| (m.epoch as f32, f(m)))
            .collect::<Vec<_>>()
    };
    type Metric = fn(&EpochMetrics) -> f32;
    let panels: [(&DrawingArea<_, _>, &str, Metric, Metric); 2] = [
        (&left, "loss", |m| m.train_loss, |m| m.val_loss),
        (
            &right,
            "accuracy (%)",
            |m| 100.0 * m.train_acc,
            |m| 100.0 * m.val_acc,
        ),
    ];
    for (area, label, train, val) in panels {
        let (tr, va) = (series(train), series(val));
        let lo = tr
            .iter()
            .chain(&va)
            .map(|p| p.1)
            .fold(f32::INFINITY, f32::min);
        let hi = tr
            .iter()
            .chain(&va)
            .map(|p| p.1)
            .fold(f32::NEG_INFINITY, f32::max);
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(first.min(last - 1.0)..last, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(label)
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(LineSeries::new(tr, BLUE.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(va, RED.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
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
