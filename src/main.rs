//! The `coprocessor` command-line tool.
fn main() {}
