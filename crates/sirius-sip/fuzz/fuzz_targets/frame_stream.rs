//! Stream framing with arbitrary bytes split at arbitrary points.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sirius_sip::message::{Framer, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = (cut as usize).min(rest.len());
    let mut f = Framer::new(Limits::default());
    for chunk in [&rest[..cut], &rest[cut..]] {
        f.push(chunk);
        // Bounded: each call consumes input or ends framing.
        for _ in 0..rest.len() + 2 {
            if f.next_message().is_none() {
                break;
            }
        }
    }
});
