//! The simulated cluster: an in-memory API server, kubelets, admission, faults, scenarios and
//! the timeline, all in virtual time.

pub mod scenario;
