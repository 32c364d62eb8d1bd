//! Metrics a plugin reports for the core's Prometheus endpoint
//! (`/metrics`, Asterisk's res_prometheus): gathered when scraped, through
//! [`crate::Plugin::metrics`], so a plugin keeps plain counters and pays
//! nothing between scrapes. The core renders the text format (names,
//! `# HELP`, `# TYPE`, label escaping) in one place.

use abi_stable::std_types::{RString, RVec, Tuple2};
use abi_stable::StableAbi;

/// A counter (only goes up) or a gauge (a value now).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Prometheus `counter`.
    Counter,
    /// Prometheus `gauge`.
    Gauge,
}

/// One metric: a name (`sirius_sip_transactions`), its help text, its kind,
/// and one sample per label set.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name, `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    pub name: RString,
    /// One line of help.
    pub help: RString,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Its samples.
    pub samples: RVec<Sample>,
}

/// One value of a metric, with its labels (`peer="alice"`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label names and values, in order.
    pub labels: RVec<Tuple2<RString, RString>>,
    /// The value.
    pub value: f64,
}

impl Metric {
    /// A metric with one unlabelled sample.
    pub fn single(name: &str, help: &str, kind: MetricKind, value: f64) -> Metric {
        Metric {
            name: name.into(),
            help: help.into(),
            kind,
            samples: vec![Sample {
                labels: RVec::new(),
                value,
            }]
            .into(),
        }
    }

    /// A metric whose samples are labelled: `(labels, value)` each.
    pub fn labelled<'a>(
        name: &str,
        help: &str,
        kind: MetricKind,
        samples: impl IntoIterator<Item = (Vec<(&'a str, String)>, f64)>,
    ) -> Metric {
        Metric {
            name: name.into(),
            help: help.into(),
            kind,
            samples: samples
                .into_iter()
                .map(|(labels, value)| Sample {
                    labels: labels
                        .into_iter()
                        .map(|(k, v)| Tuple2(k.into(), v.into()))
                        .collect(),
                    value,
                })
                .collect(),
        }
    }
}
