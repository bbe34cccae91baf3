// Each test binary (and the io_path bench) uses a different part of these
// helpers; what one leaves unused is used by another.
#![allow(dead_code)]

pub mod rng;
pub mod vmbus;
