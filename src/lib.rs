//! node-lifecycle-controller: the node lifecycle and taint-eviction controllers of
//! kube-controller-manager, re-implemented.
//!
//! ```text
//!             Nodes, Leases, Pods                       writes (status, taints, pod status,
//!    API ───────watch/list──────▶ caches ──┐            deletes/evictions, events, leader lease)
//!  (real: kube::Client;                    ▼                     ▲
//!   sim: in-memory store)     controller state (plain data)      │
//!                                          │                     │
//!                                          ▼                     │
//!                     logic: pure, synchronous, deterministic    │
//!                     (state + now) ─▶ Vec<Action>               │
//!                     health · zones · rate limits · taints ·    │
//!                     tolerations · eviction schedule · leader   │
//!                                          │                     │
//!                                          ▼                     │
//!                     controller: async loops ─▶ writer ─────────┘
//!                                          (leader gate, preconditions, retries)
//! ```
//!
//! The seam between production and simulation is the [`cluster::Cluster`] trait: everything
//! above it runs unchanged in `run` and in `simulate`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cache;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod controller;
pub mod k8s;
pub mod logging;
pub mod logic;
pub mod metrics;
pub mod settings;
pub mod sim;
#[cfg(test)]
pub(crate) mod testing;
