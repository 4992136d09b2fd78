use super::*;
use crate::engine::rng::Rng;

fn scheduler(blocks: usize, max_num_seqs: usize, budget: usize) -> Scheduler {
    Scheduler::new(
        SchedulerConfig {
            max_num_seqs,
            max_num_batched_tokens: budget,
            prefix_caching: true,
        },
        BlockPool::new(blocks, 4),
    )
}

/// What the engine does after a step: the computed tokens advance, and a
/// sequence that caught up gets its next token.
fn run_step(s: &mut Scheduler, plan: &Plan, next: u32) {
    for it in &plan.items {
        s.advance(it.seq, it.len);
        if s.get(it.seq).is_some_and(|q| q.pending() == 0) {
            s.append(it.seq, next);
        }
    }
}

#[test]
fn decodes_run_before_prefill_chunks_and_chunks_respect_the_budget() {
    let mut s = scheduler(64, 8, 8);
    s.add(1, vec![1; 3], 0, true);
    let plan = s.schedule();
    assert_eq!(
        plan.items,
        [Scheduled {
            seq: 1,
            start: 0,
            len: 3
        }]
    );
    run_step(&mut s, &plan, 9);
    s.add(2, vec![2; 20], 0, true);
    let plan = s.schedule();
    // Sequence 1 decodes one token; sequence 2 gets the rest of the budget.
    assert_eq!(
        plan.items,
        [
            Scheduled {
                seq: 1,
                start: 3,
                len: 1
            },
            Scheduled {
                seq: 2,
                start: 0,
                len: 7
            }
        ]
    );
    run_step(&mut s, &plan, 9);
    let plan = s.schedule();
    assert_eq!(
        plan.items[1],
        Scheduled {
            seq: 2,
            start: 7,
            len: 7
        }
    );
    s.check().unwrap();
}

#[test]
fn lower_priority_values_are_admitted_first() {
    let mut s = scheduler(64, 1, 64);
    s.add(1, vec![1; 4], 5, true);
    s.add(2, vec![2; 4], -1, true);
    s.add(3, vec![3; 4], 5, true);
    let plan = s.schedule();
    assert_eq!(plan.items[0].seq, 2);
    s.finish(2);
    assert_eq!(s.schedule().items[0].seq, 1, "equal priorities: first come");
}

#[test]
fn a_shared_prefix_is_computed_once() {
    let mut s = scheduler(64, 8, 64);
    let prompt: Vec<u32> = (0..13).collect();
    s.add(1, prompt.clone(), 0, true);
    let plan = s.schedule();
    run_step(&mut s, &plan, 99);
    let mut other = prompt[..12].to_vec();
    other.extend([7, 7, 7]);
    s.add(2, other, 0, true);
    let plan = s.schedule();
    // Three full blocks (12 tokens) come from sequence 1.
    assert_eq!(
        plan.items[1],
        Scheduled {
            seq: 2,
            start: 12,
            len: 3
        }
    );
    assert_eq!(s.get(2).unwrap().blocks[..3], s.get(1).unwrap().blocks[..3]);
    assert_eq!(s.cache_stats().hit_tokens, 12);
    // A request that wants every position's logits computes them all.
    s.add(3, prompt.clone(), 0, false);
    let plan = s.schedule();
    assert_eq!(plan.items.last().unwrap().start, 0);
    s.check().unwrap();
}

#[test]
fn the_whole_prompt_cached_still_computes_its_last_token() {
    let mut s = scheduler(64, 8, 64);
    let prompt: Vec<u32> = (0..8).collect();
    s.add(1, prompt.clone(), 0, true);
    let plan = s.schedule();
    run_step(&mut s, &plan, 5);
    s.finish(1);
    s.add(2, prompt, 0, true);
    assert_eq!(
        s.schedule().items,
        [Scheduled {
            seq: 2,
            start: 4,
            len: 4
        }]
    );
}

#[test]
fn running_out_of_blocks_preempts_the_latest_arrival() {
    // 4 blocks of 4: two sequences of 8 tokens fill them.
    let mut s = scheduler(4, 8, 64);
    s.add(1, vec![1; 8], 0, false);
    s.add(2, vec![2; 8], 0, false);
    let plan = s.schedule();
    assert_eq!(plan.items.len(), 2);
    run_step(&mut s, &plan, 3);
    // Each now needs a fifth position: the later one gives way.
    let plan = s.schedule();
    assert_eq!(plan.preempted, [2]);
    assert_eq!(
        plan.items,
        [Scheduled {
            seq: 1,
            start: 8,
            len: 1
        }]
    );
    assert_eq!(s.get(2).unwrap().computed, 0);
    assert_eq!(
        s.get(2).unwrap().tokens.len(),
        9,
        "generated tokens are kept"
    );
    s.check().unwrap();
    s.finish(1);
    // It comes back and recomputes everything it had, sampled token too.
    let plan = s.schedule();
    assert_eq!(
        plan.items,
        [Scheduled {
            seq: 2,
            start: 0,
            len: 9
        }]
    );
    assert_eq!(s.preemptions(), 1);
}

#[test]
fn random_traffic_keeps_every_invariant_and_frees_every_block() {
    let mut rng = Rng::seeded(42);
    let mut s = scheduler(24, 6, 16);
    let mut next_id = 0u64;
    let mut finished = 0;
    let mut targets: HashMap<SeqId, usize> = HashMap::new();
    let mut steps = 0;
    while finished < 1000 {
        steps += 1;
        assert!(steps < 200_000, "no progress");
        if next_id < 1000 && rng.next_u64().is_multiple_of(3) {
            // Prompts from a few shared stems, so the prefix cache works.
            let stem = rng.next_u64() % 4;
            let len = 1 + (rng.next_u64() % 40) as usize;
            let prompt: Vec<u32> = (0..len).map(|i| (stem * 1000) as u32 + i as u32).collect();
            let total = len + 1 + (rng.next_u64() % 30) as usize;
            let priority = (rng.next_u64() % 3) as i32;
            s.add(next_id, prompt, priority, !rng.next_u64().is_multiple_of(5));
            targets.insert(next_id, total.min(90));
            next_id += 1;
        }
        let plan = s.schedule();
        s.check().unwrap();
        for it in &plan.items {
            s.advance(it.seq, it.len);
            let Some(q) = s.get(it.seq) else { continue };
            if q.pending() == 0 {
                if q.tokens.len() >= targets[&it.seq] {
                    s.finish(it.seq);
                    finished += 1;
                } else {
                    s.append(it.seq, (rng.next_u64() % 50) as u32);
                }
            }
        }
        // Cancellations, running or waiting.
        if rng.next_u64().is_multiple_of(10) && next_id > 0 {
            let id = rng.next_u64() % next_id;
            if s.get(id).is_some() {
                s.finish(id);
                finished += 1;
            }
        }
        s.check().unwrap();
    }
    assert!(s.is_idle());
    assert_eq!(s.pool().available(), s.pool().total());
    s.check().unwrap();
    assert!(s.preemptions() > 0, "the pool was never short");
    assert!(s.cache_stats().hit_tokens > 0, "the prefix cache never hit");
}
