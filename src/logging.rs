//! Log output: plain text (coloured only on a terminal, never with `NO_COLOR` set), or JSON
//! lines with the keys of Kubernetes components' `--logging-format=json`, so that a log
//! pipeline parsing kube-controller-manager's logs parses ours too.
//!
//! A JSON line carries `ts` (seconds since the epoch, a float), `caller` (`file:line`), `msg`,
//! `v` (the verbosity: 0 for info, 4 for debug, 6 for trace; absent on warnings and errors, as
//! on klog's error lines), `level` on warnings and errors (`warning`, `error`), `err` for an
//! error value, and every other field of the event and its spans (`node`, `pod`, `zone`, ...)
//! as a top-level key.

use serde_json::{Map, Value};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether text logs may carry ANSI colour codes: only on a terminal, and not when `NO_COLOR`
/// is set to anything non-empty (<https://no-color.org>).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber: `filter` as `RUST_LOG` reads, `json` for JSON lines.
pub fn init(filter: &str, json: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(KlogJson)
            .init();
    } else {
        let ansi = colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        builder.with_ansi(ansi).init();
    }
}

/// The JSON line format described in the module documentation.
pub struct KlogJson;

impl<S, N> FormatEvent<S, N> for KlogJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let mut line = Map::new();
        line.insert("ts".into(), Value::from((ts * 1e6).round() / 1e6));
        let meta = event.metadata();
        let file = meta.file().unwrap_or(meta.target());
        let file = file.rsplit('/').next().unwrap_or(file);
        let caller = match meta.line() {
            Some(l) => format!("{file}:{l}"),
            None => file.to_string(),
        };
        line.insert("caller".into(), Value::from(caller));
        line.insert("msg".into(), Value::from(""));
        match *meta.level() {
            Level::ERROR => {
                line.insert("level".into(), Value::from("error"));
            }
            Level::WARN => {
                line.insert("level".into(), Value::from("warning"));
            }
            Level::INFO => {
                line.insert("v".into(), Value::from(0));
            }
            Level::DEBUG => {
                line.insert("v".into(), Value::from(4));
            }
            Level::TRACE => {
                line.insert("v".into(), Value::from(6));
            }
        }
        // Span fields first (outermost first), so the event's own fields win on a clash.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields)
                {
                    for (k, v) in map {
                        line.insert(rename(&k).to_string(), v);
                    }
                }
            }
        }
        event.record(&mut Fields(&mut line));
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Our field names where klog's differ.
fn rename(field: &str) -> &str {
    match field {
        "message" => "msg",
        "error" => "err",
        other => other,
    }
}

/// Collects an event's fields into the line.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(rename(field.name()).to_string(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color_set() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some(OsStr::new("1"))));
        // An empty NO_COLOR does not count (as the convention says).
        assert!(colour(true, Some(OsStr::new(""))));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(log: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_writer(move || out.clone())
            .fmt_fields(JsonFields::new())
            .event_format(KlogJson)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn json_lines_carry_klogs_keys_and_the_fields_at_the_top_level() {
        let out = lines(|| {
            let span = tracing::info_span!("writer", object = "Node/a-1");
            let _entered = span.enter();
            tracing::info!(node = "a-1", added = "k:NoExecute", "changed node taints");
        });
        let line = &out[0];
        assert!(line["ts"].as_f64().is_some_and(|t| t > 1.7e9), "{line}");
        assert!(
            line["caller"]
                .as_str()
                .is_some_and(|c| c.starts_with("logging.rs:")),
            "{line}"
        );
        assert_eq!(line["msg"], "changed node taints");
        assert_eq!(line["v"], 0);
        assert_eq!(line["node"], "a-1");
        assert_eq!(line["added"], "k:NoExecute");
        assert_eq!(line["object"], "Node/a-1", "span fields too: {line}");
        assert!(line.get("level").is_none());
    }

    #[test]
    fn errors_have_err_and_a_level_and_no_verbosity() {
        let out = lines(|| {
            let e = std::io::Error::other("connection refused");
            tracing::warn!(error = %e, "write failed, will retry");
            tracing::error!("suspected misconfiguration");
            tracing::debug!("detail");
        });
        assert_eq!(out[0]["err"], "connection refused");
        assert_eq!(out[0]["level"], "warning");
        assert!(out[0].get("v").is_none());
        assert_eq!(out[1]["level"], "error");
        assert_eq!(out[2]["v"], 4);
    }
}
