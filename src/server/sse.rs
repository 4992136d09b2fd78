//! Server-sent events: a response body fed by a channel, so a handler's
//! task can write `data:` events as tokens arrive. When the client goes
//! away the body is dropped, the channel closes, and the producing task
//! stops at its next send, which cancels the request in the engine.

use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde_json::Value;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Events buffered between the producer and a slow client.
pub const BUFFER: usize = 64;

pub struct SseBody {
    events: mpsc::Receiver<Bytes>,
}

impl SseBody {
    pub fn channel() -> (mpsc::Sender<Bytes>, SseBody) {
        let (tx, rx) = mpsc::channel(BUFFER);
        (tx, SseBody { events: rx })
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.events
            .poll_recv(cx)
            .map(|e| e.map(|b| Ok(Frame::data(b))))
    }
}

/// One `data:` event carrying JSON.
pub fn event(value: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    out.extend(serde_json::to_vec(value).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The terminator OpenAI clients wait for.
pub fn done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}
