//! The executor: runs guest programs in the metered VM.

pub mod vm;
