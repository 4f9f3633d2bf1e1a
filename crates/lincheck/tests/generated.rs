//! Properties over generated histories: histories produced by the reference
//! store (each operation taking effect inside its interval) are always
//! linearizable, whatever the overlap and timeouts; changing one read's
//! result in a sequential history always makes it a violation.

use crate::support;

use haven_lincheck::{Input, KeyValue, Limits, Operation, Output, Verdict, check};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::{GenConfig, b, generate};

fn history(seed: u64, config: GenConfig) -> Vec<Operation> {
    generate(&mut ChaCha8Rng::seed_from_u64(seed), config)
}

fn config(ops_len: usize, concurrent: bool, timeout_chance: f64) -> GenConfig {
    GenConfig {
        clients: 4,
        keys: 3,
        values: 4,
        ops_len,
        timeout_chance,
        concurrent,
        ordered_value_compares: true,
        expiry_chance: 0.0,
    }
}

/// The same, with about one operation in twelve a lease expiry.
fn with_expiries(config: GenConfig) -> GenConfig {
    GenConfig { expiry_chance: 0.08, ..config }
}

/// The ways one read's result is changed.
#[derive(Clone, Copy, Debug)]
enum Mutation {
    Value,
    Version,
    ModRevision,
    Presence,
}

/// Changes the result of the `pick`-th answered read (get or range); false if there is none.
fn mutate(history: &mut [Operation], pick: usize, mutation: Mutation) -> bool {
    let non_empty_range = |input: &Input| match input {
        Input::Range { range } => range.end.as_ref().is_none_or(|end| range.start < *end),
        _ => true,
    };
    let reads: Vec<usize> = (0..history.len())
        .filter(|&i| {
            let output = history[i].response.as_ref().map(|r| &r.output);
            matches!(output, Some(Output::Get { .. } | Output::Range { .. })) && non_empty_range(&history[i].input)
        })
        .collect();
    if reads.is_empty() {
        return false;
    }
    let op = &mut history[reads[pick % reads.len()]];
    let key = op.input.key().map(<[u8]>::to_vec);
    let output = &mut op.response.as_mut().expect("an answered read").output;
    match output {
        Output::Get { kv, revision } => change(kv, key.expect("a get names its key"), *revision, mutation),
        Output::Range { kvs, revision } if kvs.is_empty() => {
            let Input::Range { range } = &op.input else { unreachable!("a range output answers a range") };
            let key = range.start.clone();
            kvs.push(KeyValue { key, value: b("never"), mod_revision: (*revision).max(1), version: 1 });
            true
        }
        Output::Range { kvs, .. } => {
            let index = pick % kvs.len();
            let mut kv = Some(kvs[index].clone());
            change(&mut kv, kvs[index].key.clone(), 0, mutation);
            match kv {
                Some(kv) => kvs[index] = kv,
                None => {
                    kvs.remove(index);
                }
            }
            true
        }
        _ => unreachable!("only reads were picked"),
    }
}

fn change(kv: &mut Option<KeyValue>, key: Vec<u8>, revision: u64, mutation: Mutation) -> bool {
    match (kv.as_mut(), mutation) {
        (None, _) => *kv = Some(KeyValue { key, value: b("never"), mod_revision: revision.max(1), version: 1 }),
        (Some(kv), Mutation::Value) => kv.value = b("never"),
        (Some(kv), Mutation::Version) => kv.version += 1,
        (Some(kv), Mutation::ModRevision) => kv.mod_revision -= 1,
        (Some(_), Mutation::Presence) => *kv = None,
    }
    true
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![Just(Mutation::Value), Just(Mutation::Version), Just(Mutation::ModRevision), Just(Mutation::Presence)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sequential_histories_of_the_model_are_linearizable(seed in any::<u64>(), ops_len in 1usize..120) {
        let history = history(seed, config(ops_len, false, 0.0));
        let verdict = check(&history, Limits::default()).expect("well formed");
        prop_assert_eq!(&verdict, &Verdict::Linearizable, "{}", verdict);
    }

    #[test]
    fn concurrent_histories_with_timeouts_are_linearizable(seed in any::<u64>(), ops_len in 1usize..120) {
        let history = history(seed, config(ops_len, true, 0.15));
        let verdict = check(&history, Limits::default()).expect("well formed");
        prop_assert_eq!(&verdict, &Verdict::Linearizable, "{}", verdict);
    }

    #[test]
    fn concurrent_histories_with_timeouts_and_expiries_are_linearizable(seed in any::<u64>(), ops_len in 1usize..120) {
        let history = history(seed, with_expiries(config(ops_len, true, 0.15)));
        let verdict = check(&history, Limits::default()).expect("well formed");
        prop_assert_eq!(&verdict, &Verdict::Linearizable, "{}", verdict);
    }

    #[test]
    fn one_changed_read_in_a_sequential_history_with_expiries_is_a_violation(
        seed in any::<u64>(),
        ops_len in 10usize..120,
        pick in any::<usize>(),
        mutation in mutation(),
    ) {
        let mut history = history(seed, with_expiries(config(ops_len, false, 0.0)));
        prop_assume!(mutate(&mut history, pick, mutation));
        let verdict = check(&history, Limits::default()).expect("well formed");
        prop_assert!(verdict.violation().is_some(), "{:?} went unnoticed: {}", mutation, verdict);
    }

    #[test]
    fn one_changed_read_in_a_sequential_history_is_a_violation(
        seed in any::<u64>(),
        ops_len in 10usize..120,
        pick in any::<usize>(),
        mutation in mutation(),
    ) {
        let mut history = history(seed, config(ops_len, false, 0.0));
        prop_assume!(mutate(&mut history, pick, mutation));
        let verdict = check(&history, Limits::default()).expect("well formed");
        prop_assert!(verdict.violation().is_some(), "{:?} went unnoticed: {}", mutation, verdict);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_a_violation_even_with_overlap(
        seed in any::<u64>(),
        ops_len in 10usize..120,
        pick in any::<usize>(),
    ) {
        let mut history = history(seed, config(ops_len, true, 0.15));
        prop_assume!(mutate(&mut history, pick, Mutation::Value));
        let verdict = check(&history, Limits::default()).expect("well formed");
        prop_assert!(verdict.violation().is_some(), "{}", verdict);
    }
}

#[test]
fn thousands_of_concurrent_operations_check_well_under_a_second() {
    // Clients write unique values, as the simulation's clients do; 5% of calls time out.
    let config = GenConfig {
        clients: 10,
        keys: 5,
        values: 1_000_000,
        ops_len: 4000,
        timeout_chance: 0.05,
        concurrent: true,
        ordered_value_compares: false,
        expiry_chance: 0.0,
    };
    for seed in 0..3 {
        let history = history(seed, config);
        // Wall time is what this test is about; the checker itself never reads a clock.
        #[allow(clippy::disallowed_methods)]
        let start = std::time::Instant::now();
        let verdict = check(&history, Limits::default()).expect("well formed");
        let elapsed = start.elapsed();
        assert_eq!(verdict, Verdict::Linearizable, "seed {seed}: {verdict}");
        assert!(elapsed < std::time::Duration::from_millis(500), "seed {seed}: 4000 operations took {elapsed:?}");
    }
}

/// Shifts numbers in responses (revisions, versions, counts) by the next
/// `noise` (mostly 0 or small, sometimes huge), as a buggy store might.
fn scramble(history: &mut [Operation], noise: &[u64]) {
    let mut noise = noise.iter().copied().cycle();
    let mut shift = |n: &mut u64| *n = n.wrapping_add(noise.next().unwrap_or(0));
    for op in history.iter_mut() {
        let Some(response) = &mut op.response else { continue };
        match &mut response.output {
            Output::Get { revision, kv } => {
                shift(revision);
                if let Some(kv) = kv {
                    shift(&mut kv.version);
                    shift(&mut kv.mod_revision);
                }
            }
            Output::Put { revision, .. } | Output::Txn { revision, .. } => shift(revision),
            Output::Delete { revision, deleted } => {
                shift(revision);
                shift(deleted);
            }
            Output::Range { revision, kvs } => {
                shift(revision);
                kvs.iter_mut().for_each(|kv| shift(&mut kv.mod_revision));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_numbers_never_make_the_checker_panic(
        seed in any::<u64>(),
        ops_len in 1usize..60,
        noise in proptest::collection::vec(prop_oneof![60 => Just(0u64), 4 => 1u64..3, 1 => Just(u64::MAX), 1 => any::<u64>()], 1..200),
    ) {
        let mut history = history(seed, with_expiries(config(ops_len, true, 0.2)));
        scramble(&mut history, &noise);
        let limits = Limits { steps_max: 20_000, ..Limits::default() };
        // Any verdict or refusal will do; what is checked is that it returns.
        // Any verdict or refusal will do; what is checked is that it returns.
        let _ = check(&history, limits);
    }
}
