//! `btcbot report --html FILE`: one self-contained page (inline SVG and CSS, no scripts, no
//! network) with the equity curve, drawdown, exposure and mode-over-time charts and the run's
//! tables. Chart coordinates are computed in `Decimal` like everything else.

use super::run::{RunReport, run_report};
use super::utc;
use crate::store::{EquitySnapshot, Store, StoreError};
use rust_decimal::Decimal;
use std::fmt::Write as _;

const W: i64 = 900;
const H: i64 = 220;
const PAD_L: i64 = 70;
const PAD_B: i64 = 24;
/// Most points drawn per series; longer runs are sampled evenly (keeping the last point).
const MAX_POINTS: usize = 1500;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn sample<T: Clone>(all: &[T]) -> Vec<T> {
    if all.len() <= MAX_POINTS {
        return all.to_vec();
    }
    let step = all.len().div_ceil(MAX_POINTS);
    let mut out: Vec<T> = all.iter().step_by(step).cloned().collect();
    if let Some(last) = all.last() {
        out.push(last.clone());
    }
    out
}

/// A line chart of `(ts_ms, value)` as an `<svg>` element with axis labels.
fn line_chart(title: &str, class: &str, points: &[(i64, Decimal)]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure><figcaption>{}</figcaption><svg class="{class}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">"#,
        esc(title),
        W + PAD_L,
        H + PAD_B,
        W + PAD_L,
        H + PAD_B,
        esc(title)
    );
    let pts = sample(points);
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        svg.push_str(r#"<text x="80" y="110">no data</text></svg></figure>"#);
        return svg;
    };
    let (t0, t1) = (first.0, last.0.max(first.0 + 1));
    let lo = pts.iter().map(|p| p.1).min().unwrap_or_default();
    let mut hi = pts.iter().map(|p| p.1).max().unwrap_or_default();
    if hi == lo {
        hi = lo + Decimal::ONE;
    }
    let x = |t: i64| PAD_L + (t - t0) * W / (t1 - t0);
    let y =
        |v: Decimal| ((hi - v) * Decimal::from(H - 10) / (hi - lo)).round_dp(1) + Decimal::from(5);
    let _ = write!(
        svg,
        r#"<line x1="{PAD_L}" y1="{H}" x2="{}" y2="{H}" class="axis"/><line x1="{PAD_L}" y1="0" x2="{PAD_L}" y2="{H}" class="axis"/>"#,
        W + PAD_L
    );
    for v in [hi, (hi + lo) / Decimal::TWO, lo] {
        // Never print a negative zero ("-0.00").
        let label = if v.round_dp(2).is_zero() {
            Decimal::ZERO
        } else {
            v.round_dp(2)
        };
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>"#,
            PAD_L - 4,
            y(v) + Decimal::from(4),
            label
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{PAD_L}" y="{}" class="tick">{}</text><text x="{}" y="{}" class="tick" text-anchor="end">{}</text>"#,
        H + 16,
        esc(&utc(t0)),
        W + PAD_L,
        H + 16,
        esc(&utc(t1))
    );
    let path: Vec<String> = pts
        .iter()
        .map(|(t, v)| format!("{},{}", x(*t), y(*v)))
        .collect();
    let _ = write!(
        svg,
        r#"<polyline class="series" fill="none" points="{}"/></svg></figure>"#,
        path.join(" ")
    );
    svg
}

/// Mode over time: one coloured band per run of cycles in the same mode.
fn mode_chart(cycles: &[(i64, String)]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure><figcaption>Mode over time</figcaption><svg class="modes" viewBox="0 0 {} 60" width="{}" height="60" role="img" aria-label="mode over time">"#,
        W + PAD_L,
        W + PAD_L
    );
    let (Some(first), Some(last)) = (cycles.first(), cycles.last()) else {
        svg.push_str("</svg></figure>");
        return svg;
    };
    let (t0, t1) = (first.0, last.0.max(first.0 + 1));
    let x = |t: i64| PAD_L + (t - t0) * W / (t1 - t0);
    let mut start = 0usize;
    for i in 1..=cycles.len() {
        if i == cycles.len() || cycles[i].1 != cycles[start].1 {
            let x0 = x(cycles[start].0);
            let x1 = if i == cycles.len() {
                W + PAD_L
            } else {
                x(cycles[i].0)
            };
            let _ = write!(
                svg,
                r#"<rect x="{x0}" y="5" width="{}" height="30" class="mode-{}"><title>{} from {}</title></rect>"#,
                (x1 - x0).max(1),
                esc(&cycles[start].1),
                esc(&cycles[start].1),
                esc(&utc(cycles[start].0))
            );
            start = i;
        }
    }
    let mut lx = PAD_L;
    for mode in ["normal", "reduce_only", "observe_only", "halt"] {
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="44" width="10" height="10" class="mode-{mode}"/><text x="{}" y="53" class="tick">{mode}</text>"#,
            lx + 14
        );
        lx += 130;
    }
    svg.push_str("</svg></figure>");
    svg
}

fn table(rows: &[(String, String)]) -> String {
    let mut t = String::from("<table>");
    for (k, v) in rows {
        let _ = write!(t, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    t.push_str("</table>");
    t
}

fn counts_table(title: &str, m: &std::collections::BTreeMap<String, usize>) -> String {
    let rows: Vec<(String, String)> = m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    format!("<h2>{}</h2>{}", esc(title), table(&rows))
}

/// The page for `store`.
///
/// # Errors
/// A database that cannot be read.
pub fn html_report(store: &Store, title: &str) -> Result<String, StoreError> {
    let r: RunReport = run_report(store)?;
    let snapshots: Vec<EquitySnapshot> = store.equity_snapshots()?;
    let equity: Vec<(i64, Decimal)> = snapshots.iter().map(|s| (s.ts_ms, s.equity)).collect();
    let drawdown: Vec<(i64, Decimal)> = snapshots.iter().map(|s| (s.ts_ms, -s.drawdown)).collect();
    let exposure: Vec<(i64, Decimal)> = snapshots
        .iter()
        .map(|s| (s.ts_ms, s.gross_exposure))
        .collect();
    let modes: Vec<(i64, String)> = store
        .cycles()?
        .into_iter()
        .map(|c| (c.market_ts_ms, c.mode.as_str().to_string()))
        .collect();
    let positions: Vec<(String, String)> = snapshots
        .last()
        .and_then(|s| serde_json::from_str::<Vec<serde_json::Value>>(&s.positions_json).ok())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let f = |k: &str| p[k].as_str().unwrap_or("").to_string();
            (
                f("symbol"),
                format!(
                    "qty {} · avg cost {} · mark {}",
                    f("qty"),
                    f("avg_cost"),
                    f("mark")
                ),
            )
        })
        .collect();

    let mut page = String::new();
    let _ = write!(
        page,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{}</title><style>
body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}}
h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}
figure{{margin:16px 0}} figcaption{{font-weight:600;margin-bottom:4px}}
svg{{background:#fafafa;border:1px solid #ddd;max-width:100%;height:auto}}
.axis{{stroke:#999;stroke-width:1}} .tick{{font-size:11px;fill:#555}}
.equity .series{{stroke:#1f77b4;stroke-width:1.5}} .drawdown .series{{stroke:#d62728;stroke-width:1.5}}
.exposure .series{{stroke:#2ca02c;stroke-width:1.5}}
.mode-normal{{fill:#8fd18f}} .mode-reduce_only{{fill:#f5c04a}} .mode-observe_only{{fill:#e66b5b}} .mode-halt{{fill:#555}}
table{{border-collapse:collapse}} th,td{{border:1px solid #ddd;padding:3px 8px;text-align:left}} th{{background:#f2f2f2}}
</style></head><body><h1>{}</h1>"#,
        esc(title),
        esc(title)
    );
    let net = r.realized_pnl - r.fees;
    let win = if r.sells == 0 {
        "n/a".to_string()
    } else {
        format!(
            "{}%",
            (Decimal::from(r.winning_sells) * Decimal::from(100) / Decimal::from(r.sells))
                .round_dp(1)
        )
    };
    page.push_str(&table(&[
        (
            "cycles".into(),
            format!("{} ({} → {})", r.cycles, utc(r.first_ms), utc(r.last_ms)),
        ),
        (
            "equity".into(),
            format!(
                "{} → {} ({:+})",
                r.equity_start.round_dp(2),
                r.equity_end.round_dp(2),
                (r.equity_end - r.equity_start).round_dp(2)
            ),
        ),
        (
            "PnL".into(),
            format!(
                "realized {} · unrealized {} · fees {} · net realized {}",
                r.realized_pnl.round_dp(2),
                r.unrealized_pnl.round_dp(2),
                r.fees.round_dp(2),
                net.round_dp(2)
            ),
        ),
        (
            "max drawdown".into(),
            r.max_drawdown.round_dp(2).to_string(),
        ),
        (
            "exposure".into(),
            format!(
                "max {} · mean {}",
                r.max_exposure.round_dp(2),
                r.mean_exposure
            ),
        ),
        (
            "trades".into(),
            format!(
                "{} fills · {} sell orders · win rate {win}",
                r.fills, r.sells
            ),
        ),
    ]));
    page.push_str(&line_chart("Equity (TRY)", "equity", &equity));
    page.push_str(&line_chart(
        "Drawdown from peak (TRY)",
        "drawdown",
        &drawdown,
    ));
    page.push_str(&line_chart("Gross exposure (TRY)", "exposure", &exposure));
    page.push_str(&mode_chart(&modes));
    page.push_str(&counts_table("Time in each mode (cycles)", &r.modes));
    page.push_str(&counts_table("Verdicts by reason code", &r.verdicts));
    page.push_str(&counts_table("Orders by status", &r.orders));
    page.push_str("<h2>Positions at the end</h2>");
    if positions.is_empty() {
        page.push_str("<p>flat</p>");
    } else {
        page.push_str(&table(&positions));
    }
    page.push_str("</body></html>\n");
    Ok(page)
}
