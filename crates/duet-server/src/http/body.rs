//! Deadlines on request bodies, as layers on a router: [`min_rate`] for uploads (at least N bytes in
//! every window of T, so a body of 100 MB may take its time but may not stall), [`deadline`] for REST
//! bodies (at most 1 MiB: the whole body within T). A body that misses its deadline ends with a
//! [`TooSlow`] error, which the handler reading it sees as a failed read ([`is_too_slow`] tells it
//! apart); the handler's answer then closes the connection, as hyper does when a body is left unread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a body cut off by its deadline ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub(crate) struct TooSlow;

/// Whether `e`, or an error it wraps, is [`TooSlow`].
pub(crate) fn is_too_slow(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<TooSlow>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps: look at that one too.
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && is_too_slow(inner)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// `router` with each request's body wrapped in a [`MinRate`]: at least `min_bytes` in every `window`,
/// counted from the first read of the body.
pub(crate) fn min_rate(router: Router, min_bytes: u64, window: Duration) -> Router {
    router.layer(axum::middleware::map_request(move |request: Request| {
        std::future::ready(
            request
                .map(|inner| Body::new(MinRate { inner, min_bytes, window, timer: None, received: 0, failed: false })),
        )
    }))
}

/// `router` with each request's body wrapped in a [`Deadline`]: the whole body within `after` of the
/// request's headers.
pub(crate) fn deadline(router: Router, after: Duration) -> Router {
    router.layer(axum::middleware::map_request(move |request: Request| {
        std::future::ready(
            request
                .map(|inner| Body::new(Deadline { inner, timer: Box::pin(tokio::time::sleep(after)), failed: false })),
        )
    }))
}

/// A body that must bring `min_bytes` in every `window`; the last, incomplete window is free.
struct MinRate {
    inner: Body,
    min_bytes: u64,
    window: Duration,
    /// The end of the current window, from the first poll.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes received in the current window.
    received: u64,
    failed: bool,
}

impl MinRate {
    /// Closes the current window: an error if it brought too little, else a new window.
    fn roll(&mut self) -> Result<(), axum::Error> {
        if self.received < self.min_bytes {
            self.failed = true;
            tracing::debug!(received = self.received, window = ?self.window, "upload body too slow; cut off");
            return Err(axum::Error::new(TooSlow));
        }
        self.received = 0;
        if let Some(timer) = &mut self.timer {
            timer.as_mut().reset(Instant::now() + self.window);
        }
        Ok(())
    }
}

impl HttpBody for MinRate {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let window = this.window;
        this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(window)));
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        this.received += data.len() as u64;
                    }
                    if this.timer.as_ref().is_some_and(|t| t.is_elapsed())
                        && let Err(e) = this.roll()
                    {
                        return Poll::Ready(Some(Err(e)));
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(other) => return Poll::Ready(other),
                Poll::Pending => {}
            }
            let Some(timer) = &mut this.timer else { return Poll::Pending };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Err(e) = this.roll() {
                return Poll::Ready(Some(Err(e)));
            }
            // A new window: poll again so that its timer is registered.
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body that must arrive whole before its timer ends.
struct Deadline {
    inner: Body,
    timer: Pin<Box<Sleep>>,
    failed: bool,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        if this.inner.is_end_stream() {
            return Pin::new(&mut this.inner).poll_frame(cx);
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            this.failed = true;
            tracing::debug!("request body not received in time; cut off");
            return Poll::Ready(Some(Err(axum::Error::new(TooSlow))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    const WINDOW: Duration = Duration::from_millis(300);

    /// A body fed by the test, a chunk per item sent; pending while nothing is sent.
    fn fed() -> (tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>, Body) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        (tx, Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))))
    }

    fn min_rate_body(inner: Body) -> axum::body::BodyDataStream {
        Body::new(MinRate { inner, min_bytes: 100, window: WINDOW, timer: None, received: 0, failed: false })
            .into_data_stream()
    }

    #[tokio::test]
    async fn a_body_slower_than_the_minimum_rate_is_cut_at_the_end_of_its_window() {
        // 50 bytes, then nothing: cut when the first window ends.
        let (tx, body) = fed();
        let mut stream = min_rate_body(body);
        let started = Instant::now();
        tx.send(Ok(Bytes::from(vec![0; 50]))).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 50);
        let e = stream.next().await.unwrap().unwrap_err();
        assert!(is_too_slow(&e), "{e}");
        assert!(started.elapsed() >= WINDOW, "not before the window ends");
        assert!(stream.next().await.is_none(), "nothing after the error");

        // 150 bytes, then nothing: the first window brought enough, the second brings nothing.
        let (tx, body) = fed();
        let mut stream = min_rate_body(body);
        let started = Instant::now();
        tx.send(Ok(Bytes::from(vec![0; 150]))).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 150);
        let e = stream.next().await.unwrap().unwrap_err();
        assert!(is_too_slow(&e), "{e}");
        assert!(started.elapsed() >= 2 * WINDOW, "cut when the second window ends");
    }

    #[tokio::test]
    async fn a_body_that_ends_within_its_window_is_never_cut() {
        let (tx, body) = fed();
        let mut stream = min_rate_body(body);
        tx.send(Ok(Bytes::from_static(b"tiny"))).await.unwrap();
        drop(tx);
        assert_eq!(stream.next().await.unwrap().unwrap().as_ref(), b"tiny");
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_body_past_its_deadline_is_cut() {
        let (tx, body) = fed();
        let timer = Box::pin(tokio::time::sleep(WINDOW));
        let mut stream = Body::new(Deadline { inner: body, timer, failed: false }).into_data_stream();
        tx.send(Ok(Bytes::from_static(b"{"))).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap().as_ref(), b"{");
        let e = stream.next().await.unwrap().unwrap_err();
        assert!(is_too_slow(&e), "{e}");
        let wrapped = std::io::Error::other(e);
        assert!(is_too_slow(&wrapped), "seen through an io::Error too");
        assert!(!is_too_slow(&std::io::Error::other("reset")));
    }
}
