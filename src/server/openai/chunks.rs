//! What both streaming endpoints share: the fields every chunk repeats,
//! submitting with errors reported in-stream, and the stream's end.

use super::usage_json;
use crate::engine::{GenerateRequest, RequestStream};
use crate::server::error::ApiError;
use crate::server::sse;
use crate::server::state::ServedModel;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc::Sender;

pub struct ChunkHeader {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub fingerprint: String,
}

impl ChunkHeader {
    pub fn new(model: &ServedModel, id: String, object: &'static str) -> Self {
        ChunkHeader {
            id,
            object,
            created: super::now_unix(),
            model: model.name().to_owned(),
            fingerprint: model.fingerprint.clone(),
        }
    }

    /// A chunk with one choice.
    pub fn chunk(&self, choice: Value) -> Value {
        self.with(json!([choice]), None)
    }

    fn with(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        });
        if let (Some(u), Some(obj)) = (usage, v.as_object_mut()) {
            obj.insert("usage".into(), u);
        }
        v
    }

    /// The stream's end: a usage chunk when asked for, then `[DONE]`.
    pub async fn finish(&self, tx: &Sender<Bytes>, usage: Option<(usize, usize)>) {
        if let Some((prompt, completion)) = usage {
            let last = self.with(json!([]), Some(usage_json(prompt, completion)));
            if tx.send(sse::event(&last)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(sse::done()).await;
    }
}

/// Submits, or reports the refusal as an error event; None means stop.
pub async fn submit(
    model: &ServedModel,
    request: GenerateRequest,
    tx: &Sender<Bytes>,
) -> Option<RequestStream> {
    match model.engine.submit(request) {
        Ok(s) => Some(s),
        Err(e) => {
            report(tx, ApiError::from(e)).await;
            None
        }
    }
}

/// An error in the middle of a stream, as an event in OpenAI's envelope.
pub async fn report(tx: &Sender<Bytes>, e: ApiError) {
    let _ = tx.send(sse::event(&e.envelope())).await;
}
