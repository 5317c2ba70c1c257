//! Fuzz target: see `matnet::fuzzing::check_checkpoint` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matnet::fuzzing::{CountingAlloc, check_checkpoint};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(|input: &[u8]| {
    check_checkpoint(input);
});
