//! The pure decision core: plain data and `now` in, actions out.
//!
//! Nothing in here is async, reads a clock, logs, or talks to the API. That keeps every rule
//! testable with plain data and lets the simulator and production share it line for line.

pub mod actions;
pub mod conditions;
pub mod eviction;
pub mod explain;
pub mod freshness;
pub mod health;
pub mod labels;
pub mod leader;
pub mod monitor;
pub mod pod;
pub mod rate_limit;
pub mod recheck;
pub mod sanity;
pub mod taints;
pub mod time;
pub mod tolerations;
pub mod view;
pub mod zones;

pub use jiff::Timestamp;
