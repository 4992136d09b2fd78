//! Iteration-level scheduling: before every step, decide which tokens of
//! which sequences the step computes. Decodes go first (one token each,
//! so running streams never stall), then chunks of prompts in prefill,
//! then new sequences from the waiting queue, all within one token budget.
//! When blocks run out, the running sequence that would run last (lowest
//! priority, latest arrival) is preempted: it gives its blocks back and
//! waits to be recomputed, keeping its place by arrival. The earliest
//! sequence is never the one preempted while another runs, so every
//! sequence eventually finishes; one sequence alone always fits, because
//! the engine refuses requests larger than the whole cache.
//!
//! Pure bookkeeping, no model: the engine runs the step the plan names.

mod sequence;
#[cfg(test)]
mod tests;

pub use sequence::{SeqId, Sequence};

use super::kv::{BlockKey, BlockPool};
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Copy, Debug)]
pub struct SchedulerConfig {
    /// Sequences running at once.
    pub max_num_seqs: usize,
    /// Tokens one step computes, over all its sequences.
    pub max_num_batched_tokens: usize,
    /// Reuse full blocks of earlier sequences with the same prefix.
    pub prefix_caching: bool,
}

/// A run of one sequence's tokens computed in a step: positions
/// `start..start + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub seq: SeqId,
    pub start: usize,
    pub len: usize,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Scheduled>,
    /// Sequences that lost their blocks this step (they wait again).
    pub preempted: Vec<SeqId>,
}

/// Prefix-cache lookups, in tokens (as vLLM counts them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub queried_tokens: u64,
    pub hit_tokens: u64,
}

pub struct Scheduler {
    config: SchedulerConfig,
    pool: BlockPool,
    seqs: HashMap<SeqId, Sequence>,
    /// (priority, arrival, id), first runs first.
    waiting: BTreeSet<(i32, u64, SeqId)>,
    running: Vec<SeqId>,
    arrivals: u64,
    stats: CacheStats,
    preemptions: u64,
}

impl Scheduler {
    pub fn new(config: SchedulerConfig, pool: BlockPool) -> Self {
        Scheduler {
            config,
            pool,
            seqs: HashMap::new(),
            waiting: BTreeSet::new(),
            running: Vec::new(),
            arrivals: 0,
            stats: CacheStats::default(),
            preemptions: 0,
        }
    }

    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_idle(&self) -> bool {
        self.seqs.is_empty()
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.stats
    }

    pub fn preemptions(&self) -> u64 {
        self.preemptions
    }

    pub fn get(&self, id: SeqId) -> Option<&Sequence> {
        self.seqs.get(&id)
    }

    /// Queues a new sequence. `reuses_cache: false` computes every prompt
    /// position itself (prompt logprobs need each position's logits).
    pub fn add(&mut self, id: SeqId, tokens: Vec<u32>, priority: i32, reuses_cache: bool) {
        let arrival = self.arrivals;
        self.arrivals += 1;
        self.seqs.insert(
            id,
            Sequence {
                id,
                priority,
                arrival,
                tokens,
                computed: 0,
                blocks: Vec::new(),
                keys: Vec::new(),
                published: 0,
                reuses_cache,
                preemptions: 0,
            },
        );
        self.waiting.insert((priority, arrival, id));
    }

    /// Plans the next step.
    pub fn schedule(&mut self) -> Plan {
        let mut plan = Plan::default();
        let mut budget = self.config.max_num_batched_tokens;
        let seqs = &self.seqs;
        self.running
            .sort_by_key(|id| seqs.get(id).map(|s| (s.priority, s.arrival)));
        // Decodes first, then prefill chunks, each in running order.
        for prefill_pass in [false, true] {
            let mut i = 0;
            while i < self.running.len() && budget > 0 {
                let id = self.running[i];
                i += 1;
                let Some(seq) = self.seqs.get(&id) else {
                    continue;
                };
                if seq.prefilling() != prefill_pass || seq.pending() == 0 {
                    continue;
                }
                let len = seq.pending().min(budget);
                let start = seq.computed;
                if !self.make_room(id, start + len, &mut plan, &mut budget) {
                    // It was itself the one to go; those after it went first.
                    break;
                }
                // Preemption removed sequences after this one only.
                i = self
                    .running
                    .iter()
                    .position(|&r| r == id)
                    .map_or(i, |p| p + 1);
                plan.items.push(Scheduled {
                    seq: id,
                    start,
                    len,
                });
                budget -= len;
            }
        }
        // Memory is short while anything had to be preempted: admit nothing.
        if plan.preempted.is_empty() {
            self.admit(&mut plan, &mut budget);
        }
        plan
    }

    /// Grows `id`'s table to cover `end` positions, preempting the running
    /// sequences that would run last while blocks are missing. False if
    /// `id` itself had to be preempted.
    fn make_room(&mut self, id: SeqId, end: usize, plan: &mut Plan, budget: &mut usize) -> bool {
        loop {
            let have = self.seqs.get(&id).map_or(0, |s| s.blocks.len());
            let need = self.pool.blocks_for(end).saturating_sub(have);
            if self.pool.available() >= need {
                for _ in 0..need {
                    if let (Some(b), Some(seq)) = (self.pool.allocate(), self.seqs.get_mut(&id)) {
                        seq.blocks.push(b);
                    }
                }
                return true;
            }
            let Some(&victim) = self.running.last() else {
                return false;
            };
            if let Some(p) = plan.items.iter().position(|it| it.seq == victim) {
                *budget += plan.items.remove(p).len;
            }
            self.preempt(victim);
            plan.preempted.push(victim);
            if victim == id {
                return false;
            }
        }
    }

    /// Moves waiting sequences into the running set, first in order, while
    /// seats, budget and blocks last. Stops at the first that does not
    /// fit, so a large request is not overtaken forever by small ones.
    fn admit(&mut self, plan: &mut Plan, budget: &mut usize) {
        while self.running.len() < self.config.max_num_seqs && *budget > 0 {
            let Some(&(priority, arrival, id)) = self.waiting.first() else {
                return;
            };
            let Some(seq) = self.seqs.get_mut(&id) else {
                self.waiting.remove(&(priority, arrival, id));
                continue;
            };
            let bs = self.pool.block_size();
            if self.config.prefix_caching && seq.reuses_cache {
                // The last token is always computed: its logits are needed.
                let reusable = (seq.tokens.len() - 1) / bs;
                if seq.keys.len() < reusable {
                    seq.keys = super::kv::chain_keys(&seq.tokens[..reusable * bs], bs);
                }
                self.stats.queried_tokens += seq.tokens.len() as u64;
                for key in &seq.keys[..reusable] {
                    match self.pool.hit(key) {
                        Some(b) => seq.blocks.push(b),
                        None => break,
                    }
                }
                seq.computed = seq.blocks.len() * bs;
                seq.published = seq.blocks.len();
                self.stats.hit_tokens += seq.computed as u64;
            }
            let start = seq.computed;
            let len = seq.pending().min(*budget);
            let need = self.pool.blocks_for(start + len) - seq.blocks.len();
            if self.pool.available() < need {
                // Give back the cached blocks taken; wait for room.
                self.stats.hit_tokens -= seq.computed as u64;
                self.stats.queried_tokens -= seq.tokens.len() as u64;
                Self::drop_blocks(&mut self.pool, seq);
                return;
            }
            for _ in 0..need {
                if let Some(b) = self.pool.allocate() {
                    seq.blocks.push(b);
                }
            }
            self.waiting.remove(&(priority, arrival, id));
            self.running.push(id);
            plan.items.push(Scheduled {
                seq: id,
                start,
                len,
            });
            *budget -= len;
        }
    }

    /// Records that the step computed `len` more tokens of `id`, and
    /// publishes the blocks that became full.
    pub fn advance(&mut self, id: SeqId, len: usize) {
        let Some(seq) = self.seqs.get_mut(&id) else {
            return;
        };
        seq.computed = (seq.computed + len).min(seq.tokens.len());
        if !self.config.prefix_caching {
            return;
        }
        let bs = self.pool.block_size();
        let full = seq.computed / bs;
        while seq.published < full {
            let b = seq.published;
            if seq.keys.len() <= b {
                let key = BlockKey::chain(seq.keys.last(), &seq.tokens[b * bs..(b + 1) * bs]);
                seq.keys.push(key);
            }
            self.pool.publish(seq.blocks[b], seq.keys[b]);
            seq.published += 1;
        }
    }

    /// Adds a sampled token to a running sequence.
    pub fn append(&mut self, id: SeqId, token: u32) {
        if let Some(seq) = self.seqs.get_mut(&id) {
            seq.tokens.push(token);
        }
    }

    /// Removes a sequence (finished or cancelled) and frees its blocks.
    pub fn finish(&mut self, id: SeqId) {
        let Some(mut seq) = self.seqs.remove(&id) else {
            return;
        };
        self.waiting.remove(&(seq.priority, seq.arrival, id));
        self.running.retain(|&r| r != id);
        Self::drop_blocks(&mut self.pool, &mut seq);
    }

    fn preempt(&mut self, id: SeqId) {
        self.running.retain(|&r| r != id);
        if let Some(seq) = self.seqs.get_mut(&id) {
            Self::drop_blocks(&mut self.pool, seq);
            seq.preemptions += 1;
            self.waiting.insert((seq.priority, seq.arrival, id));
            self.preemptions += 1;
        }
    }

    /// Releases a sequence's blocks, last first, and forgets what it had
    /// computed.
    fn drop_blocks(pool: &mut BlockPool, seq: &mut Sequence) {
        for &b in seq.blocks.iter().rev() {
            pool.release(b);
        }
        seq.blocks.clear();
        seq.computed = 0;
        seq.published = 0;
    }

    /// Checks the allocator against every table, and the queues against
    /// the sequences.
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        let tables: Vec<&[u32]> = self.seqs.values().map(|s| s.blocks.as_slice()).collect();
        self.pool.check(&tables)?;
        for seq in self.seqs.values() {
            let running = self.running.contains(&seq.id);
            let waiting = self.waiting.contains(&(seq.priority, seq.arrival, seq.id));
            if running == waiting {
                return Err(format!(
                    "sequence {} is running={running}, waiting={waiting}",
                    seq.id
                ));
            }
            if waiting && !seq.blocks.is_empty() {
                return Err(format!("waiting sequence {} holds blocks", seq.id));
            }
            if running && seq.blocks.len() < self.pool.blocks_for(seq.computed) {
                return Err(format!("sequence {} computed past its blocks", seq.id));
            }
        }
        if self.running.len() + self.waiting.len() != self.seqs.len() {
            return Err("a queue names a sequence that does not exist".into());
        }
        if self.running.len() > self.config.max_num_seqs {
            return Err(format!("{} sequences running", self.running.len()));
        }
        Ok(())
    }
}
