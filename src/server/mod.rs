//! HTTP: the accept loop (`listen`), the route table and the router, the
//! caller's checks, the OpenAI handlers and the admin API, and the error
//! envelope. The only room that knows about HTTP.

mod admin;
mod auth;
mod body;
mod context;
pub mod error;
mod idle;
mod invalid;
mod listen;
mod metrics_listener;
pub mod openai;
mod prep;
mod reply;
mod router;
mod routes;
mod sse;
pub mod state;
pub mod tls;

pub use listen::{serve, Listen, ShutdownPolicy};
pub use metrics_listener::serve_metrics;
pub use state::{AppState, ServedModel};
pub use tls::{Tls, TlsFiles};
