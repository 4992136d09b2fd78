//! The engine's public face: a cloneable handle that takes requests and
//! gives back a stream of events. Dropping the stream cancels the request.
//! Whatever runs behind the handle (one request at a time today, the
//! continuous-batching scheduler later) keeps this interface.

use super::error::EngineError;
use super::request::{Event, GenerateRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub(crate) struct Job {
    pub request: GenerateRequest,
    pub events: UnboundedSender<Result<Event, EngineError>>,
}

/// Facts about the loaded model that callers need before submitting.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    pub context_length: usize,
    pub vocab_size: usize,
    pub backend: String,
}

#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Job>,
    alive: Arc<AtomicBool>,
    info: Arc<EngineInfo>,
}

impl EngineHandle {
    pub(crate) fn new(jobs: mpsc::Sender<Job>, alive: Arc<AtomicBool>, info: EngineInfo) -> Self {
        EngineHandle {
            jobs,
            alive,
            info: Arc::new(info),
        }
    }

    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// False once the engine thread has exited (it only does on a bug).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Validates the request against the model and queues it.
    pub fn submit(&self, request: GenerateRequest) -> Result<RequestStream, EngineError> {
        let prompt = request.prompt.len();
        if prompt == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        let vocab = self.info.vocab_size;
        if let Some(&id) = request.prompt.iter().find(|&&id| id as usize >= vocab) {
            return Err(EngineError::TokenOutOfRange { id, vocab });
        }
        let bias = &request.params.penalties.logit_bias;
        if let Some(&(id, _)) = bias.iter().find(|&&(id, _)| id as usize >= vocab) {
            return Err(EngineError::BiasOutOfRange { id, vocab });
        }
        let context = self.info.context_length;
        if prompt + request.params.max_tokens > context {
            return Err(EngineError::ContextOverflow {
                context,
                prompt,
                max_tokens: request.params.max_tokens,
            });
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.jobs
            .send(Job {
                request,
                events: tx,
            })
            .map_err(|_| EngineError::Stopped)?;
        Ok(RequestStream { events: rx })
    }
}

/// The events of one request. Dropping it cancels the request: the engine
/// notices at its next step and frees what the request held.
pub struct RequestStream {
    events: UnboundedReceiver<Result<Event, EngineError>>,
}

impl RequestStream {
    /// The next event; None after `Finished` or if the engine died.
    pub async fn next(&mut self) -> Option<Result<Event, EngineError>> {
        self.events.recv().await
    }

    /// For callers outside an async runtime (the CLI).
    pub fn blocking_next(&mut self) -> Option<Result<Event, EngineError>> {
        self.events.blocking_recv()
    }
}
