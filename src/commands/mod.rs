//! The two commands, wired from their flags: `run` (the controller against a real cluster) and
//! `simulate` (a scenario against the simulated one, or `--serve`d to clients).

pub mod explain;
mod kubeconfig;
mod rbac;
pub mod run;
mod signals;
pub mod simulate;

/// The exit code of a usage error (a flag or a file the command line names is wrong).
pub const USAGE: u8 = 2;

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// before it already includes (kube's errors repeat their source in their own text).
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut next = Some(e);
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}
