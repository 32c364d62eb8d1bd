//! The Prometheus text exposition format (version 0.0.4): one `# HELP`
//! and `# TYPE` per metric name, then its samples, label values escaped
//! (`\\`, `\"`, `\n`). Metrics of one name from several sources (two
//! plugins) are merged under one header: the format allows a name once.

use sirius_abi::metrics::{Metric, MetricKind};
use std::fmt::Write;

/// The page.
pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::with_capacity(4096);
    let mut done: Vec<&str> = Vec::new();
    for m in metrics {
        let name = m.name.as_str();
        if done.contains(&name) || !valid_name(name) {
            continue;
        }
        done.push(name);
        let kind = match m.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&m.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for same in metrics.iter().filter(|o| o.name.as_str() == name) {
            for s in same.samples.iter() {
                out.push_str(name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, l) in s.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{}=\"{}\"", l.0, escape_label(&l.1));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", value(s.value));
            }
        }
    }
    out
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: anything else would break the page for
/// every metric, so it is left out.
fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Integers without a fraction; `NaN`, `+Inf`, `-Inf` as the format spells them.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format() {
        let a = Metric::labelled(
            "x_state",
            "States.\nTwo lines.",
            MetricKind::Gauge,
            vec![(vec![("name", "SIP/a\"b\\c\nd".to_string())], 2.0)],
        );
        let b = Metric::labelled(
            "x_state",
            "ignored: the first help wins",
            MetricKind::Gauge,
            vec![(vec![("name", "SIP/z".to_string())], 0.5)],
        );
        let c = Metric::single("x_total", "Count.", MetricKind::Counter, 12.0);
        let bad = Metric::single("bad name", "x", MetricKind::Gauge, 1.0);
        let page = render(&[a, c, b, bad]);
        assert_eq!(
            page,
            "# HELP x_state States.\\nTwo lines.\n# TYPE x_state gauge\nx_state{name=\"SIP/a\\\"b\\\\c\\nd\"} 2\nx_state{name=\"SIP/z\"} 0.5\n# HELP x_total Count.\n# TYPE x_total counter\nx_total 12\n"
        );
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(1.25), "1.25");
    }
}
