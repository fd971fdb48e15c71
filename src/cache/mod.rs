//! The controller's compact copies of watched pods, and the table they share strings through.
//!
//! Pods arrive as [`WatchedPod`]s (owned, from the pod watch's decoder or from a `Pod`) and are
//! kept in the [`PodCache`] as [`CachedPod`]s, whose repeated strings and toleration lists come
//! from the cache's own [`Interner`]. Decisions never see these types: they read pods as
//! `logic::pod::PodFacts` through [`CachedPod::facts`].

mod interner;
mod pod;
mod pods;

pub use interner::Interner;
pub use pod::{CachedPod, Text, WatchedCondition, WatchedPod, WatchedToleration, text};
pub(crate) use pod::{Uid, version_of};
pub use pods::PodCache;
