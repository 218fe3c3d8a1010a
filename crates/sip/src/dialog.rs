//! Dialogs (RFC 3261 §12): the state two user agents share after an INVITE,
//! and the construction of requests inside it (BYE, re-INVITE, INFO, ACK).
//!
//! A B2BUA call holds two [`Dialog`]s, one per leg. Requests inside a dialog
//! are sent to the address the peer really talks from ([`Dialog::peer`]),
//! which is what makes calls work through NAT; the Request-URI and Route
//! headers still follow the RFC so proxies on the path (e.g. a Kamailio load
//! balancer) route them correctly.

use crate::header::{CSeq, HeaderName};
use crate::message::{Request, Response, SipMessage};
use crate::method::Method;
use crate::transaction::{TransactionLayer, random_token};
use crate::transport::Peer;
use crate::uri::{NameAddr, Uri};

/// The three values that identify a dialog.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

/// Our side of one dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our address of record (From of our requests, without tag).
    pub local_uri: NameAddr,
    /// Theirs (To of our requests, without tag).
    pub remote_uri: NameAddr,
    /// Where requests are addressed (their Contact).
    pub remote_target: Uri,
    /// Route set, in the order our requests must carry it.
    pub route_set: Vec<NameAddr>,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    /// Our Contact.
    pub local_contact: Uri,
    /// Where the peer's packets come from; our requests go there.
    pub peer: Peer,
}

impl Dialog {
    /// The dialog a UAS creates when it answers `req` with a To tag `local_tag`.
    pub fn uas(req: &Request, local_tag: &str, local_contact: Uri, peer: Peer) -> Option<Dialog> {
        let from = req.from_header()?;
        let mut to = req.to_header()?;
        to.params.retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        let mut remote_uri = from.clone();
        remote_uri
            .params
            .retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        let remote_target = first_contact(req).unwrap_or_else(|| from.uri.clone());
        Some(Dialog {
            call_id: req.call_id()?.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: from.tag()?.to_owned(),
            local_uri: to,
            remote_uri,
            remote_target,
            route_set: req.record_routes(),
            local_cseq: rand_cseq(),
            remote_cseq: req.cseq().map(|c| c.seq),
            local_contact,
            peer,
        })
    }

    /// The dialog a UAC creates from the response (2xx or 1xx with a To tag)
    /// to its request `req`.
    pub fn uac(req: &Request, resp: &Response, peer: Peer) -> Option<Dialog> {
        let mut from = req.from_header()?;
        let local_tag = from.tag()?.to_owned();
        from.params.retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        let to = resp.to_header()?;
        let remote_tag = to.tag()?.to_owned();
        let mut remote_uri = to.clone();
        remote_uri
            .params
            .retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        let mut route_set = resp.record_routes();
        route_set.reverse();
        let local_contact = first_contact(req).unwrap_or_else(|| from.uri.clone());
        Some(Dialog {
            call_id: req.call_id()?.to_owned(),
            local_tag,
            remote_tag,
            local_uri: from,
            remote_uri,
            remote_target: first_contact(resp).unwrap_or_else(|| to.uri.clone()),
            route_set,
            local_cseq: req.cseq()?.seq,
            remote_cseq: None,
            local_contact,
            peer,
        })
    }

    pub fn id(&self) -> DialogId {
        DialogId {
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
            remote_tag: self.remote_tag.clone(),
        }
    }

    /// Builds an in-dialog request with a fresh CSeq and a Via naming our
    /// `via_sent_by` ("ip:port") over the dialog's transport.
    pub fn new_request(&mut self, method: Method, via_sent_by: &str) -> Request {
        self.local_cseq = self.local_cseq.wrapping_add(1) & 0x7fff_ffff;
        let seq = self.local_cseq;
        self.build(method, seq, via_sent_by, &TransactionLayer::new_branch())
    }

    /// The ACK for a 2xx to the INVITE that had CSeq `invite_seq` (new branch).
    pub fn ack(&self, invite_seq: u32, via_sent_by: &str) -> Request {
        self.build(
            Method::Ack,
            invite_seq,
            via_sent_by,
            &TransactionLayer::new_branch(),
        )
    }

    fn build(&self, method: Method, seq: u32, via_sent_by: &str, branch: &str) -> Request {
        let mut req = Request::new(method.clone(), self.remote_target.clone());
        let h = &mut req.headers;
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={};rport",
                self.peer.transport.via_name(),
                via_sent_by,
                branch
            ),
        );
        h.push(HeaderName::MaxForwards, "70");
        let mut from = self.local_uri.clone();
        from.set_param("tag", Some(self.local_tag.clone()));
        h.push(HeaderName::From, from.to_string());
        let mut to = self.remote_uri.clone();
        to.set_param("tag", Some(self.remote_tag.clone()));
        h.push(HeaderName::To, to.to_string());
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, CSeq { seq, method }.to_string());
        for r in &self.route_set {
            h.push(HeaderName::Route, r.to_string());
        }
        h.push(HeaderName::Contact, format!("<{}>", self.local_contact));
        req
    }

    /// Checks a request from the peer against the remote CSeq (§12.2.2):
    /// returns false for an out-of-order (lower) CSeq, which gets `500`.
    pub fn accept_remote_cseq(&mut self, req: &Request) -> bool {
        let Some(cseq) = req.cseq() else {
            return false;
        };
        if req.method == Method::Ack || req.method == Method::Cancel {
            return true;
        }
        match self.remote_cseq {
            Some(prev) if cseq.seq <= prev => false,
            _ => {
                self.remote_cseq = Some(cseq.seq);
                true
            }
        }
    }

    /// Updates the remote target from a target-refreshing request or response.
    pub fn refresh_target<M: SipMessage>(&mut self, msg: &M) {
        if let Some(c) = first_contact(msg) {
            self.remote_target = c;
        }
    }

    /// Whether an incoming request belongs to this dialog.
    pub fn matches(&self, req: &Request) -> bool {
        req.call_id() == Some(self.call_id.as_str())
            && req.from_tag().as_deref() == Some(self.remote_tag.as_str())
            && req.to_tag().as_deref() == Some(self.local_tag.as_str())
    }
}

fn first_contact<M: SipMessage>(msg: &M) -> Option<Uri> {
    msg.contacts().into_iter().find_map(|c| match c {
        crate::header::Contact::Addr(na) => Some(na.uri),
        crate::header::Contact::Star => None,
    })
}

fn rand_cseq() -> u32 {
    use rand::Rng;
    rand::rng().random_range(1..10_000)
}

/// A new tag for From/To.
pub fn new_tag() -> String {
    random_token(12)
}

/// A new Call-ID.
pub fn new_call_id() -> String {
    random_token(24)
}
