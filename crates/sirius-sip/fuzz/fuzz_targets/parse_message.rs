//! A datagram through everything a received message goes through.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sirius_sip::message::{parse_datagram, Limits, NameAddr};
use sirius_sip::validate::{inspect_request, inspect_response, Capabilities};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_datagram(data, &Limits::default()) {
        let _ = inspect_request(&m, &Capabilities::default());
        let _ = inspect_response(&m);
        let _ = (m.top_via(), m.cseq(), m.from_header(), m.to_header());
        for h in m.headers.iter() {
            let _ = sirius_sip::auth::params::AuthHeader::parse(h.value);
            let _ = NameAddr::parse_list(h.value);
        }
        let again = parse_datagram(&m.to_bytes(), &Limits::default()).expect("serialised message parses");
        assert_eq!(again.body, m.body);
    }
});
