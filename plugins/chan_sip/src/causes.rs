//! Q.850 causes ↔ SIP responses, as chan_sip maps them (`hangup_sip2cause`,
//! `hangup_cause2sip`).

use sirius_abi::Cause;

/// The cause for a final SIP response we received.
pub fn sip_to_cause(code: u16) -> Cause {
    match code {
        401 | 402 | 403 | 407 | 603 => Cause::CALL_REJECTED,
        404 => Cause::UNALLOCATED,
        405 | 501 => Cause::INTERWORKING,
        406 => Cause::CHANNEL_UNACCEPTABLE,
        408 => Cause::NO_USER_RESPONSE,
        410 => Cause::NUMBER_CHANGED,
        411..=415 | 420 => Cause::INTERWORKING,
        480 => Cause::NO_ANSWER,
        481..=483 => Cause::INTERWORKING,
        484 => Cause::INVALID_NUMBER_FORMAT,
        485 => Cause::UNALLOCATED,
        486 | 600 => Cause::BUSY,
        487 => Cause::INTERWORKING,
        488 | 606 => Cause::BEARERCAPABILITY_NOTAVAIL,
        491 => Cause::INTERWORKING,
        493 => Cause::INTERWORKING,
        500 => Cause::FAILURE,
        502 => Cause::DESTINATION_OUT_OF_ORDER,
        503 => Cause::CONGESTION,
        504 => Cause::RECOVERY_ON_TIMER_EXPIRE,
        505 => Cause::INTERWORKING,
        c if (400..500).contains(&c) => Cause::INTERWORKING,
        c if (500..600).contains(&c) => Cause::CONGESTION,
        _ => Cause::NORMAL,
    }
}

/// The final response we send for a cause.
pub fn cause_to_sip(cause: Cause) -> (u16, &'static str) {
    match cause.0 {
        1..=3 => (404, "Not Found"),
        17 => (486, "Busy Here"),
        18 => (408, "Request Timeout"),
        19 | 20 => (480, "Temporarily Unavailable"),
        21 => (403, "Forbidden"),
        22 => (410, "Gone"),
        27 => (502, "Bad Gateway"),
        28 => (484, "Address Incomplete"),
        29 => (501, "Not Implemented"),
        34 | 41 | 42 | 44 => (503, "Service Unavailable"),
        58 | 65 => (488, "Not Acceptable Here"),
        66 | 69 => (501, "Not Implemented"),
        102 => (504, "Server Timeout"),
        _ => (500, "Server Internal Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asterisk_pairs() {
        for (code, cause) in [
            (404, 1),
            (486, 17),
            (480, 19),
            (408, 18),
            (488, 58),
            (503, 34),
        ] {
            assert_eq!(sip_to_cause(code), Cause(cause), "{code}");
            assert_eq!(cause_to_sip(Cause(cause)).0, code, "{cause}");
        }
        assert_eq!(
            cause_to_sip(Cause::UNREGISTERED),
            (480, "Temporarily Unavailable")
        );
        assert_eq!(sip_to_cause(603), Cause::CALL_REJECTED);
    }
}
