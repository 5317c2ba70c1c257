//! Fuzz target: see `matnet::fuzzing::check_state` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matnet::fuzzing::{CountingAlloc, check_state};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(|input: &[u8]| {
    check_state(input);
});
