//! Transcript tests of the ping detector: each step's exact effects.

use haven_basics::detector::{Detector, DetectorSpec};
use haven_basics::{DetectorConfig, DetectorEvent, DetectorMsg, PingDetector};
use haven_runtime::{Effect, Host, Instant, NodeId, TimerId};
use rand::SeedableRng;
use std::time::Duration;

type Fx = Vec<Effect<DetectorMsg, DetectorEvent>>;

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

fn config() -> DetectorConfig {
    DetectorConfig {
        period: Duration::from_millis(50),
        timeout_initial: Duration::from_millis(200),
        timeout_increment: Duration::from_millis(100),
        timeout_max: Duration::from_millis(400),
    }
}

fn started() -> (Host<PingDetector>, Fx) {
    let spec = DetectorSpec { me: N1, epoch: 7, peers: vec![N1, N2, N3], config: config() };
    let mut host = Host::new(N1, PingDetector::new(spec), rand_chacha::ChaCha8Rng::seed_from_u64(0));
    let mut fx = Fx::new();
    host.start(ms(0), &mut fx);
    (host, fx)
}

fn ping(at: Instant) -> DetectorMsg {
    DetectorMsg::Ping { sent_at: at, epoch: 7 }
}

fn pong(echo: Instant, epoch: u64) -> DetectorMsg {
    DetectorMsg::Pong { echo_at: echo, echo_epoch: 7, epoch }
}

/// Fires every tick up to and including `until_ms`, returning the outputs.
fn tick_until(host: &mut Host<PingDetector>, next_timer: &mut u64, from_ms: u64, until_ms: u64) -> Vec<DetectorEvent> {
    let mut outputs = Vec::new();
    let mut t = from_ms;
    while t <= until_ms {
        let mut fx = Fx::new();
        host.fire(ms(t), TimerId(*next_timer), &mut fx);
        *next_timer += 1;
        outputs.extend(fx.into_iter().filter_map(|e| match e {
            Effect::Output(o) => Some(o),
            _ => None,
        }));
        t += 50;
    }
    outputs
}

#[test]
fn start_pings_every_peer_and_sets_the_tick() {
    let (_, fx) = started();
    assert_eq!(
        fx,
        vec![
            Effect::Send { to: N2, msg: ping(ms(0)) },
            Effect::Send { to: N3, msg: ping(ms(0)) },
            Effect::SetTimer { id: TimerId(1), at: ms(50) },
        ]
    );
}

#[test]
fn ping_is_answered_with_an_echo() {
    let (mut host, _) = started();
    let mut fx = Fx::new();
    host.deliver(ms(10), N2, DetectorMsg::Ping { sent_at: ms(999), epoch: 3 }, &mut fx);
    assert_eq!(fx, vec![Effect::Send { to: N2, msg: DetectorMsg::Pong { echo_at: ms(999), echo_epoch: 3, epoch: 7 } }]);
}

#[test]
fn first_pong_trusts_the_peer_with_its_epoch_and_repeats_are_silent() {
    let (mut host, _) = started();
    let mut fx = Fx::new();
    host.deliver(ms(2), N2, pong(ms(0), 4), &mut fx);
    assert_eq!(fx, vec![Effect::Output(DetectorEvent::Trust { node: N2, epoch: 4 })]);
    fx.clear();
    host.deliver(ms(3), N2, pong(ms(0), 4), &mut fx);
    assert_eq!(fx, vec![], "same epoch again: nothing new");
    host.deliver(ms(4), N2, pong(ms(0), 5), &mut fx);
    assert_eq!(fx, vec![Effect::Output(DetectorEvent::Trust { node: N2, epoch: 5 })], "peer restarted");
}

#[test]
fn a_silent_peer_is_suspected_once_after_its_timeout() {
    let (mut host, _) = started();
    let mut timer = 1;
    // n3 answers every ping, n2 never does. Timeout 200 ms: suspect at the
    // first tick where more than 200 ms passed since start, i.e. at 250 ms.
    let mut outputs = Vec::new();
    for t in (50..=400).step_by(50) {
        let mut fx = Fx::new();
        host.deliver(ms(t - 1), N3, pong(ms(t - 50), 1), &mut fx);
        outputs.extend(tick_until(&mut host, &mut timer, t, t).into_iter().map(|o| (t, o)));
    }
    assert_eq!(outputs, vec![(250, DetectorEvent::Suspect { node: N2 })]);
    assert!(host.component().is_suspected(N2));
    assert!(!host.component().is_suspected(N3));
}

#[test]
fn false_suspicion_grows_the_timeout_and_a_real_outage_does_not() {
    let (mut host, _) = started();
    let mut timer = 1;
    assert_eq!(
        tick_until(&mut host, &mut timer, 50, 250),
        vec![DetectorEvent::Suspect { node: N2 }, DetectorEvent::Suspect { node: N3 },]
    );
    // n2 answers the ping sent at 40 ms, before it was suspected at 250 ms:
    // it was alive, only slow. Restored, and its timeout grows to 300 ms.
    let mut fx = Fx::new();
    host.deliver(ms(260), N2, pong(ms(40), 1), &mut fx);
    assert_eq!(fx, vec![Effect::Output(DetectorEvent::Trust { node: N2, epoch: 1 })]);
    assert_eq!(host.component().timeout_of(N2), Some(Duration::from_millis(300)));
    assert_eq!(host.component().false_suspicions(), 1);
    fx.clear();
    host.deliver(ms(261), N2, pong(ms(100), 1), &mut fx);
    assert_eq!(fx, vec![], "a later pong of the same incarnation changes nothing");
    // n3 answers a ping sent after its suspicion: restored, timeout unchanged.
    host.deliver(ms(301), N3, pong(ms(300), 1), &mut fx);
    assert_eq!(fx, vec![Effect::Output(DetectorEvent::Trust { node: N3, epoch: 1 })]);
    assert_eq!(host.component().timeout_of(N3), Some(Duration::from_millis(200)));
}

#[test]
fn timeout_never_exceeds_its_maximum() {
    let (mut host, _) = started();
    let mut timer = 1;
    let mut t = 0;
    let mut timeouts = Vec::new();
    for _ in 0..5 {
        // Silence until n2 is suspected at tick `t`, then a pong to the ping
        // sent one period before: the suspicion was false.
        loop {
            t += 50;
            if tick_until(&mut host, &mut timer, t, t).contains(&DetectorEvent::Suspect { node: N2 }) {
                break;
            }
        }
        let mut fx = Fx::new();
        host.deliver(ms(t + 1), N2, pong(ms(t - 50), 1), &mut fx);
        assert_eq!(fx, vec![Effect::Output(DetectorEvent::Trust { node: N2, epoch: 1 })]);
        timeouts.push(host.component().timeout_of(N2).unwrap().as_millis());
    }
    assert_eq!(timeouts, vec![300, 400, 400, 400, 400]);
}

#[test]
fn pongs_from_old_incarnations_are_ignored() {
    let (mut host, _) = started();
    let mut fx = Fx::new();
    host.deliver(ms(1), N2, pong(ms(0), 5), &mut fx);
    fx.clear();
    host.deliver(ms(2), N2, pong(ms(1), 4), &mut fx);
    assert_eq!(fx, vec![], "a lower epoch is a dead incarnation of n2");
    let ours_before_restart = DetectorMsg::Pong { echo_at: ms(1), echo_epoch: 6, epoch: 5 };
    host.deliver(ms(3), N3, ours_before_restart, &mut fx);
    assert_eq!(fx, vec![], "answers a ping of our own previous incarnation");
}

/// Regression (found by the `election` scenario, seed 1): a peer whose round
/// trip always exceeds the initial timeout must still be restored, and its
/// timeout must grow until it fits; after that, no more suspicions.
#[test]
fn a_peer_slower_than_the_initial_timeout_is_learned() {
    let (mut host, _) = started();
    let mut timer = 1;
    let rtt_ms = 300;
    let mut suspicions_at = Vec::new();
    for t in (50..=5000).step_by(50) {
        if t >= rtt_ms {
            // n2 and n3 answer every ping exactly 300 ms after it was sent.
            let mut fx = Fx::new();
            for peer in [N2, N3] {
                host.deliver(ms(t - 1), peer, pong(ms(t - rtt_ms), 1), &mut fx);
            }
        }
        for out in tick_until(&mut host, &mut timer, t, t) {
            if let DetectorEvent::Suspect { node } = out {
                suspicions_at.push((t, node));
            }
        }
    }
    assert!(!suspicions_at.is_empty(), "300 ms round trips must exceed the 200 ms initial timeout");
    assert!(suspicions_at.iter().all(|&(t, _)| t < 1000), "still suspecting after 1 s: {suspicions_at:?}");
    for peer in [N2, N3] {
        assert!(!host.component().is_suspected(peer));
        assert!(host.component().timeout_of(peer).unwrap() >= Duration::from_millis(rtt_ms));
    }
}
