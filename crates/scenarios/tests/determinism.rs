//! Every scenario is a pure function of its seed: the same seed gives the
//! same trace hash and outcome (with or without the readable trace), and
//! different seeds give different runs.

use haven_scenarios::all;
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn same_seed_same_hash_and_different_seeds_differ() {
    for scenario in all() {
        let first = (scenario.run)(11, None);
        let again = (scenario.run)(11, None);
        assert_eq!(first, again, "{}: seed 11 did not replay", scenario.name);
        let other = (scenario.run)(12, None);
        assert_ne!(first.trace_hash, other.trace_hash, "{}: seeds 11 and 12 gave the same run", scenario.name);
    }
}

#[test]
fn tracing_does_not_change_the_run_and_names_every_node() {
    for scenario in all() {
        let lines = Rc::new(RefCell::new(Vec::<String>::new()));
        let sink = lines.clone();
        let traced = (scenario.run)(5, Some(Box::new(move |line: &str| sink.borrow_mut().push(line.to_owned()))));
        let quiet = (scenario.run)(5, None);
        assert_eq!(traced, quiet, "{}: tracing changed the run", scenario.name);
        let lines = lines.borrow();
        assert!(lines.len() > 100, "{}: only {} trace lines", scenario.name, lines.len());
        assert!(lines.iter().any(|l| l.contains(" n1 recv from ")), "{}: no deliveries traced", scenario.name);
    }
}
