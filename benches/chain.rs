//! Placeholder replaced by the settlement benchmark.
fn main() {}
