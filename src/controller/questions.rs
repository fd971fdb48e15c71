//! Questions to the control loop (`status`, `explain`), from the admin port's `/debug/explain`.
//!
//! The loop answers them between two events, from the very state it decides with: nothing is
//! copied or published while nobody asks (no steady-state cost), and an answer cannot lag the
//! decisions. The loop only builds the answer; it is serialised by the asker.

use crate::cache::PodCache;
use crate::logic::eviction::TaintManager;
use crate::logic::explain::gather::{self, Sources};
use crate::logic::explain::{
    Controller, Envelope, NodeReport, PodReport, Role, Source, StatusReport, ZoneReport,
};
use crate::logic::freshness::Guard;
use crate::logic::monitor::Monitor;
use crate::logic::view::ClusterView;
use crate::settings::Settings;
use jiff::Timestamp;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Questions waiting for the loop at most; more are refused as busy rather than queued.
const WAITING: usize = 16;

/// What is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Zones, notable nodes, and the deletions due within `horizon`.
    Status {
        horizon: Duration,
    },
    Pod {
        namespace: String,
        name: String,
    },
    Node {
        name: String,
    },
    /// A zone as `status` shows it (`zone` or `region/zone`).
    Zone {
        name: String,
    },
}

/// The loop's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Status(Envelope<StatusReport>),
    Pod(Envelope<PodReport>),
    Node(Envelope<NodeReport>),
    Zone(Envelope<ZoneReport>),
}

impl Answer {
    /// The answer as the schema's JSON, and whether it found what was asked about.
    pub fn to_json(&self) -> (String, bool) {
        let (json, found) = match self {
            Answer::Status(a) => (serde_json::to_string_pretty(a), true),
            Answer::Pod(a) => (serde_json::to_string_pretty(a), a.answer.pod.is_some()),
            Answer::Node(a) => (serde_json::to_string_pretty(a), a.answer.node.is_some()),
            Answer::Zone(a) => (serde_json::to_string_pretty(a), a.answer.zone.is_some()),
        };
        // Plain data of strings, numbers and timestamps: serialising it cannot fail.
        (json.unwrap_or_default() + "\n", found)
    }
}

pub struct Question {
    pub ask: Ask,
    pub reply: oneshot::Sender<Answer>,
}

/// A question got no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AskError {
    #[error("the controller has {WAITING} questions waiting already; ask again")]
    Busy,
    #[error("the control loop is not running")]
    Gone,
}

/// The asking end (cloned by every admin connection).
#[derive(Clone)]
pub struct Questions {
    tx: mpsc::Sender<Question>,
}

impl Questions {
    pub async fn ask(&self, ask: Ask) -> Result<Answer, AskError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Question { ask, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AskError::Busy,
                mpsc::error::TrySendError::Closed(_) => AskError::Gone,
            })?;
        answer.await.map_err(|_| AskError::Gone)
    }
}

/// The loop's end: the questions, and who holds the election Lease (for a standby's answer).
pub struct Inbox {
    pub questions: mpsc::Receiver<Question>,
    pub holder: watch::Receiver<Option<String>>,
}

/// A question channel; the holder is filled in by the leader election (`controller::run`).
pub fn channel() -> (Questions, mpsc::Receiver<Question>) {
    let (tx, rx) = mpsc::channel(WAITING);
    (Questions { tx }, rx)
}

/// What the loop answers from.
pub struct Memory<'a> {
    pub view: &'a ClusterView<PodCache>,
    pub monitor: &'a Monitor,
    pub taint_manager: &'a TaintManager,
    pub settings: &'a Settings,
    pub guard: &'a Guard,
    /// The last monitor pass's verdict on the heartbeat data.
    pub trusted: bool,
    pub role: Role,
}

fn wrap<T>((source, now, c): (Source, Timestamp, Controller), answer: T) -> Envelope<T> {
    Envelope::new(source, now, c, answer)
}

/// The answer to `ask` at `now`.
pub fn answer(ask: &Ask, m: &Memory, now: Timestamp) -> Answer {
    let c = gather::controller(m.role.clone(), m.settings, m.guard, m.trusted, m.monitor);
    let sources = Sources {
        view: m.view,
        monitor: m.monitor,
        taint_manager: m.taint_manager,
        controller: &c,
    };
    let live = |c: &Controller| (Source::Live, now, c.clone());
    match ask {
        Ask::Status { horizon } => Answer::Status(wrap(live(&c), sources.status(now, *horizon))),
        Ask::Pod { namespace, name } => {
            let key = crate::logic::pod::key_of(Some(namespace), name);
            let facts = m.view.pods.get(&key).map(|p| p.facts());
            Answer::Pod(wrap(live(&c), sources.pod(facts.as_ref(), now)))
        }
        Ask::Node { name } => Answer::Node(wrap(live(&c), sources.node(name, now))),
        Ask::Zone { name } => Answer::Zone(wrap(live(&c), sources.zone(name, now))),
    }
}
