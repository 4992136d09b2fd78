//! Arbitrary bytes as the body of both generation endpoints: parsing and
//! validation answer Ok or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::server::openai::check_body;

fuzz_target!(|data: &[u8]| {
    for path in ["/v1/chat/completions", "/v1/completions"] {
        let _ = check_body(path, data);
    }
});
