//! The HTTP side: just enough HTTP/1.1 for a Prometheus scraper (and curl):
//! one request per connection, `GET` or `HEAD` of the metrics path, Basic
//! authentication when configured, everything else answered `404`, `405`
//! or `400`. Requests are bounded (8 KiB of head, `session_inactivity` to
//! send it, `sessionlimit` connections at once) so a client that never
//! finishes holds nothing for long.

use crate::config::{Http, Prometheus};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// What the server needs to answer.
pub struct Site {
    /// `http.toml`.
    pub http: Http,
    /// `prometheus.toml`.
    pub prometheus: Prometheus,
    /// `Basic <base64(user:password)>`, when authentication is on.
    pub expected_auth: Option<String>,
}

impl Site {
    /// The site for these settings.
    pub fn new(http: Http, prometheus: Prometheus) -> Site {
        let expected_auth = match (&prometheus.auth_username, &prometheus.auth_password) {
            (Some(u), Some(p)) => Some(format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))),
            _ => None,
        };
        Site {
            http,
            prometheus,
            expected_auth,
        }
    }
}

/// How long a scrape may take to gather before it is answered 500: a
/// plugin stuck behind its own lock must not hold the connection (and a
/// `sessionlimit` place) for ever. Prometheus's own default timeout is 10 s.
/// (Unit tests wait less.)
const PAGE_TIMEOUT: Duration = if cfg!(test) {
    Duration::from_millis(300)
} else {
    Duration::from_secs(8)
};

/// Accepts connections until the listener fails; `page` renders the metrics
/// (`None`: they could not be gathered, answered 500).
pub async fn serve<F, Fut>(listener: TcpListener, site: Arc<Site>, page: F)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Option<String>> + Send,
{
    let limit = Arc::new(Semaphore::new(site.http.sessionlimit.max(1)));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("HTTP server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Past the limit: closed at once, as Asterisk's sessionlimit.
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue;
        };
        let (site, page) = (site.clone(), page.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = answer(stream, &site, page).await;
        });
    }
}

/// A request's head, as far as this server reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`…
    pub method: String,
    /// The path without its query.
    pub path: String,
    /// The `Authorization` header's value.
    pub authorization: Option<String>,
}

/// Parses a request head (request line and headers, CRLF or LF lines).
pub fn parse(head: &str) -> Option<Request> {
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if !version.starts_with("HTTP/1.") || first.next().is_some() {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target).to_string();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    Some(Request {
        method: method.to_string(),
        path,
        authorization,
    })
}

/// What to answer a request: status, reason, extra headers, and whether the
/// body is the metrics page.
pub fn route(site: &Site, req: &Request) -> (u16, &'static str, Vec<String>, bool) {
    if req.path != format!("/{}", site.prometheus.uri.trim_start_matches('/'))
        || !site.prometheus.enabled
    {
        return (404, "Not Found", vec![], false);
    }
    if req.method != "GET" && req.method != "HEAD" {
        return (
            405,
            "Method Not Allowed",
            vec!["Allow: GET, HEAD".into()],
            false,
        );
    }
    if let Some(expected) = &site.expected_auth {
        if req.authorization.as_deref() != Some(expected.as_str()) {
            let realm = site.prometheus.auth_realm.replace('"', "'");
            return (
                401,
                "Unauthorized",
                vec![format!("WWW-Authenticate: Basic realm=\"{realm}\"")],
                false,
            );
        }
    }
    (200, "OK", vec![], true)
}

async fn answer<F, Fut>(mut stream: TcpStream, site: &Site, page: F) -> std::io::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let wait = Duration::from_millis(site.http.session_inactivity.max(1));
    let head = match tokio::time::timeout(wait, read_head(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        // Too slow, too long, or closed: nothing worth an answer.
        _ => return Ok(()),
    };
    let (status, reason, headers, body) = match parse(&head) {
        Some(req) => {
            let (mut status, mut reason, headers, metrics) = route(site, &req);
            let body = if metrics {
                match tokio::time::timeout(PAGE_TIMEOUT, page()).await {
                    Ok(Some(body)) => body,
                    failed => {
                        let why = if failed.is_err() {
                            "took too long"
                        } else {
                            "failed"
                        };
                        log::warn!("HTTP server: gathering the metrics {why}");
                        (status, reason) = (500, "Internal Server Error");
                        format!("500 Internal Server Error: gathering the metrics {why}\n")
                    }
                }
            } else {
                format!("{status} {reason}\n")
            };
            let body = if req.method == "HEAD" {
                (body.len(), String::new())
            } else {
                (body.len(), body)
            };
            (status, reason, headers, body)
        }
        None => (400, "Bad Request", vec![], (12, "Bad Request\n".into())),
    };
    let kind = if status == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n",
        site.http.servername, body.0
    );
    for h in headers {
        out.push_str(&h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body.1);
    tokio::time::timeout(wait, stream.write_all(out.as_bytes()))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let _ = stream.shutdown().await;
    Ok(())
}

/// Reads until the blank line that ends the head; `None` past
/// [`MAX_HEAD`] or when the client closes first.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&buf) {
            return Ok(Some(String::from_utf8_lossy(&buf[..end]).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"))
}

/// Standard base64 with padding (RFC 4648), for the expected Basic credentials.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(auth: bool) -> Site {
        let mut p = Prometheus::default();
        if auth {
            p.auth_username = Some("prom".into());
            p.auth_password = Some("s3cret".into());
        }
        Site::new(Http::default(), p)
    }

    #[test]
    fn requests_and_routes() {
        let r = parse(
            "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nauthorization: Basic cHJvbTpzM2NyZXQ=\r\n",
        )
        .unwrap();
        assert_eq!(r.path, "/metrics");
        assert_eq!(r.authorization.as_deref(), Some("Basic cHJvbTpzM2NyZXQ="));
        assert_eq!(route(&site(false), &r).0, 200);
        assert_eq!(route(&site(true), &r).0, 200);
        let anon = parse("GET /metrics HTTP/1.0\n").unwrap();
        let (code, _, headers, _) = route(&site(true), &anon);
        assert_eq!(
            (code, headers[0].as_str()),
            (
                401,
                "WWW-Authenticate: Basic realm=\"Asterisk Prometheus Metrics\""
            )
        );
        assert_eq!(
            route(&site(false), &parse("POST /metrics HTTP/1.1\r\n").unwrap()).0,
            405
        );
        assert_eq!(
            route(&site(false), &parse("GET /other HTTP/1.1\r\n").unwrap()).0,
            404
        );
        assert_eq!(parse("GET /metrics\r\n"), None);
        assert_eq!(parse("GET /metrics SPDY/3\r\n"), None);
        assert_eq!(parse(""), None);
    }

    /// Sends one GET to a server whose page is `page`; the status line.
    fn status_of<Fut>(page: fn() -> Fut) -> String
    where
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        use std::io::{Read, Write};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(serve(listener, Arc::new(site(false)), page));
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out.lines().next().unwrap_or_default().to_string()
        });
        rt.block_on(async {
            while !client.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        client.join().unwrap()
    }

    #[test]
    fn a_page_that_fails_or_hangs_is_a_500() {
        assert_eq!(
            status_of(|| async { Some("up 1\n".to_string()) }),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(
            status_of(|| async { None }),
            "HTTP/1.1 500 Internal Server Error"
        );
        // A page that never comes: answered once PAGE_TIMEOUT is up.
        assert_eq!(
            status_of(std::future::pending::<Option<String>>),
            "HTTP/1.1 500 Internal Server Error"
        );
    }

    #[test]
    fn base64_as_rfc_4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("prom:s3cret", "cHJvbTpzM2NyZXQ="),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }
}
