//! Calls between lines and trunks: a back-to-back user agent.
//!
//! A [`Call`] has an A leg (the caller's INVITE, which we answer) and a B
//! side: one branch per registered device of the called line (forked in
//! parallel), or one branch to a trunk. The first branch to answer wins, the
//! others are cancelled. Both legs are full dialogs of their own, so BYE,
//! re-INVITE and INFO from either side are relayed to the other.
//!
//! Media: the SDP is passed through end to end here; anchoring it on the
//! media engine replaces the body handling, not the signalling.

use std::time::{Duration, Instant};

use bytes::Bytes;
use palaver_media::room::ParticipantId;
use palaver_sdp::{SdpSession, Session};
use palaver_sip::{
    CSeq, Dialog, HeaderName, Method, NameAddr, Peer, Request, Response, SipMessage, StatusCode,
    TransactionLayer, Transport, TxKey, Uri,
};
use palaver_store::{Disposition, LineId, NewCdr, TrunkId};
use tracing::{debug, info};

use crate::core::{ALLOW, CoreTimer, Pbx, StoreOp, contact_uri_in, local_addr_in};
use crate::directory::Target;
use crate::media::{
    LegBody, MediaRoomId, Refusal, advertised, answer_or_offer, offer_in, placeholder_spec,
    preview, rate_for, spec_from, take_answer, update_commands,
};

/// Identifies a call inside the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// Which leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Why a client transaction of a call was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientRole {
    BranchInvite(usize),
    Cancel,
    Bye,
    /// An in-dialog request relayed from the other side; the answer goes back
    /// to the server transaction `origin`.
    Relay {
        to: Side,
        origin: TxKey,
    },
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's number (extension for lines).
    pub number: String,
    pub name: Option<String>,
    pub line: Option<LineId>,
    pub trunk: Option<TrunkId>,
    /// Caller ID withheld (From anonymous or Privacy: id).
    pub anonymous: bool,
}

#[derive(Debug)]
pub(crate) struct Branch {
    tx: TxKey,
    invite: Request,
    peer: Peer,
    provisional: bool,
    done: bool,
    cancel_wanted: bool,
    status: Option<StatusCode>,
    trunk: Option<TrunkId>,
    auth_tries: u8,
}

/// The media side of a two-party call: one media room, one participant per
/// leg, one SDP session per leg. Media is always anchored here, so
/// transcoding, DTMF and recording work whatever the phones negotiate.
#[derive(Debug)]
pub(crate) struct CallMedia {
    pub(crate) room: MediaRoomId,
    pub(crate) a: ParticipantId,
    pub(crate) a_sdp: SdpSession,
    pub(crate) b: ParticipantId,
    pub(crate) b_sdp: SdpSession,
    /// The offer every B branch received.
    pub(crate) b_offer: Session,
    /// A leg whose offer went out in a 2xx and whose answer comes in the ACK.
    pub(crate) awaiting_ack_answer: [bool; 2],
    /// What goes in the 200 to A: our answer, or our offer (delayed offer).
    pub(crate) a_body: Bytes,
}

impl CallMedia {
    fn leg(&self, side: Side) -> (ParticipantId, usize) {
        match side {
            Side::A => (self.a, 0),
            Side::B => (self.b, 1),
        }
    }

    fn sdp(&mut self, side: Side) -> &mut SdpSession {
        match side {
            Side::A => &mut self.a_sdp,
            Side::B => &mut self.b_sdp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    /// Branches are ringing.
    Ringing,
    /// We sent 200 to A; waiting for its ACK.
    Answered,
    Confirmed,
}

#[derive(Debug)]
pub struct Call {
    pub(crate) a_invite: Request,
    pub(crate) a_tx: TxKey,
    pub(crate) a_peer: Peer,
    pub(crate) a_tag: String,
    pub(crate) a_dialog: Option<Dialog>,
    pub(crate) a_final_sent: bool,
    pub(crate) ringing_sent: bool,
    pub(crate) branches: Vec<Branch>,
    pub(crate) winner: Option<usize>,
    pub(crate) b_dialog: Option<Dialog>,
    pub(crate) b_call_id: String,
    pub(crate) b_tag: String,
    pub(crate) media: CallMedia,
    pub(crate) state: CallState,
    pub(crate) caller: Caller,
    pub(crate) dialled: String,
    pub(crate) target: Target,
    pub(crate) started_ms: i64,
    pub(crate) answered_ms: Option<i64>,
}

impl Pbx {
    pub(crate) fn on_invite(&mut self, now: Instant, key: TxKey, req: Request, peer: Peer) {
        if !self.accepting {
            self.reply(
                now,
                key,
                &req,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Service Unavailable (shutting down)"),
            );
            return;
        }
        if !req.body.is_empty() && req.content_type().as_deref() != Some("application/sdp") {
            let mut r = Response::for_request(&req, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            r.set_to_tag(&palaver_sip::new_tag());
            r.headers.push(HeaderName::Accept, "application/sdp");
            self.respond(now, key, r);
            return;
        }
        if req.max_forwards().unwrap_or(70) <= 1 {
            self.reply(now, key, &req, StatusCode::TOO_MANY_HOPS, None);
            return;
        }
        let dialled = req.uri.user.clone().unwrap_or_default();
        let has_creds = req.headers.contains(&HeaderName::ProxyAuthorization);
        let tone_test = self.config.tone_test_number.as_deref() == Some(dialled.as_str());
        // The tone test answers trunk addresses without credentials, like
        // their public numbers (load tests place calls from them).
        if tone_test
            && !has_creds
            && let Some(trunk) = self.dir.trunk_for_source(peer.addr.ip()).map(|t| t.id)
        {
            let caller = caller_from_request(&req, None, Some(trunk));
            self.answer_locally(
                now,
                key,
                req,
                peer,
                caller,
                dialled,
                crate::answered::Purpose::ToneTest,
            );
            return;
        }

        // Who is calling: a trunk by its address (only towards its public
        // numbers), otherwise a line that must authenticate.
        let trunk = if has_creds {
            None
        } else {
            self.dir
                .trunk_for_source(peer.addr.ip())
                .map(|t| t.id)
                .filter(|t| self.dir.route_from_trunk(*t, &dialled).is_some())
        };
        let (caller, target) = if let Some(trunk) = trunk {
            let Some(target) = self.dir.route_from_trunk(trunk, &dialled) else {
                return;
            };
            (caller_from_request(&req, None, Some(trunk)), target)
        } else {
            if self.guard.is_banned(peer.addr.ip(), now) {
                self.reply(
                    now,
                    key,
                    &req,
                    StatusCode::FORBIDDEN,
                    Some("Forbidden (too many failed authentications)"),
                );
                return;
            }
            let Some(line_id) = self.authenticate(now, key, &req, peer, true) else {
                return;
            };
            let Some(line) = self.dir.line(line_id).cloned() else {
                self.reply(now, key, &req, StatusCode::FORBIDDEN, None);
                return;
            };
            let mut caller = caller_from_request(&req, Some(line_id), None);
            caller.number = line.extension.clone();
            caller.name = Some(line.display_name.clone());
            if tone_test {
                self.answer_locally(
                    now,
                    key,
                    req,
                    peer,
                    caller,
                    dialled,
                    crate::answered::Purpose::ToneTest,
                );
                return;
            }
            let Some(target) = self.dir.route_from_line(&dialled) else {
                self.reply(
                    now,
                    key,
                    &req,
                    StatusCode::NOT_FOUND,
                    Some("Not Found (no such number)"),
                );
                return;
            };
            (caller, target)
        };
        self.start_call(now, key, req, peer, caller, dialled, target);
    }

    #[allow(clippy::too_many_arguments)]
    fn start_call(
        &mut self,
        now: Instant,
        key: TxKey,
        req: Request,
        peer: Peer,
        caller: Caller,
        dialled: String,
        target: Target,
    ) {
        let now_ms = self.wall_ms(now);
        // Where to send the B side.
        let mut destinations: Vec<(Uri, Peer, Option<TrunkId>, String)> = Vec::new();
        match &target {
            Target::Line(l) => {
                let Some(line) = self.dir.line(*l) else {
                    self.reply(now, key, &req, StatusCode::NOT_FOUND, None);
                    return;
                };
                let ext = line.extension.clone();
                for reg in self.registrar.contacts(*l, now_ms) {
                    // Don't ring the very device that is calling.
                    if reg.peer.addr == peer.addr && caller.line == Some(*l) {
                        continue;
                    }
                    destinations.push((reg.contact.clone(), reg.peer, None, ext.clone()));
                }
                if destinations.is_empty() {
                    self.reply(
                        now,
                        key,
                        &req,
                        StatusCode::TEMPORARILY_UNAVAILABLE,
                        Some("Temporarily Unavailable (not registered)"),
                    );
                    return;
                }
            }
            Target::Trunk(t, number) => {
                let Some(trunk) = self.dir.trunk(*t) else {
                    self.reply(now, key, &req, StatusCode::NOT_FOUND, None);
                    return;
                };
                let addr = trunk.host.as_deref().and_then(parse_host_port);
                let Some(addr) = addr else {
                    self.warn_unknown(
                        "trunk host is not an IP address literal; cannot place the call",
                    );
                    self.reply(
                        now,
                        key,
                        &req,
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some("Service Unavailable (trunk has no usable address)"),
                    );
                    return;
                };
                let transport = match trunk.transport {
                    palaver_store::Transport::Udp => Transport::Udp,
                    palaver_store::Transport::Tcp => Transport::Tcp,
                    palaver_store::Transport::Tls => Transport::Tls,
                };
                let uri = Uri::from_addr(Some(number), addr);
                destinations.push((
                    uri,
                    Peer {
                        transport,
                        addr,
                        conn: None,
                    },
                    Some(*t),
                    number.clone(),
                ));
            }
            Target::Room(room) => {
                let room = *room;
                self.answer_locally(
                    now,
                    key,
                    req,
                    peer,
                    caller,
                    dialled,
                    crate::answered::Purpose::Room(room),
                );
                return;
            }
        }

        let media = match self.setup_call_media(&req) {
            Ok(m) => m,
            Err(r) => {
                self.refuse(now, key, &req, r);
                return;
            }
        };
        let ck = CallKey(self.next_call);
        self.next_call += 1;
        self.media_rooms.insert(media.room, ck);
        let a_tag = palaver_sip::new_tag();
        let b_call_id = palaver_sip::new_call_id();
        let b_tag = palaver_sip::new_tag();
        let mut call = Call {
            a_invite: req.clone(),
            a_tx: key,
            a_peer: peer,
            a_tag,
            a_dialog: None,
            a_final_sent: false,
            ringing_sent: false,
            branches: Vec::new(),
            winner: None,
            b_dialog: None,
            b_call_id,
            b_tag,
            media,
            state: CallState::Ringing,
            caller,
            dialled,
            target,
            started_ms: now_ms,
            answered_ms: None,
        };
        for (uri, bpeer, trunk, callee) in destinations {
            let invite = self.branch_invite(&call, uri, bpeer.transport, &callee, 1);
            match self.layer.send_request(now, bpeer, invite.clone()) {
                Ok(tx) => {
                    let idx = call.branches.len();
                    self.client_owner
                        .insert(tx, (ck, ClientRole::BranchInvite(idx)));
                    call.branches.push(Branch {
                        tx,
                        invite,
                        peer: bpeer,
                        provisional: false,
                        done: false,
                        cancel_wanted: false,
                        status: None,
                        trunk,
                        auth_tries: 0,
                    });
                }
                Err(e) => debug!(error = %e, "branch INVITE not sent"),
            }
        }
        info!(call = ck.0, from = %call.caller.number, to = %call.dialled, branches = call.branches.len(), "call started");
        self.server_owner.insert(key, ck);
        self.dialogs
            .insert((call.b_call_id.clone(), call.b_tag.clone()), ck);
        self.calls.insert(ck, call);
        let timeout = self.config.no_answer_timeout;
        self.schedule(now + timeout, CoreTimer::NoAnswer(ck));
    }

    fn branch_invite(
        &self,
        call: &Call,
        uri: Uri,
        transport: Transport,
        callee: &str,
        cseq: u32,
    ) -> Request {
        let a = &call.a_invite;
        let local = self.local_addr(transport);
        let mut req = Request::new(Method::Invite, uri);
        let h = &mut req.headers;
        h.push(
            HeaderName::Via,
            format!(
                "SIP/2.0/{} {};branch={};rport",
                transport.via_name(),
                local,
                TransactionLayer::new_branch()
            ),
        );
        let mf = a.max_forwards().unwrap_or(70).saturating_sub(1);
        h.push(HeaderName::MaxForwards, mf.to_string());
        let mut from = NameAddr::new(Uri::from_addr(Some(&call.caller.number), local));
        if call.caller.anonymous {
            from = NameAddr::new(Uri::new(Some("anonymous"), "anonymous.invalid", None));
            from.display = Some("Anonymous".into());
        } else {
            from.display = call.caller.name.clone();
        }
        from.set_param("tag", Some(call.b_tag.clone()));
        h.push(HeaderName::From, from.to_string());
        h.push(
            HeaderName::To,
            NameAddr::new(Uri::from_addr(Some(callee), local)).to_string(),
        );
        h.push(HeaderName::CallId, call.b_call_id.clone());
        h.push(
            HeaderName::CSeq,
            CSeq {
                seq: cseq,
                method: Method::Invite,
            }
            .to_string(),
        );
        h.push(
            HeaderName::Contact,
            format!("<{}>", self.contact_uri(Some("palaver"), transport)),
        );
        h.push(HeaderName::Allow, ALLOW);
        h.push(HeaderName::UserAgent, self.config.server_name.clone());
        req.set_body(
            "application/sdp",
            call.media.b_offer.to_string().into_bytes(),
        );
        req
    }

    fn new_session_id(&mut self) -> u64 {
        self.next_session_id += 1;
        self.next_session_id
    }

    /// Anchors a new call's media: a room, A's leg negotiated from its offer
    /// (or an offer of ours when A sent none), B's leg with our offer.
    fn setup_call_media(&mut self, req: &Request) -> Result<CallMedia, Refusal> {
        let caps = self.config.codecs.clone();
        let offer = offer_in(req)?;
        // Preview the negotiation to pick the room's rate before binding.
        let preview = offer
            .as_ref()
            .map(|o| preview(o, &caps, self.config.media_ip))
            .transpose()?;
        let rate = preview
            .as_ref()
            .map(|n| rate_for(n.codec.codec))
            .unwrap_or(8000);
        let room = self
            .media
            .create_room(rate, 4)
            .map_err(Refusal::unavailable)?;
        let legs = self.attach_call_legs(room, &caps, preview.as_ref(), offer.as_ref());
        if legs.is_err() {
            self.media.close_room(room);
        }
        legs
    }

    fn attach_call_legs(
        &mut self,
        room: MediaRoomId,
        caps: &palaver_sdp::LocalCapabilities,
        preview: Option<&palaver_sdp::Negotiated>,
        offer: Option<&Session>,
    ) -> Result<CallMedia, Refusal> {
        let ip = self.config.media_ip;
        let a_spec = match preview {
            Some(n) => spec_from(n, true, true),
            None => placeholder_spec(true, true),
        };
        let (a, a_local) = self
            .media
            .add_participant(room, a_spec)
            .map_err(Refusal::unavailable)?;
        let (b, b_local) = self
            .media
            .add_participant(room, placeholder_spec(true, true))
            .map_err(Refusal::unavailable)?;
        let mut a_sdp =
            SdpSession::new(caps.clone(), self.new_session_id(), advertised(a_local, ip));
        let mut b_sdp =
            SdpSession::new(caps.clone(), self.new_session_id(), advertised(b_local, ip));
        let (a_body, a_waiting) = match answer_or_offer(&mut a_sdp, offer)? {
            LegBody::Answer { body, .. } => (body, false),
            LegBody::Offer { body } => (body, true),
        };
        let b_offer = b_sdp.create_offer();
        Ok(CallMedia {
            room,
            a,
            a_sdp,
            b,
            b_sdp,
            b_offer,
            awaiting_ack_answer: [a_waiting, false],
            a_body,
        })
    }

    pub(crate) fn on_response(&mut self, now: Instant, key: TxKey, resp: Response) {
        let Some(&(ck, role)) = self.client_owner.get(&key) else {
            return;
        };
        if resp.status.is_final()
            && !(resp.status.is_success() && matches!(role, ClientRole::BranchInvite(_)))
        {
            self.client_owner.remove(&key);
        }
        match role {
            ClientRole::BranchInvite(i) => self.on_branch_response(now, ck, i, resp),
            ClientRole::Cancel | ClientRole::Bye => {}
            ClientRole::Relay { to, origin } => self.on_relay_response(now, ck, to, origin, resp),
        }
    }

    fn on_branch_response(&mut self, now: Instant, ck: CallKey, i: usize, resp: Response) {
        let status = resp.status;
        if status.is_provisional() {
            let Some(call) = self.calls.get_mut(&ck) else {
                return;
            };
            let Some(branch) = call.branches.get_mut(i) else {
                return;
            };
            branch.provisional = true;
            if branch.cancel_wanted && !branch.done {
                let (tx_req, peer) = (branch.invite.clone(), branch.peer);
                self.send_cancel(now, ck, &tx_req, peer);
                return;
            }
            // Media is anchored: A hears its own phone's ringback (B's early
            // media is not relayed), so one 180 is all A needs.
            if status.0 > 100
                && call.state == CallState::Ringing
                && !call.a_final_sent
                && !call.ringing_sent
            {
                call.ringing_sent = true;
                let mut r = Response::for_request(&call.a_invite, StatusCode::RINGING);
                r.set_to_tag(&call.a_tag);
                r.headers.push(
                    HeaderName::Contact,
                    format!(
                        "<{}>",
                        contact_uri_in(&self.config.local, Some("palaver"), call.a_peer.transport)
                    ),
                );
                let a_tx = call.a_tx;
                self.respond(now, a_tx, r);
            }
            return;
        }

        if status.is_success() {
            self.on_branch_answered(now, ck, i, resp);
            return;
        }

        // A failure on this branch.
        let mut retry: Option<(Request, Peer)> = None;
        {
            let Some(call) = self.calls.get_mut(&ck) else {
                return;
            };
            let Some(branch) = call.branches.get_mut(i) else {
                return;
            };
            if (status == StatusCode::UNAUTHORIZED || status == StatusCode::PROXY_AUTH_REQUIRED)
                && branch.auth_tries < 1
                && !branch.cancel_wanted
                && let Some(t) = branch.trunk
                && let Some(trunk) = self.dir.trunk(t)
                && let (Some(user), Some(pw)) = (&trunk.username, &trunk.password)
                && let Some(req) = authorized_retry(&branch.invite, &resp, user, pw)
            {
                branch.auth_tries += 1;
                retry = Some((req, branch.peer));
            } else {
                branch.done = true;
                branch.status = Some(status);
            }
        }
        if let Some((req, peer)) = retry {
            if let Ok(tx) = self.layer.send_request(now, peer, req.clone()) {
                self.client_owner
                    .insert(tx, (ck, ClientRole::BranchInvite(i)));
                if let Some(call) = self.calls.get_mut(&ck)
                    && let Some(b) = call.branches.get_mut(i)
                {
                    b.tx = tx;
                    b.invite = req;
                }
            }
            return;
        }
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        if call.winner.is_some() || call.a_final_sent || !call.branches.iter().all(|b| b.done) {
            return;
        }
        let best = best_failure(call.branches.iter().filter_map(|b| b.status));
        let (a_tx, a_invite) = (call.a_tx, call.a_invite.clone());
        self.reply_a(now, ck, a_tx, &a_invite, best);
        self.end_call(now, ck, disposition_for(best));
    }

    fn reply_a(
        &mut self,
        now: Instant,
        ck: CallKey,
        a_tx: TxKey,
        a_invite: &Request,
        status: StatusCode,
    ) {
        let tag = self
            .calls
            .get(&ck)
            .map(|c| c.a_tag.clone())
            .unwrap_or_else(palaver_sip::new_tag);
        let mut r = Response::for_request(a_invite, status);
        r.set_to_tag(&tag);
        if let Some(c) = self.calls.get_mut(&ck) {
            c.a_final_sent = true;
        }
        self.respond(now, a_tx, r);
    }

    fn on_branch_answered(&mut self, now: Instant, ck: CallKey, i: usize, resp: Response) {
        let now_ms = self.wall_ms(now);
        let local = &self.config.local;
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let Some(branch) = call.branches.get(i) else {
            return;
        };
        let invite_seq = branch.invite.cseq().map(|c| c.seq).unwrap_or(1);
        let bpeer = branch.peer;
        let sent_by = local_addr_in(local, bpeer.transport).to_string();

        // A retransmitted 2xx of the winning branch: ACK again.
        if call.winner == Some(i) {
            if let Some(d) = &call.b_dialog {
                let ack = d.ack(invite_seq, &sent_by);
                self.layer
                    .send_stateless(bpeer, palaver_sip::Message::Request(ack));
            }
            return;
        }
        let Some(mut dialog) = Dialog::uac(&branch.invite, &resp, bpeer) else {
            return;
        };
        if call.winner.is_some() || call.a_final_sent {
            // Too late (another device answered, or the caller gave up):
            // acknowledge and hang this one up.
            let ack = dialog.ack(invite_seq, &sent_by);
            self.layer
                .send_stateless(bpeer, palaver_sip::Message::Request(ack));
            let bye = dialog.new_request(Method::Bye, &sent_by);
            if let Ok(tx) = self.layer.send_request(now, bpeer, bye) {
                self.client_owner.insert(tx, (ck, ClientRole::Bye));
            }
            return;
        }
        let ack = dialog.ack(invite_seq, &sent_by);
        self.layer
            .send_stateless(bpeer, palaver_sip::Message::Request(ack));
        // B's answer to our offer decides B's codec and address.
        let negotiated = take_answer(&mut call.media.b_sdp, &resp.body);
        let negotiated = match negotiated {
            Ok(n) => n,
            Err(why) => {
                info!(call = ck.0, %why, "callee's SDP answer is unusable: hanging up");
                let bye = dialog.new_request(Method::Bye, &sent_by);
                if let Ok(tx) = self.layer.send_request(now, bpeer, bye) {
                    self.client_owner.insert(tx, (ck, ClientRole::Bye));
                }
                if let Some(b) = call.branches.get_mut(i) {
                    b.done = true;
                    b.status = Some(StatusCode::NOT_ACCEPTABLE_HERE);
                }
                self.cancel_branches(now, ck);
                if let Some(call) = self.calls.get(&ck) {
                    let (a_tx, a_invite) = (call.a_tx, call.a_invite.clone());
                    self.reply_a(now, ck, a_tx, &a_invite, StatusCode::NOT_ACCEPTABLE_HERE);
                }
                self.end_call(now, ck, Disposition::Failed);
                return;
            }
        };
        let (room, b_pid) = (call.media.room, call.media.b);
        call.winner = Some(i);
        call.state = CallState::Answered;
        call.answered_ms = Some(now_ms);
        if let Some(b) = call.branches.get_mut(i) {
            b.done = true;
            b.status = Some(resp.status);
        }
        for cmd in update_commands(b_pid, &negotiated) {
            self.media.command(room, cmd);
        }
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        // Cancel the other branches.
        let mut cancels = Vec::new();
        for (j, b) in call.branches.iter_mut().enumerate() {
            if j != i && !b.done {
                b.cancel_wanted = true;
                if b.provisional {
                    cancels.push((b.invite.clone(), b.peer));
                }
            }
        }
        // Answer A.
        let a_contact = contact_uri_in(local, Some("palaver"), call.a_peer.transport);
        let mut ok = Response::for_request(&call.a_invite, StatusCode::OK);
        ok.set_to_tag(&call.a_tag);
        ok.headers
            .push(HeaderName::Contact, format!("<{a_contact}>"));
        ok.headers.push(HeaderName::Allow, ALLOW);
        ok.headers.push(HeaderName::Supported, "");
        for rr in call.a_invite.headers.get_all(&HeaderName::RecordRoute) {
            ok.headers.push(HeaderName::RecordRoute, rr);
        }
        ok.set_body("application/sdp", call.media.a_body.clone());
        let a_dialog = Dialog::uas(&call.a_invite, &call.a_tag.clone(), a_contact, call.a_peer);
        call.a_dialog = a_dialog;
        call.a_final_sent = true;
        call.b_dialog = Some({
            dialog.local_contact = contact_uri_in(local, Some("palaver"), bpeer.transport);
            dialog
        });
        let a_key = (
            call.a_invite.call_id().unwrap_or_default().to_owned(),
            call.a_tag.clone(),
        );
        let a_tx = call.a_tx;
        info!(call = ck.0, "call answered");
        self.dialogs.insert(a_key, ck);
        self.respond(now, a_tx, ok);
        for (inv, peer) in cancels {
            self.send_cancel(now, ck, &inv, peer);
        }
    }

    fn send_cancel(&mut self, now: Instant, ck: CallKey, invite: &Request, peer: Peer) {
        let cancel = build_cancel(invite);
        if let Ok(tx) = self.layer.send_request(now, peer, cancel) {
            self.client_owner.insert(tx, (ck, ClientRole::Cancel));
        }
    }

    pub(crate) fn on_cancelled(&mut self, now: Instant, invite: TxKey) {
        let Some(&ck) = self.server_owner.get(&invite) else {
            return;
        };
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        if call.a_final_sent {
            return;
        }
        let (a_tx, a_invite) = (call.a_tx, call.a_invite.clone());
        info!(call = ck.0, "caller cancelled");
        self.cancel_branches(now, ck);
        self.reply_a(now, ck, a_tx, &a_invite, StatusCode::REQUEST_TERMINATED);
        self.end_call(now, ck, Disposition::Cancelled);
    }

    fn cancel_branches(&mut self, now: Instant, ck: CallKey) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let mut cancels = Vec::new();
        for b in call.branches.iter_mut() {
            if !b.done {
                b.cancel_wanted = true;
                if b.provisional {
                    cancels.push((b.invite.clone(), b.peer));
                }
            }
        }
        for (inv, peer) in cancels {
            self.send_cancel(now, ck, &inv, peer);
        }
    }

    pub(crate) fn no_answer(&mut self, now: Instant, ck: CallKey) {
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        if call.state != CallState::Ringing || call.a_final_sent {
            return;
        }
        let (a_tx, a_invite, tag) = (call.a_tx, call.a_invite.clone(), call.a_tag.clone());
        info!(call = ck.0, "no answer");
        self.cancel_branches(now, ck);
        let mut r = Response::for_request(&a_invite, StatusCode::TEMPORARILY_UNAVAILABLE)
            .with_reason("No Answer");
        r.set_to_tag(&tag);
        if let Some(c) = self.calls.get_mut(&ck) {
            c.a_final_sent = true;
        }
        self.respond(now, a_tx, r);
        self.end_call(now, ck, Disposition::NoAnswer);
    }

    pub(crate) fn on_client_timeout(&mut self, now: Instant, key: TxKey) {
        let Some((ck, role)) = self.client_owner.remove(&key) else {
            return;
        };
        match role {
            ClientRole::BranchInvite(i) => {
                let mut r = Response::new(StatusCode::REQUEST_TIMEOUT);
                // Synthesise a 408 so the normal failure path runs.
                if let Some(call) = self.calls.get(&ck)
                    && let Some(b) = call.branches.get(i)
                {
                    r = Response::for_request(&b.invite, StatusCode::REQUEST_TIMEOUT);
                }
                self.on_branch_response(now, ck, i, r);
            }
            ClientRole::Relay { origin, .. } => {
                if let Some(req) = self.layer.server_request(origin).cloned() {
                    self.reply(now, origin, &req, StatusCode::REQUEST_TIMEOUT, None);
                }
            }
            ClientRole::Cancel | ClientRole::Bye => {}
        }
    }

    pub(crate) fn on_ack_timeout(&mut self, now: Instant, key: TxKey) {
        let Some(&ck) = self.server_owner.get(&key) else {
            return;
        };
        if self.answered.calls.contains_key(&ck) {
            info!(
                call = ck.0,
                "caller never acknowledged the answer: hanging up"
            );
            self.hang_up_answered(now, ck);
            return;
        }
        if self
            .calls
            .get(&ck)
            .is_some_and(|c| c.state == CallState::Answered)
        {
            info!(
                call = ck.0,
                "caller never acknowledged the answer: hanging up"
            );
            self.bye_side(now, ck, Side::B);
            self.bye_side(now, ck, Side::A);
            self.end_call(now, ck, Disposition::Failed);
        }
    }

    pub(crate) fn on_ack(&mut self, now: Instant, req: Request) {
        let (Some(cid), Some(tag)) = (req.call_id(), req.to_tag()) else {
            return;
        };
        let Some(&ck) = self.dialogs.get(&(cid.to_owned(), tag)) else {
            return;
        };
        if self.answered.calls.contains_key(&ck) {
            self.on_answered_ack(now, ck, &req);
            return;
        }
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let side = if call.a_invite.call_id() == Some(cid) {
            Side::A
        } else {
            Side::B
        };
        if side == Side::A && call.state == CallState::Answered {
            call.state = CallState::Confirmed;
        }
        // An offer of ours went out in a 2xx: the ACK carries the answer.
        let (pid, idx) = call.media.leg(side);
        if std::mem::take(&mut call.media.awaiting_ack_answer[idx]) {
            let room = call.media.room;
            let negotiated = take_answer(call.media.sdp(side), &req.body);
            match negotiated {
                Ok(n) => {
                    for cmd in update_commands(pid, &n) {
                        self.media.command(room, cmd);
                    }
                }
                Err(why) => {
                    info!(call = ck.0, %why, "no usable SDP answer in the ACK: hanging up");
                    self.bye_side(now, ck, Side::A);
                    self.bye_side(now, ck, Side::B);
                    self.end_call(now, ck, Disposition::Failed);
                }
            }
        }
    }

    pub(crate) fn on_in_dialog_request(
        &mut self,
        now: Instant,
        key: TxKey,
        req: Request,
        _peer: Peer,
    ) {
        let (Some(cid), Some(tag)) = (req.call_id().map(str::to_owned), req.to_tag()) else {
            self.reply(now, key, &req, StatusCode::CALL_DOES_NOT_EXIST, None);
            return;
        };
        let Some(&ck) = self.dialogs.get(&(cid.clone(), tag)) else {
            self.reply(now, key, &req, StatusCode::CALL_DOES_NOT_EXIST, None);
            return;
        };
        if self.answered.calls.contains_key(&ck) {
            self.on_answered_in_dialog(now, ck, key, req);
            return;
        }
        let Some(call) = self.calls.get_mut(&ck) else {
            self.reply(now, key, &req, StatusCode::CALL_DOES_NOT_EXIST, None);
            return;
        };
        let side = if call.a_invite.call_id() == Some(cid.as_str()) {
            Side::A
        } else {
            Side::B
        };
        let dialog = match side {
            Side::A => call.a_dialog.as_mut(),
            Side::B => call.b_dialog.as_mut(),
        };
        let Some(dialog) = dialog else {
            // B sent something before it answered (early dialog): not supported.
            self.reply(now, key, &req, StatusCode::CALL_DOES_NOT_EXIST, None);
            return;
        };
        if !dialog.accept_remote_cseq(&req) {
            self.reply(
                now,
                key,
                &req,
                StatusCode::SERVER_INTERNAL_ERROR,
                Some("Server Internal Error (CSeq out of order)"),
            );
            return;
        }
        if req.method == Method::Invite {
            dialog.refresh_target(&req);
        }
        match req.method {
            Method::Bye => {
                self.reply(now, key, &req, StatusCode::OK, None);
                info!(call = ck.0, side = ?side, "hung up");
                self.bye_side(now, ck, side.other());
                self.end_call(now, ck, Disposition::Answered);
            }
            Method::Invite => self.on_reinvite(now, ck, side, key, req),
            Method::Info => {
                let digit = req
                    .content_type()
                    .and_then(|ct| palaver_sip::dtmf_info::parse_dtmf_info(&ct, &req.body));
                match (digit, self.calls.get(&ck)) {
                    (Some(d), Some(call)) => {
                        // The media room merges it with RFC 4733 and in-band
                        // forms and relays it to the other leg.
                        let (pid, _) = call.media.leg(side);
                        let room = call.media.room;
                        let dur = Duration::from_millis(u64::from(d.duration_ms.unwrap_or(160)));
                        self.media.dtmf_info(room, pid, d.digit, dur);
                        self.reply(now, key, &req, StatusCode::OK, None);
                    }
                    _ => self.relay(now, ck, side, key, req),
                }
            }
            _ => {
                let mut r = Response::for_request(&req, StatusCode::METHOD_NOT_ALLOWED);
                r.headers.push(HeaderName::Allow, ALLOW);
                self.respond(now, key, r);
            }
        }
    }

    /// A re-INVITE: media is anchored here, so it is answered locally (new
    /// codec or address, hold and resume) and the other leg is untouched —
    /// except that it hears music while this one holds the call.
    fn on_reinvite(&mut self, now: Instant, ck: CallKey, side: Side, key: TxKey, req: Request) {
        let moh = self.config.music_on_hold.clone();
        let local = &self.config.local;
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let transport = match side {
            Side::A => call.a_peer.transport,
            Side::B => call
                .b_dialog
                .as_ref()
                .map(|d| d.peer.transport)
                .unwrap_or(Transport::Udp),
        };
        let contact = contact_uri_in(local, Some("palaver"), transport);
        let (pid, idx) = call.media.leg(side);
        let (other, _) = call.media.leg(side.other());
        let room = call.media.room;
        let body = offer_in(&req).and_then(|o| answer_or_offer(call.media.sdp(side), o.as_ref()));
        let mut ok = Response::for_request(&req, StatusCode::OK);
        ok.headers.push(HeaderName::Contact, format!("<{contact}>"));
        match body {
            Err(r) => {
                self.refuse(now, key, &req, r);
                return;
            }
            // Delayed offer: ours goes in the 200, the answer in the ACK.
            Ok(LegBody::Offer { body }) => {
                call.media.awaiting_ack_answer[idx] = true;
                ok.set_body("application/sdp", body);
            }
            Ok(LegBody::Answer { body, negotiated }) => {
                let holding = !negotiated.remote_direction.can_send();
                for cmd in update_commands(pid, &negotiated) {
                    self.media.command(room, cmd);
                }
                self.media
                    .music_on_hold(room, other, if holding { moh.as_deref() } else { None });
                info!(call = ck.0, side = ?side, holding, "re-INVITE answered");
                ok.set_body("application/sdp", body);
            }
        }
        self.respond(now, key, ok);
    }

    /// Relays an in-dialog request from `from` to the other leg.
    fn relay(&mut self, now: Instant, ck: CallKey, from: Side, origin: TxKey, req: Request) {
        let to = from.other();
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let target = match to {
            Side::A => call.a_dialog.as_mut(),
            Side::B => call.b_dialog.as_mut(),
        };
        let Some(d) = target else {
            self.reply(now, origin, &req, StatusCode::REQUEST_PENDING, None);
            return;
        };
        let sent_by = local_addr_in(&self.config.local, d.peer.transport).to_string();
        let mut out = d.new_request(req.method.clone(), &sent_by);
        let peer = d.peer;
        if !req.body.is_empty() {
            let ct = req
                .headers
                .get(&HeaderName::ContentType)
                .unwrap_or("application/octet-stream")
                .to_owned();
            out.set_body(&ct, req.body.clone());
        }
        match self.layer.send_request(now, peer, out) {
            Ok(tx) => {
                self.client_owner
                    .insert(tx, (ck, ClientRole::Relay { to, origin }));
            }
            Err(_) => self.reply(now, origin, &req, StatusCode::SERVER_INTERNAL_ERROR, None),
        }
    }

    fn on_relay_response(
        &mut self,
        now: Instant,
        ck: CallKey,
        to: Side,
        origin: TxKey,
        resp: Response,
    ) {
        // ACK a 2xx to a relayed re-INVITE on the leg we sent it to.
        let local = &self.config.local;
        if resp.status.is_success()
            && resp.cseq().is_some_and(|c| c.method == Method::Invite)
            && let Some(call) = self.calls.get_mut(&ck)
        {
            let d = match to {
                Side::A => call.a_dialog.as_mut(),
                Side::B => call.b_dialog.as_mut(),
            };
            if let Some(d) = d {
                d.refresh_target(&resp);
                let seq = resp.cseq().map(|c| c.seq).unwrap_or(0);
                let sent_by = local_addr_in(local, d.peer.transport).to_string();
                let ack = d.ack(seq, &sent_by);
                let peer = d.peer;
                self.layer
                    .send_stateless(peer, palaver_sip::Message::Request(ack));
            }
        }
        if resp.status.0 == 100 {
            return;
        }
        let Some(orig) = self.layer.server_request(origin).cloned() else {
            return;
        };
        let mut r = Response::for_request(&orig, resp.status).with_reason(&resp.reason);
        if !resp.body.is_empty() {
            let ct = resp
                .headers
                .get(&HeaderName::ContentType)
                .unwrap_or("application/sdp")
                .to_owned();
            r.set_body(&ct, resp.body.clone());
        }
        if resp.status.is_success()
            && orig.method == Method::Invite
            && let Some(call) = self.calls.get(&ck)
        {
            let t = if to == Side::A { Side::B } else { Side::A };
            let transport = match t {
                Side::A => call.a_peer.transport,
                Side::B => call
                    .b_dialog
                    .as_ref()
                    .map(|d| d.peer.transport)
                    .unwrap_or(Transport::Udp),
            };
            r.headers.push(
                HeaderName::Contact,
                format!("<{}>", self.contact_uri(Some("palaver"), transport)),
            );
        }
        self.respond(now, origin, r);
    }

    /// A media event of a call's room: a leg whose RTP stopped is hung up
    /// (the phone vanished without a BYE).
    pub(crate) fn on_call_media_event(
        &mut self,
        now: Instant,
        ck: CallKey,
        ev: palaver_media::room::MediaEvent,
    ) {
        if let palaver_media::room::MediaEvent::RtpTimeout { participant } = ev {
            let Some(call) = self.calls.get(&ck) else {
                return;
            };
            if call.state == CallState::Ringing {
                return;
            }
            info!(call = ck.0, %participant, "no RTP from a leg: hanging up");
            self.bye_side(now, ck, Side::A);
            self.bye_side(now, ck, Side::B);
            self.end_call(now, ck, Disposition::Answered);
        }
    }

    /// Sends BYE on one leg if it has a dialog.
    pub(crate) fn bye_side(&mut self, now: Instant, ck: CallKey, side: Side) {
        let Some(call) = self.calls.get_mut(&ck) else {
            return;
        };
        let d = match side {
            Side::A => call.a_dialog.as_mut(),
            Side::B => call.b_dialog.as_mut(),
        };
        let Some(d) = d else { return };
        let sent_by = local_addr_in(&self.config.local, d.peer.transport).to_string();
        let bye = d.new_request(Method::Bye, &sent_by);
        let peer = d.peer;
        if let Ok(tx) = self.layer.send_request(now, peer, bye) {
            self.client_owner.insert(tx, (ck, ClientRole::Bye));
        }
    }

    /// Ends a call whatever its state (shutdown, admin action).
    pub(crate) fn hang_up(&mut self, now: Instant, ck: CallKey, status: StatusCode, reason: &str) {
        let Some(call) = self.calls.get(&ck) else {
            return;
        };
        if !call.a_final_sent {
            let (a_tx, a_invite, tag) = (call.a_tx, call.a_invite.clone(), call.a_tag.clone());
            self.cancel_branches(now, ck);
            let mut r = Response::for_request(&a_invite, status).with_reason(reason);
            r.set_to_tag(&tag);
            if let Some(c) = self.calls.get_mut(&ck) {
                c.a_final_sent = true;
            }
            self.respond(now, a_tx, r);
        } else {
            self.bye_side(now, ck, Side::A);
        }
        self.bye_side(now, ck, Side::B);
        self.end_call(now, ck, Disposition::Failed);
    }

    /// Forgets a call and writes its CDR.
    pub(crate) fn end_call(&mut self, now: Instant, ck: CallKey, disposition: Disposition) {
        let Some(call) = self.calls.remove(&ck) else {
            return;
        };
        self.server_owner.remove(&call.a_tx);
        self.media.close_room(call.media.room);
        self.media_rooms.remove(&call.media.room);
        self.dialogs
            .remove(&(call.b_call_id.clone(), call.b_tag.clone()));
        if let Some(cid) = call.a_invite.call_id() {
            self.dialogs.remove(&(cid.to_owned(), call.a_tag.clone()));
        }
        // Client transactions still in flight (BYE, CANCEL) keep their owner
        // entry until they finish; branch INVITEs are dropped now.
        self.client_owner.retain(|_, (k, role)| {
            *k != ck || matches!(role, ClientRole::Bye | ClientRole::Cancel)
        });
        let ended = self.wall_ms(now);
        let disposition = if call.answered_ms.is_some() {
            Disposition::Answered
        } else {
            disposition
        };
        let from_uri = call
            .a_invite
            .from_header()
            .map(|f| f.uri.to_string())
            .unwrap_or_default();
        self.store(StoreOp::InsertCdr(NewCdr {
            call_id: call.a_invite.call_id().unwrap_or_default().to_owned(),
            from_uri,
            to_uri: call.a_invite.uri.to_string(),
            caller: call.caller.number.clone(),
            callee: call.dialled.clone(),
            destination_kind: match call.target {
                Target::Line(_) => "line".into(),
                Target::Room(_) => "room".into(),
                Target::Trunk(..) => "trunk".into(),
            },
            started_at: call.started_ms,
            answered_at: call.answered_ms,
            ended_at: ended,
            disposition,
        }));
        debug!(call = ck.0, ?disposition, "call ended");
    }
}

fn caller_from_request(req: &Request, line: Option<LineId>, trunk: Option<TrunkId>) -> Caller {
    let from = req.from_header();
    let pai = req
        .headers
        .get(&HeaderName::PAssertedIdentity)
        .and_then(|v| NameAddr::parse(v.split(',').next().unwrap_or(v)).ok());
    let privacy_id = req.headers.get(&HeaderName::Privacy).is_some_and(|p| {
        p.split(';').any(|t| {
            matches!(
                t.trim().to_ascii_lowercase().as_str(),
                "id" | "user" | "header"
            )
        })
    });
    let source = pai.as_ref().or(from.as_ref());
    let number = source.and_then(|f| f.uri.user.clone()).unwrap_or_default();
    let anonymous = privacy_id
        || number.is_empty()
        || number.eq_ignore_ascii_case("anonymous")
        || from
            .as_ref()
            .is_some_and(|f| f.uri.host.eq_ignore_ascii_case("anonymous.invalid"));
    Caller {
        number,
        name: source.and_then(|f| f.display.clone()),
        line,
        trunk,
        anonymous,
    }
}

/// §9.1: CANCEL copies the INVITE's Request-URI, top Via, Call-ID, From, To,
/// CSeq number and Route.
fn build_cancel(invite: &Request) -> Request {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(v) = invite.top_via() {
        c.headers.push(HeaderName::Via, v.to_string());
    }
    c.headers.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            c.headers.push(name, v);
        }
    }
    if let Some(cs) = invite.cseq() {
        c.headers.push(
            HeaderName::CSeq,
            CSeq {
                seq: cs.seq,
                method: Method::Cancel,
            }
            .to_string(),
        );
    }
    for r in invite.headers.get_all(&HeaderName::Route) {
        c.headers.push(HeaderName::Route, r);
    }
    c
}

/// The INVITE again with credentials answering a trunk's challenge.
fn authorized_retry(
    invite: &Request,
    resp: &Response,
    user: &str,
    password: &str,
) -> Option<Request> {
    let (challenge_header, auth_header) = if resp.status == StatusCode::PROXY_AUTH_REQUIRED {
        (
            HeaderName::ProxyAuthenticate,
            HeaderName::ProxyAuthorization,
        )
    } else {
        (HeaderName::WwwAuthenticate, HeaderName::Authorization)
    };
    let challenge = resp
        .headers
        .get_all(&challenge_header)
        .filter_map(|v| palaver_sip::auth::Challenge::parse(v).ok())
        .next()?;
    let creds = palaver_sip::auth::Credentials::answer(
        &challenge,
        "INVITE",
        &invite.uri.to_string(),
        user,
        password,
        1,
        &palaver_sip::random_token(12),
    );
    let mut req = invite.clone();
    let mut via = req.top_via()?;
    via.set_param("branch", Some(TransactionLayer::new_branch()));
    req.headers.0.retain(|h| h.name != HeaderName::Via);
    req.headers.push_front(HeaderName::Via, via.to_string());
    let seq = invite.cseq()?.seq + 1;
    req.headers.set(
        HeaderName::CSeq,
        CSeq {
            seq,
            method: Method::Invite,
        }
        .to_string(),
    );
    req.headers.push(auth_header, creds.to_header_value());
    Some(req)
}

/// RFC 3261 §16.7-ish choice of the response to give the caller when every
/// branch failed.
fn best_failure(statuses: impl Iterator<Item = StatusCode>) -> StatusCode {
    let all: Vec<StatusCode> = statuses.collect();
    if let Some(s) = all.iter().find(|s| s.0 >= 600) {
        return *s;
    }
    if all.contains(&StatusCode::BUSY_HERE) {
        return StatusCode::BUSY_HERE;
    }
    let useful = all
        .iter()
        .filter(|s| !matches!(s.0, 401 | 407 | 408 | 503))
        .min_by_key(|s| s.0);
    match useful {
        Some(s) if s.0 < 500 => *s,
        _ => StatusCode::TEMPORARILY_UNAVAILABLE,
    }
}

fn disposition_for(s: StatusCode) -> Disposition {
    match s.0 {
        486 | 600 => Disposition::Busy,
        408 | 480 => Disposition::NoAnswer,
        _ => Disposition::Failed,
    }
}

fn parse_host_port(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    let ip: std::net::IpAddr = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(std::net::SocketAddr::new(ip, 5060))
}
