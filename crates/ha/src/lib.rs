//! High availability as pure logic: the service model, the state graph of
//! nodes, services and instances, and the coordinator that turns (state
//! graph, event or tick) into (new state graph, commands, decisions).
//!
//! In: the replicated state graph and one input at a time. Out: the changes
//! to commit and the commands to send once they are committed. No I/O, no
//! clock, no randomness: time comes in with every input.
