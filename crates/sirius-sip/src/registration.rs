//! An outbound registration (a `register` line), sans-IO.
//!
//! ```text
//!  Unregistered --start--> Request Sent --401/407--> Auth. Sent --2xx--> Registered
//!        ^                      |   \--2xx-----------------------------^    |
//!        |                      |                                    refresh before expiry
//!   unregister (Expires: 0)     +--403--> Rejected   --(back-off)--> Request Sent
//!                               +--401 again--> No Authentication --(back-off)--^
//!                               +--timeout/5xx--> Failed --(back-off)--^
//! ```
//!
//! The caller sends the requests it returns through the transaction layer and
//! feeds back the final response or the transaction timeout. Call-ID and From
//! tag stay the same for the life of the registration; CSeq grows by one per
//! request (RFC 3261 §10.2). Refresh happens before expiry with Asterisk's
//! guard: 15 s early for expiries of 30 s or more, else at 80 % of the expiry.

use crate::auth::client::Challenge;
use crate::message::build::Tokens;
use crate::message::{HeaderName, Message, Method, NameAddr, Via};
use std::time::{Duration, Instant};

/// Asterisk's registration states, as `sip show registry` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    /// Not registered (initially, and after unregistering).
    Unregistered,
    /// REGISTER sent, no answer yet.
    RequestSent,
    /// Authenticated REGISTER sent.
    AuthSent,
    /// 2xx received.
    Registered,
    /// 403 or another 4xx: the registrar refuses us.
    Rejected,
    /// Timeout or 5xx/6xx.
    Failed,
    /// The registrar refused our credentials.
    NoAuthentication,
}

impl RegState {
    /// The text `sip show registry` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            RegState::Unregistered => "Unregistered",
            RegState::RequestSent => "Request Sent",
            RegState::AuthSent => "Auth. Sent",
            RegState::Registered => "Registered",
            RegState::Rejected => "Rejected",
            RegState::Failed => "Failed",
            RegState::NoAuthentication => "No Authentication",
        }
    }
}

/// A registration's fixed parameters.
#[derive(Debug, Clone)]
pub struct RegConfig {
    /// User part of the AOR (`To`/`From`).
    pub user: String,
    /// Digest username, when different from `user`.
    pub authuser: Option<String>,
    /// Digest password.
    pub secret: String,
    /// Registrar domain: Request-URI `sip:<domain>` and AOR host.
    pub domain: String,
    /// Requested expiry in seconds.
    pub expiry: u32,
    /// Our Contact URI.
    pub contact: String,
    /// Via transport and sent-by for our requests.
    pub via_transport: String,
    /// Via sent-by host.
    pub via_host: crate::message::Host,
    /// Via sent-by port.
    pub via_port: Option<u16>,
    /// First back-off after a failure (Asterisk's `registertimeout`, 20 s).
    pub retry_base: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
}

/// An outbound registration.
#[derive(Debug)]
pub struct Registration {
    cfg: RegConfig,
    state: RegState,
    call_id: String,
    from_tag: String,
    cseq: u32,
    challenge: Option<Challenge>,
    nc: u32,
    auth_attempts: u32,
    failures: u32,
    /// Granted expiry of the current binding.
    granted: Option<u32>,
    expiry_requested: u32,
    next_at: Option<Instant>,
    unregistering: bool,
    in_flight: bool,
    /// Branches and digest cnonces.
    tokens: Tokens,
}

fn refresh_delay(expiry: u32) -> Duration {
    if expiry >= 30 {
        Duration::from_secs(u64::from(expiry - 15))
    } else {
        Duration::from_millis(u64::from(expiry) * 800)
    }
}

impl Registration {
    /// A registration, not yet started, its Call-ID, tag, branches and
    /// cnonces drawn at random.
    pub fn new(cfg: RegConfig) -> Registration {
        Registration::with_tokens(cfg, Tokens::random())
    }

    /// A registration whose Call-ID, tag, branches and cnonces come from
    /// `tokens` (repeatable in tests).
    pub fn with_tokens(cfg: RegConfig, mut tokens: Tokens) -> Registration {
        let expiry = cfg.expiry;
        Registration {
            cfg,
            state: RegState::Unregistered,
            call_id: format!("{}@sirius", tokens.token()),
            from_tag: tokens.token(),
            cseq: 0,
            challenge: None,
            nc: 0,
            auth_attempts: 0,
            failures: 0,
            granted: None,
            expiry_requested: expiry,
            next_at: None,
            unregistering: false,
            in_flight: false,
            tokens,
        }
    }

    /// The Call-ID every REGISTER of this registration carries.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Current state.
    pub fn state(&self) -> RegState {
        self.state
    }

    /// Granted expiry in seconds while registered (`Refresh` column).
    pub fn granted_expiry(&self) -> Option<u32> {
        self.granted
    }

    /// The configuration.
    pub fn config(&self) -> &RegConfig {
        &self.cfg
    }

    /// When [`Registration::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_at
    }

    /// Builds the REGISTER to send now; `expires` 0 unregisters.
    fn build(&mut self, expires: u32) -> Message {
        self.cseq += 1;
        let aor = format!("sip:{}@{}", self.cfg.user, self.cfg.domain);
        let ruri = format!("sip:{}", self.cfg.domain);
        let mut m = Message::request(Method::Register, ruri.clone());
        let via = Via::new(
            &self.cfg.via_transport,
            self.cfg.via_host.clone(),
            self.cfg.via_port,
            &self.tokens.branch(),
        );
        let mut via_text = via.to_string();
        via_text.push_str(";rport");
        m.push(HeaderName::Via, via_text);
        m.push(HeaderName::MaxForwards, "70");
        m.push(HeaderName::From, format!("<{aor}>;tag={}", self.from_tag));
        m.push(HeaderName::To, format!("<{aor}>"));
        m.push(HeaderName::CallId, self.call_id.clone());
        m.push(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        m.push(HeaderName::Contact, format!("<{}>", self.cfg.contact));
        m.push(HeaderName::Expires, expires.to_string());
        if let Some(ch) = &self.challenge {
            self.nc += 1;
            let user = self.cfg.authuser.as_deref().unwrap_or(&self.cfg.user);
            if let Ok(v) = ch.authorize(
                user,
                &self.cfg.secret,
                "REGISTER",
                &ruri,
                b"",
                &self.tokens.token()[..8],
                self.nc,
            ) {
                m.push(ch.answer_header(), v);
            }
        }
        self.in_flight = true;
        m
    }

    /// Starts (or restarts) registering now.
    pub fn start(&mut self, _now: Instant) -> Message {
        self.unregistering = false;
        self.state = if self.challenge.is_some() {
            RegState::AuthSent
        } else {
            RegState::RequestSent
        };
        self.next_at = None;
        let e = self.expiry_requested;
        self.build(e)
    }

    /// Removes the binding (`Expires: 0`), e.g. on module unload. `None` if
    /// nothing is registered or a request is already in flight.
    pub fn unregister(&mut self, _now: Instant) -> Option<Message> {
        self.next_at = None;
        if self.state != RegState::Registered {
            self.state = RegState::Unregistered;
            return None;
        }
        self.unregistering = true;
        Some(self.build(0))
    }

    fn back_off(&mut self, now: Instant, state: RegState, retry_after: Option<u32>) {
        self.state = state;
        self.granted = None;
        self.failures += 1;
        let shift = self.failures.saturating_sub(1).min(16);
        let mut wait = self
            .cfg
            .retry_base
            .saturating_mul(1 << shift)
            .min(self.cfg.retry_max);
        if let Some(s) = retry_after {
            wait = wait.max(Duration::from_secs(u64::from(s)));
        }
        self.next_at = Some(now + wait);
    }

    /// The final response to our last REGISTER. Returns a REGISTER to send at
    /// once (authenticated resend, or a retry with Min-Expires).
    pub fn on_response(&mut self, now: Instant, resp: &Message) -> Option<Message> {
        let code = resp.code()?;
        if code < 200 {
            return None;
        }
        self.in_flight = false;
        if self.unregistering {
            self.unregistering = false;
            self.state = RegState::Unregistered;
            self.granted = None;
            return None;
        }
        match code {
            200..=299 => {
                let expiry = self.granted_from(resp);
                self.state = RegState::Registered;
                self.granted = Some(expiry);
                self.failures = 0;
                self.auth_attempts = 0;
                self.next_at = Some(now + refresh_delay(expiry));
                None
            }
            401 | 407 => match Challenge::from_response(resp)
                .ok()
                .and_then(|c| c.into_iter().next())
            {
                Some(ch) => {
                    let same_nonce = self
                        .challenge
                        .as_ref()
                        .is_some_and(|old| old.nonce == ch.nonce);
                    // A second challenge right after our credentials, not marked
                    // stale, means the credentials are wrong.
                    if self.state == RegState::AuthSent
                        && !ch.stale
                        && (same_nonce || self.auth_attempts >= 1)
                    {
                        self.challenge = None;
                        self.auth_attempts = 0;
                        self.back_off(now, RegState::NoAuthentication, None);
                        return None;
                    }
                    self.auth_attempts += 1;
                    self.challenge = Some(ch);
                    self.nc = 0;
                    self.state = RegState::AuthSent;
                    let e = self.expiry_requested;
                    Some(self.build(e))
                }
                None => {
                    self.back_off(now, RegState::NoAuthentication, None);
                    None
                }
            },
            423 => {
                let min = resp
                    .headers
                    .get(&HeaderName::MinExpires)
                    .and_then(|v| v.trim().parse().ok());
                match min {
                    Some(m) if m > self.expiry_requested => {
                        self.expiry_requested = m;
                        let e = m;
                        Some(self.build(e))
                    }
                    _ => {
                        self.back_off(now, RegState::Rejected, None);
                        None
                    }
                }
            }
            400..=499 => {
                self.back_off(now, RegState::Rejected, None);
                None
            }
            _ => {
                let ra = resp
                    .headers
                    .get(&HeaderName::RetryAfter)
                    .and_then(|v| v.split([';', ' ']).next()?.parse().ok());
                self.back_off(now, RegState::Failed, ra);
                None
            }
        }
    }

    /// The transaction for our REGISTER timed out (no answer).
    pub fn on_timeout(&mut self, now: Instant) {
        self.in_flight = false;
        if self.unregistering {
            self.unregistering = false;
            self.state = RegState::Unregistered;
            return;
        }
        self.back_off(now, RegState::Failed, None);
    }

    /// Runs the refresh or retry timer; returns a REGISTER when one is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Message> {
        if self.next_at.is_some_and(|t| t <= now) && !self.in_flight {
            self.next_at = None;
            if self.state != RegState::Registered {
                self.state = if self.challenge.is_some() {
                    RegState::AuthSent
                } else {
                    RegState::RequestSent
                };
            }
            let e = self.expiry_requested;
            return Some(self.build(e));
        }
        None
    }

    /// The expiry the registrar granted: our Contact's `expires`, else `Expires`, else what we asked.
    fn granted_from(&self, resp: &Message) -> u32 {
        let ours = resp
            .headers
            .values(&HeaderName::Contact)
            .filter_map(|c| NameAddr::parse(c).ok())
            .find(|c| {
                c.uri == self.cfg.contact
                    || c.sip_uri().ok().and_then(|u| u.user)
                        == crate::message::Uri::parse(&self.cfg.contact)
                            .ok()
                            .and_then(|u| u.user)
            });
        ours.and_then(|c| c.params.get("expires").and_then(|e| e.parse().ok()))
            .or_else(|| {
                resp.headers
                    .get(&HeaderName::Expires)
                    .and_then(|e| e.trim().parse().ok())
            })
            .unwrap_or(self.expiry_requested)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // simulated clocks start from one real Instant
mod tests {
    use super::*;
    use crate::auth::params::AuthHeader;
    use crate::auth::server::{DigestServer, Verdict};
    use crate::message::{build, Host};

    fn cfg() -> RegConfig {
        RegConfig {
            user: "msisdn".into(),
            authuser: None,
            secret: "password".into(),
            domain: "127.0.0.1".into(),
            expiry: 3600,
            contact: "sip:msisdn@127.0.0.1:5061".into(),
            via_transport: "UDP".into(),
            via_host: Host::Name("127.0.0.1".into()),
            via_port: Some(5061),
            retry_base: Duration::from_secs(20),
            retry_max: Duration::from_secs(600),
        }
    }

    fn respond(req: &Message, code: u16, extra: &[(HeaderName, String)]) -> Message {
        let mut r = build::response(req, code, "X", None);
        for (n, v) in extra {
            r.push(n.clone(), v.clone());
        }
        r
    }

    #[test]
    fn the_mobile_operator_flow_register_401_register_200_refresh_unregister() {
        let mut server = DigestServer::new("movistar.es", [1; 32], 300);
        let t0 = Instant::now();
        let mut reg = Registration::new(cfg());
        let r1 = reg.start(t0);
        assert_eq!(reg.state(), RegState::RequestSent);
        assert_eq!(r1.headers.get(&HeaderName::CSeq), Some("1 REGISTER"));
        assert_eq!(r1.headers.get(&HeaderName::Expires), Some("3600"));
        assert!(r1.headers.get(&HeaderName::Authorization).is_none());
        let challenge = respond(
            &r1,
            401,
            &[(HeaderName::WwwAuthenticate, server.challenge(1000, false))],
        );
        let r2 = reg
            .on_response(t0, &challenge)
            .expect("authenticated resend");
        assert_eq!(reg.state(), RegState::AuthSent);
        assert_eq!(
            r2.headers.get(&HeaderName::CSeq),
            Some("2 REGISTER"),
            "next CSeq"
        );
        assert_eq!(r2.call_id(), r1.call_id(), "same Call-ID");
        assert_eq!(
            r2.from_header().unwrap().tag(),
            r1.from_header().unwrap().tag()
        );
        let auth = AuthHeader::parse(r2.headers.get(&HeaderName::Authorization).unwrap()).unwrap();
        assert_eq!(
            (auth.get("qop"), auth.get("nc"), auth.get("uri")),
            (Some("auth"), Some("00000001"), Some("sip:127.0.0.1"))
        );
        let ha1 = server.ha1("msisdn", "password");
        assert_eq!(
            server.verify(&auth, "REGISTER", b"", &ha1, 1001),
            Verdict::Ok
        );
        let ok = respond(
            &r2,
            200,
            &[(
                HeaderName::Contact,
                "<sip:msisdn@127.0.0.1:5061>;expires=120".into(),
            )],
        );
        assert!(reg.on_response(t0, &ok).is_none());
        assert_eq!(
            (reg.state(), reg.granted_expiry()),
            (RegState::Registered, Some(120))
        );
        // Refresh 15 s before the granted 120 s.
        assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(105)));
        assert!(reg.handle_timeout(t0 + Duration::from_secs(104)).is_none());
        let r3 = reg
            .handle_timeout(t0 + Duration::from_secs(105))
            .expect("refresh");
        assert_eq!(r3.headers.get(&HeaderName::CSeq), Some("3 REGISTER"));
        let auth3 = AuthHeader::parse(r3.headers.get(&HeaderName::Authorization).unwrap()).unwrap();
        assert_eq!(
            auth3.get("nc"),
            Some("00000002"),
            "refresh reuses the nonce with the next count"
        );
        assert_eq!(
            server.verify(&auth3, "REGISTER", b"", &ha1, 1100),
            Verdict::Ok
        );
        reg.on_response(
            t0 + Duration::from_secs(105),
            &respond(&r3, 200, &[(HeaderName::Expires, "120".into())]),
        );
        let bye = reg
            .unregister(t0 + Duration::from_secs(110))
            .expect("Expires: 0");
        assert_eq!(bye.headers.get(&HeaderName::Expires), Some("0"));
        assert_eq!(
            bye.headers.get(&HeaderName::Contact),
            Some("<sip:msisdn@127.0.0.1:5061>")
        );
        reg.on_response(t0, &respond(&bye, 200, &[]));
        assert_eq!(reg.state(), RegState::Unregistered);
    }

    #[test]
    fn an_aor_of_a_named_domain_is_registered_in_from_to_and_the_request_uri() {
        // msisdn@movistar.es at a registrar addressed by IP: the addresses
        // name the domain, the digest user is the line's own.
        let mut server = DigestServer::new("movistar.es", [4; 32], 300);
        let t0 = Instant::now();
        let mut reg = Registration::new(RegConfig {
            user: "34600000000".into(),
            authuser: Some("msisdn".into()),
            domain: "movistar.es".into(),
            ..cfg()
        });
        let r1 = reg.start(t0);
        assert_eq!(r1.request_uri(), Some("sip:movistar.es"));
        let from = r1.from_header().unwrap();
        assert_eq!(from.uri, "sip:34600000000@movistar.es");
        assert!(from.tag().is_some());
        let to = r1.to_header().unwrap();
        assert_eq!(
            (to.uri.as_str(), to.tag()),
            ("sip:34600000000@movistar.es", None)
        );
        assert_eq!(
            r1.headers.get(&HeaderName::Contact),
            Some("<sip:msisdn@127.0.0.1:5061>"),
            "the Contact stays ours"
        );
        let challenge = respond(
            &r1,
            401,
            &[(HeaderName::WwwAuthenticate, server.challenge(1000, false))],
        );
        let r2 = reg.on_response(t0, &challenge).unwrap();
        assert_eq!(r2.request_uri(), Some("sip:movistar.es"));
        assert_eq!(r2.to_header().unwrap().uri, "sip:34600000000@movistar.es");
        let auth = AuthHeader::parse(r2.headers.get(&HeaderName::Authorization).unwrap()).unwrap();
        assert_eq!(
            (auth.get("username"), auth.get("uri")),
            (Some("msisdn"), Some("sip:movistar.es"))
        );
        let ha1 = server.ha1("msisdn", "password");
        assert_eq!(
            server.verify(&auth, "REGISTER", b"", &ha1, 1001),
            Verdict::Ok
        );
        reg.on_response(
            t0,
            &respond(&r2, 200, &[(HeaderName::Expires, "60".into())]),
        );
        let bye = reg.unregister(t0).expect("Expires: 0");
        assert_eq!(bye.request_uri(), Some("sip:movistar.es"));
        assert_eq!(
            bye.from_header().unwrap().uri,
            "sip:34600000000@movistar.es"
        );
    }

    #[test]
    fn wrong_password_ends_in_no_authentication_with_back_off() {
        let server = DigestServer::new("r", [2; 32], 300);
        let t0 = Instant::now();
        let mut reg = Registration::new(cfg());
        let r1 = reg.start(t0);
        let r2 = reg
            .on_response(
                t0,
                &respond(
                    &r1,
                    401,
                    &[(HeaderName::WwwAuthenticate, server.challenge(1, false))],
                ),
            )
            .unwrap();
        // The registrar challenges again (fresh nonce, not stale): credentials refused.
        assert!(reg
            .on_response(
                t0,
                &respond(
                    &r2,
                    401,
                    &[(HeaderName::WwwAuthenticate, server.challenge(2, false))]
                )
            )
            .is_none());
        assert_eq!(reg.state(), RegState::NoAuthentication);
        assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(20)));
        let r3 = reg.handle_timeout(t0 + Duration::from_secs(20)).unwrap();
        assert!(
            r3.headers.get(&HeaderName::Authorization).is_none(),
            "starts over without stale credentials"
        );
        reg.on_timeout(t0 + Duration::from_secs(52));
        assert_eq!(reg.state(), RegState::Failed);
        assert_eq!(
            reg.poll_timeout(),
            Some(t0 + Duration::from_secs(52 + 40)),
            "back-off doubles"
        );
    }

    #[test]
    fn stale_nonce_is_retried_forbidden_rejected_and_interval_too_brief_adjusted() {
        let server = DigestServer::new("r", [3; 32], 300);
        let t0 = Instant::now();
        let mut reg = Registration::new(cfg());
        let r1 = reg.start(t0);
        let r2 = reg
            .on_response(
                t0,
                &respond(
                    &r1,
                    407,
                    &[(HeaderName::ProxyAuthenticate, server.challenge(1, false))],
                ),
            )
            .unwrap();
        assert!(r2.headers.get(&HeaderName::ProxyAuthorization).is_some());
        let r3 = reg.on_response(
            t0,
            &respond(
                &r2,
                407,
                &[(HeaderName::ProxyAuthenticate, server.challenge(2, true))],
            ),
        );
        assert!(r3.is_some(), "stale=true: resend with the new nonce");
        let r3 = r3.unwrap();
        let r4 = reg
            .on_response(
                t0,
                &respond(&r3, 423, &[(HeaderName::MinExpires, "7200".into())]),
            )
            .unwrap();
        assert_eq!(r4.headers.get(&HeaderName::Expires), Some("7200"));
        reg.on_response(t0, &respond(&r4, 403, &[]));
        assert_eq!(reg.state(), RegState::Rejected);
        assert_eq!(RegState::AuthSent.as_str(), "Auth. Sent");
    }

    #[test]
    fn service_unavailable_honours_retry_after() {
        let t0 = Instant::now();
        let mut reg = Registration::new(cfg());
        let r1 = reg.start(t0);
        reg.on_response(
            t0,
            &respond(&r1, 503, &[(HeaderName::RetryAfter, "300".into())]),
        );
        assert_eq!(reg.state(), RegState::Failed);
        assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(300)));
    }

    #[test]
    fn tokens_from_one_seed_make_the_same_requests() {
        let t0 = Instant::now();
        let mut a = Registration::with_tokens(cfg(), Tokens::new(42));
        let mut b = Registration::with_tokens(cfg(), Tokens::new(42));
        assert_eq!(a.start(t0).to_bytes(), b.start(t0).to_bytes());
        let mut c = Registration::with_tokens(cfg(), Tokens::new(43));
        assert_ne!(a.start(t0).call_id(), c.start(t0).call_id());
    }
}
