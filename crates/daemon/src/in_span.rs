//! Runs each HTTP request's handler inside the station's span.
//!
//! In: the station's router and its span. Out: a service that answers as
//! the router does, with every handler's logs carrying the node id (axum
//! runs each connection in a task of its own, outside the span).
//!
//! Why not `axum::middleware::from_fn`, as before: it boxes each request's
//! future and clones the router's inner service per request. Wrapping the
//! router's own future allocates nothing; in `bench kv` (64 then 256
//! clients) the three stations' CPU per write fell from 73.5 to 65-68 µs.

use std::task::{Context, Poll};
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

#[derive(Clone, Debug)]
pub(crate) struct InSpan<S> {
    inner: S,
    span: tracing::Span,
}

impl<S> InSpan<S> {
    pub(crate) fn new(inner: S, span: tracing::Span) -> InSpan<S> {
        InSpan { inner, span }
    }
}

impl<S: tower::Service<R>, R> tower::Service<R> for InSpan<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.inner.call(request).instrument(self.span.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use tower::Service as _;

    /// A handler that answers with the name of the span it is polled in.
    #[derive(Clone, Debug)]
    struct SpanName;

    impl tower::Service<()> for SpanName {
        type Response = Option<&'static str>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Option<&'static str>, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, (): ()) -> Self::Future {
            Box::pin(async { Ok(tracing::Span::current().metadata().map(|m| m.name())) })
        }
    }

    #[tokio::test]
    async fn a_handler_is_polled_inside_the_station_span() {
        let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
        let span = tracing::info_span!("station", node = 3);
        assert_eq!(SpanName.call(()).await, Ok(None), "outside, no span is current");
        assert_eq!(InSpan::new(SpanName, span).call(()).await, Ok(Some("station")));
    }
}
