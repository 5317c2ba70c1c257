//! Fuzz target: see `matnet::fuzzing::check_png` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matnet::fuzzing::{CountingAlloc, check_png};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(|input: &[u8]| {
    check_png(input);
});
