//! Logging. Request spans record the method, the route and the path, never the query string: BigCommerce's
//! callbacks carry signed tokens and one-time codes there.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::settings::LogFormat;

pub struct RedactingRootSpan;

/// A process-unique request id: a counter, so no random bytes (a syscall) are spent per request.
fn next_request_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl RootSpanBuilder for RedactingRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = request.match_pattern().unwrap_or_else(|| "unmatched".into()),
            http.path = %request.path(),
            http.status_code = tracing::field::Empty,
            request_id = next_request_id(),
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        if status.is_server_error() {
            // Our error types print a cause chain without secret values (see routes::errors).
            let error = outcome
                .as_ref()
                .ok()
                .and_then(|r| r.response().error().map(|e| format!("{e:?}")))
                .or_else(|| outcome.as_ref().err().map(|e| format!("{e:?}")));
            span.in_scope(|| {
                tracing::error!(
                    status = status.as_u16(),
                    error = error.as_deref().unwrap_or(""),
                    "request failed"
                )
            });
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the default filter.
pub fn init<W>(format: LogFormat, default_filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
