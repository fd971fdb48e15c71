//! Per-node health from locally observed heartbeats.
