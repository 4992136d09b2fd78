//! An SVG chart of one or more reports against concurrency: output
//! tokens/s, TTFT p50/p99 and inter-token latency p50/p99, one line per
//! server (solid p50, dashed p99). Written by hand: a few polylines need
//! no plotting library.

use serde_json::Value;
use std::fmt::Write;

const PANEL_W: f64 = 320.0;
const PANEL_H: f64 = 240.0;
const MARGIN: f64 = 50.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// One server's levels: (concurrency, tok/s, ttft p50, ttft p99, itl p50, itl p99).
pub struct Series {
    pub label: String,
    pub points: Vec<[f64; 6]>,
}

impl Series {
    /// From a report as `--out` writes it; levels without a concurrency
    /// (Poisson runs) are left out.
    pub fn from_report(report: &Value) -> Series {
        let label = report["label"].as_str().unwrap_or("server").to_owned();
        let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        let points = report["levels"]
            .as_array()
            .map(|levels| {
                levels
                    .iter()
                    .filter(|l| l["concurrency"].is_u64())
                    .map(|l| {
                        [
                            f(&l["concurrency"]),
                            f(&l["output_tokens_per_s"]),
                            f(&l["ttft_ms"]["p50"]),
                            f(&l["ttft_ms"]["p99"]),
                            f(&l["itl_ms"]["p50"]),
                            f(&l["itl_ms"]["p99"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        Series { label, points }
    }
}

/// The chart as an SVG document.
pub fn svg(series: &[Series]) -> String {
    let panels = [
        ("output tokens/s", &[1usize][..]),
        ("TTFT (ms), p50 solid, p99 dashed", &[2, 3][..]),
        (
            "inter-token latency (ms), p50 solid, p99 dashed",
            &[4, 5][..],
        ),
    ];
    let width = panels.len() as f64 * (PANEL_W + MARGIN) + MARGIN;
    let height = PANEL_H + 2.0 * MARGIN + 20.0 * series.len() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    // Levels are spaced evenly (they are usually powers of two).
    let mut levels: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p[0]))
        .collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let x_of = |c: f64| {
        let i = levels.iter().position(|&l| l == c).unwrap_or(0) as f64;
        let n = (levels.len().max(2) - 1) as f64;
        i / n * PANEL_W
    };
    for (k, (title, columns)) in panels.iter().enumerate() {
        let x0 = MARGIN + k as f64 * (PANEL_W + MARGIN);
        let y0 = MARGIN;
        let max = series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .flat_map(|p| columns.iter().map(move |&c| p[c]))
            })
            .filter(|v| v.is_finite())
            .fold(0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let y_of = |v: f64| y0 + PANEL_H - v / max * PANEL_H;
        let _ = writeln!(
            out,
            r#"<text x="{x0}" y="{}" font-weight="bold">{title}</text>"#,
            y0 - 10.0
        );
        let _ = writeln!(
            out,
            r##"<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#888"/>"##
        );
        for t in 0..=4 {
            let v = max * t as f64 / 4.0;
            let y = y_of(v);
            let _ = writeln!(
                out,
                r##"<line x1="{x0}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 + PANEL_W,
                x0 - 4.0,
                y + 4.0,
                short(v)
            );
        }
        for &c in &levels {
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="middle">c={c}</text>"#,
                x0 + x_of(c),
                y0 + PANEL_H + 14.0
            );
        }
        for (si, s) in series.iter().enumerate() {
            let color = COLORS[si % COLORS.len()];
            for (ci, &col) in columns.iter().enumerate() {
                let pts: Vec<String> = s
                    .points
                    .iter()
                    .filter(|p| p[col].is_finite())
                    .map(|p| format!("{:.1},{:.1}", x0 + x_of(p[0]), y_of(p[col])))
                    .collect();
                let dash = if ci == 1 {
                    r#" stroke-dasharray="5,4""#
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
                    pts.join(" ")
                );
            }
        }
    }
    for (si, s) in series.iter().enumerate() {
        let y = MARGIN + PANEL_H + 36.0 + 20.0 * si as f64;
        let color = COLORS[si % COLORS.len()];
        let _ = writeln!(
            out,
            r#"<line x1="{MARGIN}" x2="{}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            MARGIN + 24.0,
            MARGIN + 30.0,
            y + 4.0,
            escape(&s.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn short(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_server_and_column_with_every_level_labelled() {
        let report = |label: &str, scale: f64| {
            let levels: Vec<Value> = [1u64, 4, 16]
                .iter()
                .map(|&c| {
                    serde_json::json!({
                        "concurrency": c, "output_tokens_per_s": scale * c as f64,
                        "ttft_ms": {"p50": 10.0 * c as f64, "p99": 20.0 * c as f64},
                        "itl_ms": {"p50": 5.0, "p99": 9.0},
                    })
                })
                .collect();
            serde_json::json!({"label": label, "levels": levels})
        };
        let a = Series::from_report(&report("switchyard", 2.0));
        let b = Series::from_report(&report("llama-server", 1.0));
        assert_eq!(a.points.len(), 3);
        let svg = svg(&[a, b]);
        // Two servers × (1 + 2 + 2) lines.
        assert_eq!(svg.matches("<polyline").count(), 10);
        for c in ["c=1", "c=4", "c=16", "switchyard", "llama-server"] {
            assert!(svg.contains(c), "{c}");
        }
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
