//! The Prometheus endpoint's HTTP side with a real daemon: Basic
//! authentication from prometheus.toml, the path, and what a core without
//! chan_sip serves. A scrape during a bridged call is in tests/media.rs.

use sirius_blackbox::{Daemon, Setup};

#[test]
fn basic_authentication_and_the_core_metrics() {
    let d = Daemon::start(Setup {
        modules_toml: "autoload = false\n",
        modules_dir: None,
        files: &[
            ("http.toml", "[general]\nenabled = true\nbindport = 0\n"),
            (
                "prometheus.toml",
                "[general]\nuri = \"stats\"\nauth_username = \"prom\"\nauth_password = \"s3cret\"\n",
            ),
        ],
    });
    let (code, body) = d.scrape(None);
    assert_eq!(code, 401, "{body}");
    assert!(!body.contains("asterisk_"), "{body}");
    let (code, _) = d.scrape(Some("Basic cHJvbTp3cm9uZw=="));
    assert_eq!(code, 401, "prom:wrong");
    let (code, body) = d.scrape(Some("Basic cHJvbTpzM2NyZXQ="));
    assert_eq!(code, 200, "prom:s3cret");
    assert!(
        body.contains("# TYPE asterisk_core_uptime_seconds counter\n"),
        "{body}"
    );
    assert!(body.contains("\nasterisk_channels_count 0\n"), "{body}");
    assert!(body.contains("\nasterisk_calls_sum 0\n"), "{body}");
    assert!(
        body.contains(&format!("version=\"Sirius {}\"", env!("CARGO_PKG_VERSION"))),
        "{body}"
    );
    // No plugin loaded: nothing of chan_sip's.
    assert!(!body.contains("sirius_sip_"), "{body}");
}
