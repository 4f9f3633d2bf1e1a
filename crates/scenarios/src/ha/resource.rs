//! The protected resource of the `ha-failover` scenario: what a service's
//! primary writes to (a disk array, a database, an IP address), modelled as
//! one simulated node.
//!
//! In: writes, as key-value puts (`StationMsg::Request` with a `Put` of key
//! `svc/{service}/i{instance}` and the fencing token in decimal as value),
//! the sender being the writer. Out: one [`Write`] per accepted write.
//!
//! It accepts every write and answers none: it does NOT enforce tokens, so
//! the checker sees whether an old holder kept writing after a newer one
//! started. A real resource would refuse a token lower than the last it saw;
//! here that refusal is the checker's verdict. Malformed writes are ignored.

use haven_basics::Never;
use haven_ha::InstanceId;
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_station::{ClientRequest, StationMsg};
use haven_store::{PutRequest, Request};

const KEY_PREFIX: &str = "svc/";

/// One write the resource accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub service: String,
    pub instance: InstanceId,
    pub token: u64,
    pub writer: NodeId,
}

/// The put an agent sends for a write of `instance` of `service` with `token`.
pub fn write_request(client: u64, seq: u64, service: &str, instance: InstanceId, token: u64) -> StationMsg {
    let key = format!("{KEY_PREFIX}{service}/i{}", instance.0).into_bytes();
    let put = PutRequest { key, value: token.to_string().into_bytes(), ..PutRequest::default() };
    StationMsg::Request(ClientRequest { client, seq, request: Request::Put(put) })
}

/// The write a put describes, if it is one.
fn parse(writer: NodeId, put: &PutRequest) -> Option<Write> {
    let key = std::str::from_utf8(&put.key).ok()?.strip_prefix(KEY_PREFIX)?;
    let (service, instance) = key.rsplit_once("/i")?;
    let instance = InstanceId(instance.parse().ok()?);
    let token = std::str::from_utf8(&put.value).ok()?.parse().ok()?;
    Some(Write { service: service.to_string(), instance, token, writer })
}

#[derive(Debug, Default)]
pub struct Resource {
    accepted: u64,
}

impl Resource {
    pub fn new() -> Resource {
        Resource::default()
    }

    /// Writes accepted by this incarnation.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }
}

impl Component for Resource {
    type Msg = StationMsg;
    type Timer = Never;
    type Io = Never;
    type Out = Write;

    fn on_start(&mut self, _ctx: &mut impl CtxFor<Self>) {}

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        let StationMsg::Request(ClientRequest { request: Request::Put(put), .. }) = msg else { return };
        if let Some(write) = parse(from, &put) {
            self.accepted += 1;
            ctx.output(write);
        }
    }

    fn on_timer(&mut self, _ctx: &mut impl CtxFor<Self>, _id: TimerId, timer: Never) {
        match timer {}
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: Never, _result: IoResult) {
        match tag {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_request_parses_back_and_junk_is_ignored() {
        let StationMsg::Request(ClientRequest { request: Request::Put(put), .. }) =
            write_request(1, 2, "db/x", InstanceId(7), 42)
        else {
            panic!("a put");
        };
        let write = parse(NodeId(5), &put).expect("parses");
        assert_eq!(write, Write { service: "db/x".into(), instance: InstanceId(7), token: 42, writer: NodeId(5) });
        let junk = PutRequest { key: b"svc/db/i7".to_vec(), value: b"x".to_vec(), ..PutRequest::default() };
        assert_eq!(parse(NodeId(5), &junk), None);
        let other = PutRequest { key: b"k".to_vec(), value: b"1".to_vec(), ..PutRequest::default() };
        assert_eq!(parse(NodeId(5), &other), None);
    }
}
