//! KV memory as the engine manages it: blocks, who holds them, and which
//! full blocks can be shared through the prefix cache. The backend stores
//! the keys and values; this room only decides where.

mod key;
mod pool;

pub use key::{chain_keys, BlockKey};
pub use pool::{BlockId, BlockPool};
