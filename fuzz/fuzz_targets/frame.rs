//! Fuzz target `frame`: arbitrary bytes through `warren_protocol::fuzzing::frame`
//! (the checks live there, shared with the corpus replay in tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| warren_protocol::fuzzing::frame(data));
