//! [`ReplayBody`]: a request body that can be sent again.
//!
//! The first attempt streams the caller's body through as it arrives while
//! keeping a copy of up to a bound (64 KiB by default). A retry replays the
//! copy and then continues with whatever the caller has not sent yet, so a
//! retry works even when an attempt failed half-way through the body. A body
//! that outgrows the bound drops its copy and can no longer be replayed: it is
//! sent once.
//!
//! Empty bodies (every GET) take a path with no shared state at all.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;

/// A request body that a retry can send again.
#[derive(Debug)]
pub struct ReplayBody<B>(Inner<B>);

#[derive(Debug)]
enum Inner<B> {
    Empty,
    /// Sent once, never replayed: no copy is kept.
    Once(B),
    Shared {
        shared: Arc<Mutex<Shared<B>>>,
        /// Which attempt this clone belongs to; only the newest may be read.
        attempt: u32,
        /// Data frames of the copy this clone has already sent.
        sent: usize,
        trailers_sent: bool,
    },
}

#[derive(Debug)]
struct Shared<B> {
    /// The caller's body, until it ends.
    rest: Option<B>,
    copy: VecDeque<Bytes>,
    copied_bytes: usize,
    max_bytes: usize,
    /// Data frames taken from `rest` so far.
    frames: usize,
    overflowed: bool,
    failed: bool,
    trailers: Option<HeaderMap>,
    attempt: u32,
    size_hint: SizeHint,
}

/// Why a replayed body cannot be read.
#[derive(Debug, thiserror::Error)]
enum ReplayError {
    #[error("the request body is being sent again by a newer attempt")]
    Superseded,
    #[error("the request body outgrew the replay buffer and cannot be sent again")]
    Overflowed,
}

impl<B> ReplayBody<B>
where
    B: Body<Data = Bytes>,
{
    /// Wraps `body`, keeping a copy of up to `max_bytes` for replays.
    pub fn new(body: B, max_bytes: usize) -> Self {
        if body.is_end_stream() {
            return Self(Inner::Empty);
        }
        let size_hint = body.size_hint();
        Self(Inner::Shared {
            shared: Arc::new(Mutex::new(Shared {
                rest: Some(body),
                copy: VecDeque::new(),
                copied_bytes: 0,
                max_bytes,
                frames: 0,
                overflowed: false,
                failed: false,
                trailers: None,
                attempt: 0,
                size_hint,
            })),
            attempt: 0,
            sent: 0,
            trailers_sent: false,
        })
    }
}

impl<B> ReplayBody<B> {
    /// Wraps `body` to be sent once, keeping no copy.
    pub fn once(body: B) -> Self {
        Self(Inner::Once(body))
    }

    /// Whether the body can still be sent again from its start.
    pub fn is_replayable(&self) -> bool {
        match &self.0 {
            Inner::Empty => true,
            Inner::Once(_) => false,
            Inner::Shared { shared, .. } => {
                let s = lock(shared);
                !s.overflowed && !s.failed
            }
        }
    }

    /// A body for the next attempt, which makes every earlier one stale.
    /// `None` when the body cannot be replayed.
    pub fn replay(&self) -> Option<Self> {
        match &self.0 {
            Inner::Empty => Some(Self(Inner::Empty)),
            Inner::Once(_) => None,
            Inner::Shared { shared, .. } => {
                let mut s = lock(shared);
                if s.overflowed || s.failed {
                    return None;
                }
                s.attempt += 1;
                Some(Self(Inner::Shared {
                    shared: shared.clone(),
                    attempt: s.attempt,
                    sent: 0,
                    trailers_sent: false,
                }))
            }
        }
    }
}

fn lock<B>(m: &Mutex<Shared<B>>) -> std::sync::MutexGuard<'_, Shared<B>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let (shared, attempt, sent, trailers_sent) = match &mut self.get_mut().0 {
            Inner::Empty => return Poll::Ready(None),
            Inner::Once(body) => return Pin::new(body).poll_frame(cx).map_err(Into::into),
            Inner::Shared {
                shared,
                attempt,
                sent,
                trailers_sent,
            } => (shared, attempt, sent, trailers_sent),
        };
        let mut s = lock(shared);
        if s.attempt != *attempt {
            return Poll::Ready(Some(Err(ReplayError::Superseded.into())));
        }
        // Replay what the copy holds.
        if *sent < s.frames {
            if s.overflowed {
                return Poll::Ready(Some(Err(ReplayError::Overflowed.into())));
            }
            let chunk = s.copy[*sent].clone();
            *sent += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        // Then continue with the caller's body.
        if let Some(rest) = s.rest.as_mut() {
            return match Pin::new(rest).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => {
                    s.rest = None;
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Err(e))) => {
                    s.failed = true;
                    s.rest = None;
                    Poll::Ready(Some(Err(e.into())))
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let frame = match frame.into_data() {
                        Ok(data) => {
                            s.frames += 1;
                            *sent += 1;
                            if !s.overflowed {
                                s.copied_bytes += data.len();
                                if s.copied_bytes > s.max_bytes {
                                    s.overflowed = true;
                                    s.copy = VecDeque::new();
                                } else {
                                    s.copy.push_back(data.clone());
                                }
                            }
                            Frame::data(data)
                        }
                        Err(frame) => {
                            if let Some(t) = frame.trailers_ref() {
                                s.trailers = Some(t.clone());
                                *trailers_sent = true;
                            }
                            frame
                        }
                    };
                    Poll::Ready(Some(Ok(frame)))
                }
            };
        }
        // The caller's body has ended: replay its trailers.
        if !*trailers_sent && let Some(t) = s.trailers.clone() {
            *trailers_sent = true;
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Empty => true,
            Inner::Once(body) => body.is_end_stream(),
            Inner::Shared {
                shared,
                sent,
                trailers_sent,
                ..
            } => {
                let s = lock(shared);
                s.rest.is_none() && *sent >= s.frames && (*trailers_sent || s.trailers.is_none())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Once(body) => body.size_hint(),
            Inner::Shared { shared, .. } => lock(shared).size_hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    async fn read<B>(body: ReplayBody<B>) -> Result<Bytes, BoxError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        Ok(body.collect().await?.to_bytes())
    }

    fn chunks(
        parts: &[&'static str],
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Unpin>
    {
        let frames: Vec<_> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn replays_a_small_body() {
        let body = ReplayBody::new(chunks(&["hello ", "world"]), 64);
        let again = body.replay().unwrap();
        assert_eq!(read(again).await.unwrap(), "hello world");
        let third = body.replay().unwrap();
        assert_eq!(read(third).await.unwrap(), "hello world");
    }

    #[tokio::test]
    async fn a_retry_continues_a_half_sent_body() {
        let mut first = ReplayBody::new(chunks(&["a", "b", "c"]), 64);
        let frame = first.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "a");
        let second = first.replay().unwrap();
        assert!(
            first.frame().await.unwrap().is_err(),
            "the first attempt is superseded"
        );
        assert_eq!(read(second).await.unwrap(), "abc");
    }

    #[tokio::test]
    async fn a_large_body_is_sent_once() {
        let first = ReplayBody::new(chunks(&["0123456789", "0123456789"]), 15);
        assert!(first.is_replayable());
        assert_eq!(read(first.replay().unwrap()).await.unwrap().len(), 20);
        assert!(!first.is_replayable());
        assert!(first.replay().is_none());
        let once = ReplayBody::once(Full::new(Bytes::from_static(b"x")));
        assert!(!once.is_replayable());
        assert_eq!(read(once).await.unwrap(), "x");
    }

    #[tokio::test]
    async fn empty_bodies_need_no_copy() {
        let body = ReplayBody::new(http_body_util::Empty::<Bytes>::new(), 64);
        assert!(body.is_end_stream());
        assert!(matches!(body.0, Inner::Empty));
        assert_eq!(read(body.replay().unwrap()).await.unwrap(), "");
    }

    #[tokio::test]
    async fn trailers_are_replayed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let body = http_body_util::Full::new(Bytes::from_static(b"x")).with_trailers(
            std::future::ready(Some(Ok::<_, std::convert::Infallible>(trailers))),
        );
        let body = ReplayBody::new(body, 64);
        let first = body.replay().unwrap();
        let collected = first.collect().await.unwrap();
        assert!(collected.trailers().is_some());
        let second = body.replay().unwrap().collect().await.unwrap();
        assert_eq!(second.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(second.to_bytes(), "x");
    }
}
