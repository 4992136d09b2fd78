//! The engine's public face: a cloneable handle that takes requests and
//! gives back a stream of events. Dropping the stream cancels the request.
//! Behind it runs the continuous-batching engine thread.

use super::error::EngineError;
use super::request::{Event, GenerateRequest, SamplingParams};
use super::stats::{EngineSnapshot, EngineStats};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub(crate) struct Job {
    pub request: GenerateRequest,
    pub events: UnboundedSender<Result<Event, EngineError>>,
    /// Holds the request's place in the queue until the engine drops the
    /// job (finished, failed or cancelled).
    pub _admission: Admission,
}

/// One admitted request, counted until dropped.
pub(crate) struct Admission(Arc<AtomicUsize>);

#[cfg(test)]
impl Admission {
    /// A place counted nowhere, for driving an engine without a handle.
    pub(crate) fn unmetered() -> Self {
        Admission(Arc::new(AtomicUsize::new(1)))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Facts about the loaded model that callers need before submitting.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    pub context_length: usize,
    pub vocab_size: usize,
    pub backend: String,
    /// Sequences that run at once; more wait in the queue.
    pub max_num_seqs: usize,
    /// Token positions the whole KV cache holds.
    pub kv_tokens: usize,
}

impl EngineInfo {
    /// Whether a request can run here: a prompt of known tokens, a bias
    /// on known tokens, and prompt plus `max_tokens` within the context
    /// window and the whole KV cache. Validation asks before it admits a
    /// request; `submit` holds to the same rule.
    pub fn check(&self, prompt: &[u32], params: &SamplingParams) -> Result<(), EngineError> {
        let vocab = self.vocab_size;
        if let Some(&id) = prompt.iter().find(|&&id| id as usize >= vocab) {
            return Err(EngineError::TokenOutOfRange { id, vocab });
        }
        let prompt = prompt.len();
        if prompt == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        let bias = &params.penalties.logit_bias;
        if let Some(&(id, _)) = bias.iter().find(|&&(id, _)| id as usize >= vocab) {
            return Err(EngineError::BiasOutOfRange { id, vocab });
        }
        let max_tokens = params.max_tokens;
        let needed = prompt.saturating_add(max_tokens);
        if needed > self.context_length {
            return Err(EngineError::ContextOverflow {
                context: self.context_length,
                prompt,
                max_tokens,
            });
        }
        if needed > self.kv_tokens {
            return Err(EngineError::LargerThanCache {
                needed,
                capacity: self.kv_tokens,
            });
        }
        Ok(())
    }

    /// Token positions a request may use: the context window, or the
    /// whole KV cache if that is smaller.
    pub fn window(&self) -> usize {
        self.context_length.min(self.kv_tokens)
    }
}

/// See [`EngineHandle::exit_watch`].
pub struct EngineExit(Arc<AtomicBool>);

impl EngineExit {
    /// True once the engine thread has returned its memory and stopped.
    pub fn has_exited(&self) -> bool {
        !self.0.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Job>,
    alive: Arc<AtomicBool>,
    /// Steps only while no foreground engine has work (a shadow).
    background: Arc<AtomicBool>,
    info: Arc<EngineInfo>,
    /// Requests admitted and not yet done: running plus waiting.
    admitted: Arc<AtomicUsize>,
    /// The most requests that may wait behind the running ones.
    max_waiting: usize,
    stats: Arc<EngineStats>,
}

impl EngineHandle {
    pub(crate) fn new(
        jobs: mpsc::Sender<Job>,
        alive: Arc<AtomicBool>,
        background: Arc<AtomicBool>,
        info: EngineInfo,
        max_waiting: usize,
        stats: Arc<EngineStats>,
    ) -> Self {
        EngineHandle {
            jobs,
            alive,
            background,
            info: Arc::new(info),
            admitted: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            stats,
        }
    }

    /// The engine's state after its latest step.
    pub fn stats(&self) -> EngineSnapshot {
        self.stats.snapshot()
    }

    /// Requests admitted and not yet done (running and waiting).
    pub fn load(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Takes a place in the queue, or says the queue is full.
    fn admit(&self) -> Result<Admission, EngineError> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(self.admitted.clone());
        if before >= self.capacity() {
            return Err(self.full());
        }
        Ok(admission)
    }

    fn capacity(&self) -> usize {
        self.info.max_num_seqs.saturating_add(self.max_waiting)
    }

    fn full(&self) -> EngineError {
        EngineError::QueueFull {
            running: self.info.max_num_seqs,
            waiting: self.max_waiting,
            // A request's duration is unknown before it runs; one second is
            // a short, honest back-off for clients to start from.
            retry_after_s: 1,
        }
    }

    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// False once the engine thread has exited (it only does on a bug).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// A background engine runs only in the foreground engines' idle time:
    /// for a shadow version, whose answers nobody waits for.
    pub fn set_background(&self, background: bool) {
        self.background.store(background, Ordering::Release);
    }

    /// Watches the engine thread without keeping it alive: the thread ends
    /// once every handle is dropped and its requests are done.
    pub fn exit_watch(&self) -> EngineExit {
        EngineExit(self.alive.clone())
    }

    /// Checks the request against the model (`EngineInfo::check`) and
    /// queues it.
    pub fn submit(&self, request: GenerateRequest) -> Result<RequestStream, EngineError> {
        self.info.check(&request.prompt, &request.params)?;
        let admission = self.admit()?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.jobs
            .send(Job {
                request,
                events: tx,
                _admission: admission,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SamplingParams;

    fn request() -> GenerateRequest {
        GenerateRequest {
            prompt: vec![1, 2, 3],
            params: SamplingParams {
                max_tokens: 4,
                ..SamplingParams::default()
            },
            priority: 0,
        }
    }

    /// A handle whose jobs nobody runs: the test holds them, so what is
    /// admitted stays admitted until the test drops it.
    fn handle(max_waiting: usize) -> (EngineHandle, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel();
        let info = EngineInfo {
            context_length: 64,
            vocab_size: 16,
            backend: "none".into(),
            max_num_seqs: 1,
            kv_tokens: 32,
        };
        let stats = Arc::new(EngineStats::default());
        let h = EngineHandle::new(
            tx,
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicBool::new(false)),
            info,
            max_waiting,
            stats,
        );
        (h, rx)
    }

    #[test]
    fn the_queue_refuses_past_its_bound_and_frees_places_as_jobs_end() {
        let (h, jobs) = handle(2);
        let held: Vec<RequestStream> = (0..3).map(|_| h.submit(request()).unwrap()).collect();
        assert_eq!(h.load(), 3);
        let e = h.submit(request()).err().unwrap();
        assert!(
            matches!(
                e,
                EngineError::QueueFull {
                    running: 1,
                    waiting: 2,
                    ..
                }
            ),
            "{e}"
        );
        // A refused request holds no place.
        assert_eq!(h.load(), 3);
        // The engine finishing one job (dropping it) frees its place; a
        // client that merely stops listening does not, until then.
        drop(held);
        assert_eq!(h.load(), 3);
        drop(jobs.recv().unwrap());
        assert_eq!(h.load(), 2);
        assert!(h.submit(request()).is_ok());
    }

    #[test]
    fn an_invalid_request_takes_no_place() {
        let (h, _jobs) = handle(0);
        let mut bad = request();
        bad.prompt = vec![99];
        assert!(h.submit(bad).is_err());
        let mut huge = request();
        huge.params.max_tokens = 40;
        let e = h.submit(huge).err().unwrap();
        assert!(
            matches!(
                e,
                EngineError::LargerThanCache {
                    needed: 43,
                    capacity: 32
                }
            ),
            "{e}"
        );
        assert_eq!(h.load(), 0);
    }
}
