//! How `kube` errors map onto [`ApiError`]: by what the caller does about them.

use crate::cluster::ApiError;
use kube::core::Status;
use kube::runtime::watcher;

/// Maps a `kube::Error` to an [`ApiError`].
///
/// API statuses map by HTTP code: 409 `Conflict`, 404 `NotFound`, 429 `TooManyRequests`,
/// 403 `Forbidden`, 5xx `Unavailable`, any other code `Other`. A status without a code (0) is
/// judged by its `reason`. Transport failures (connection, TLS, reading a response) are
/// `Unavailable`; everything else (bad request building, undecodable responses, auth
/// configuration) is `Other`.
pub fn api_error(err: kube::Error) -> ApiError {
    match err {
        kube::Error::Api(status) => status_error(&status),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ApiError::Unavailable(err.to_string())
        }
        other => ApiError::Other(other.to_string()),
    }
}

/// Maps a watcher error (the watch resumes or re-lists by itself after a backoff): the
/// server's answers by their status (410 Gone, after a restart or a compaction, is not
/// `Unavailable`), a request that got no answer as `Unavailable`.
pub fn watch_error(err: watcher::Error) -> ApiError {
    match err {
        watcher::Error::WatchError(status) => status_error(&status),
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => api_error(e),
        other => ApiError::Other(other.to_string()),
    }
}

fn status_error(status: &Status) -> ApiError {
    let message = if status.message.is_empty() {
        format!("{} (HTTP {})", status.reason, status.code)
    } else {
        status.message.clone()
    };
    match status.code {
        409 => ApiError::Conflict(message),
        404 => ApiError::NotFound(message),
        429 => ApiError::TooManyRequests(message),
        403 => ApiError::Forbidden(message),
        500..=599 => ApiError::Unavailable(message),
        0 => match status.reason.as_str() {
            "Conflict" | "AlreadyExists" => ApiError::Conflict(message),
            "NotFound" => ApiError::NotFound(message),
            "TooManyRequests" => ApiError::TooManyRequests(message),
            "Forbidden" => ApiError::Forbidden(message),
            "InternalError" | "ServiceUnavailable" | "Timeout" | "ServerTimeout" => {
                ApiError::Unavailable(message)
            }
            _ => ApiError::Other(message),
        },
        _ => ApiError::Other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    #[test]
    fn a_watch_answered_gone_is_not_an_outage_but_one_that_got_no_answer_is() {
        let gone = Status::failure("too old resource version", "Expired").with_code(410);
        let expired = watch_error(watcher::Error::WatchError(gone.boxed()));
        assert_eq!(expired, ApiError::Other("too old resource version".into()));
        let refused = watch_error(watcher::Error::WatchFailed(api(503, "", "m")));
        assert_eq!(refused, ApiError::Unavailable("m".into()));
        let forbidden = watch_error(watcher::Error::WatchStartFailed(api(403, "", "m")));
        assert_eq!(forbidden, ApiError::Forbidden("m".into()));
    }

    #[test]
    fn status_codes_map_to_what_the_caller_does_about_them() {
        let cases = [
            (409, ApiError::Conflict("m".into())),
            (404, ApiError::NotFound("m".into())),
            (429, ApiError::TooManyRequests("m".into())),
            (403, ApiError::Forbidden("m".into())),
            (500, ApiError::Unavailable("m".into())),
            (503, ApiError::Unavailable("m".into())),
            (504, ApiError::Unavailable("m".into())),
            (400, ApiError::Other("m".into())),
            (410, ApiError::Other("m".into())),
            (422, ApiError::Other("m".into())),
        ];
        for (code, expected) in cases {
            assert_eq!(
                api_error(api(code, "Whatever", "m")),
                expected,
                "HTTP {code}"
            );
        }
    }

    #[test]
    fn a_status_without_a_code_is_judged_by_its_reason() {
        assert_eq!(
            api_error(api(0, "AlreadyExists", "m")),
            ApiError::Conflict("m".into())
        );
        assert_eq!(
            api_error(api(0, "NotFound", "m")),
            ApiError::NotFound("m".into())
        );
        assert_eq!(
            api_error(api(0, "ServiceUnavailable", "m")),
            ApiError::Unavailable("m".into())
        );
        assert_eq!(
            api_error(api(0, "BadRequest", "m")),
            ApiError::Other("m".into())
        );
    }

    #[test]
    fn an_empty_status_message_is_replaced_by_reason_and_code() {
        assert_eq!(
            api_error(api(409, "Conflict", "")),
            ApiError::Conflict("Conflict (HTTP 409)".into())
        );
    }

    #[test]
    fn transport_errors_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(
            matches!(api_error(kube::Error::Service(Box::new(io))), ApiError::Unavailable(m) if m.contains("refused"))
        );
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        assert!(matches!(
            api_error(kube::Error::ReadEvents(io)),
            ApiError::Unavailable(_)
        ));
    }

    #[test]
    fn undecodable_responses_are_other_with_the_message() {
        let serde = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(
            matches!(api_error(kube::Error::SerdeError(serde)), ApiError::Other(m) if m.contains("deserializing"))
        );
    }

    #[test]
    fn watcher_errors_keep_the_servers_answer_with_its_message() {
        let forbidden = watcher::Error::InitialListFailed(api(403, "Forbidden", "no list"));
        assert!(matches!(watch_error(forbidden), ApiError::Forbidden(m) if m.contains("no list")));
        assert!(matches!(
            watch_error(watcher::Error::NoResourceVersion),
            ApiError::Other(_)
        ));
    }
}
