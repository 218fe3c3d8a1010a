//! Calls the PBX answers itself: callers joining a conference room, and the
//! tone-test number (answers, plays one second of tone, hangs up).
//!
//! An [`AnsweredCall`] is one SIP dialog with one media participant. For a
//! room, the participant sits in the room's shared `MediaRoom` (created with
//! the first caller, closed when the conference layer says the room is
//! empty) and the caller is handed to [`palaver_conference::Conference`]
//! once its ACK arrives: from then on the conference logic decides what the
//! caller hears, and this module carries out its actions (media commands,
//! hang-ups, recordings, reports, events for the web layer).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use palaver_conference::{
    ConferenceAction, ConferenceReport, JoinRequest, ParticipantRecord, RoomEvent,
};
use palaver_media::room::{MediaEvent, ParticipantId, RoomCommand};
use palaver_media::source::{Playback, Tone, ToneStep};
use palaver_sdp::SdpSession;
use palaver_sip::{
    Dialog, HeaderName, Method, Peer, Request, Response, SipMessage, StatusCode, TxKey,
};
use palaver_store::{Disposition, NewCdr, NewRecording, RoomId};
use tracing::{debug, info, warn};

use crate::call::{CallKey, Caller, ClientRole};
use crate::core::{ALLOW, Pbx, StoreOp, contact_uri_in, local_addr_in};
use crate::media::{
    LegBody, MediaRoomId, Refusal, advertised, answer_or_offer, offer_in, preview, rate_for,
    spec_from, take_answer, update_commands,
};

/// What an answered call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Room(RoomId),
    ToneTest,
}

#[derive(Debug)]
pub(crate) struct AnsweredCall {
    pub(crate) purpose: Purpose,
    pub(crate) media: MediaRoomId,
    pub(crate) pid: ParticipantId,
    pub(crate) invite: Request,
    pub(crate) tx: TxKey,
    pub(crate) peer: Peer,
    pub(crate) tag: String,
    pub(crate) dialog: Option<Dialog>,
    pub(crate) sdp: SdpSession,
    pub(crate) awaiting_ack_answer: bool,
    /// Handed to the conference (rooms) or tone started (tone test).
    pub(crate) started: bool,
    pub(crate) caller: Caller,
    pub(crate) dialled: String,
    pub(crate) started_ms: i64,
}

/// A conference room's shared media room.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomMedia {
    pub(crate) media: MediaRoomId,
    pub(crate) rate: u32,
}

/// A recording the media engine is writing, keyed by the engine's id.
#[derive(Debug, Clone)]
pub(crate) struct RecordingInFlight {
    pub(crate) room: RoomId,
    pub(crate) conference_id: u64,
    pub(crate) stopped: Option<(i64, i64, Vec<ParticipantRecord>)>,
}

/// The playback id of the tone test's tone.
const TONE_TEST_PLAYBACK: u64 = 900;

/// Everything the answered-calls side of the core keeps.
#[derive(Debug, Default)]
pub(crate) struct AnsweredState {
    pub(crate) calls: HashMap<CallKey, AnsweredCall>,
    pub(crate) by_participant: HashMap<(MediaRoomId, ParticipantId), CallKey>,
    pub(crate) rooms: HashMap<RoomId, RoomMedia>,
    pub(crate) media_to_room: HashMap<MediaRoomId, RoomId>,
    pub(crate) recordings: HashMap<u64, RecordingInFlight>,
    pub(crate) engine_recording: HashMap<(RoomId, u64), u64>,
}

impl Pbx {
    /// Answers `req` ourselves: negotiate, attach to media, 200 OK.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn answer_locally(
        &mut self,
        now: Instant,
        key: TxKey,
        req: Request,
        peer: Peer,
        caller: Caller,
        dialled: String,
        purpose: Purpose,
    ) {
        if let Purpose::Room(room) = purpose
            && self.dir.room(room).is_none()
        {
            self.reply(
                now,
                key,
                &req,
                StatusCode::NOT_FOUND,
                Some("Not Found (no such room)"),
            );
            return;
        }
        let caps = self.config.codecs.clone();
        let ip = self.config.media_ip;
        let prepared = offer_in(&req).and_then(|offer| {
            let preview = offer.as_ref().map(|o| preview(o, &caps, ip)).transpose()?;
            Ok((offer, preview))
        });
        let (offer, preview) = match prepared {
            Ok(v) => v,
            Err(r) => return self.refuse(now, key, &req, r),
        };
        let media = match self.media_room_for(purpose, preview.as_ref()) {
            Ok(m) => m,
            Err(r) => return self.refuse(now, key, &req, r),
        };
        let spec = match &preview {
            // Room callers are not mixed until the conference admits them.
            Some(n) => spec_from(n, purpose == Purpose::ToneTest, false),
            None => crate::media::placeholder_spec(false, false),
        };
        let (pid, local) = match self.media.add_participant(media, spec) {
            Ok(v) => v,
            Err(e) => {
                if purpose == Purpose::ToneTest {
                    self.media.close_room(media);
                }
                return self.refuse(now, key, &req, Refusal::unavailable(e));
            }
        };
        self.next_session_id += 1;
        let mut sdp = SdpSession::new(caps, self.next_session_id, advertised(local, ip));
        let (body, awaiting) = match answer_or_offer(&mut sdp, offer.as_ref()) {
            Ok(LegBody::Answer { body, .. }) => (body, false),
            Ok(LegBody::Offer { body }) => (body, true),
            Err(r) => {
                match purpose {
                    Purpose::ToneTest => self.media.close_room(media),
                    Purpose::Room(_) => self.media.remove_participant(media, pid),
                }
                return self.refuse(now, key, &req, r);
            }
        };
        let tag = palaver_sip::new_tag();
        let contact = contact_uri_in(&self.config.local, Some("palaver"), peer.transport);
        let mut ok = Response::for_request(&req, StatusCode::OK);
        ok.set_to_tag(&tag);
        ok.headers.push(HeaderName::Contact, format!("<{contact}>"));
        ok.headers.push(HeaderName::Allow, ALLOW);
        ok.headers.push(HeaderName::Supported, "");
        for rr in req.headers.get_all(&HeaderName::RecordRoute) {
            ok.headers.push(HeaderName::RecordRoute, rr);
        }
        ok.set_body("application/sdp", body);
        let dialog = Dialog::uas(&req, &tag, contact, peer);
        let ck = CallKey(self.next_call);
        self.next_call += 1;
        if let Some(cid) = req.call_id() {
            self.dialogs.insert((cid.to_owned(), tag.clone()), ck);
        }
        self.server_owner.insert(key, ck);
        self.answered.by_participant.insert((media, pid), ck);
        let started_ms = self.wall_ms(now);
        info!(call = ck.0, from = %caller.number, to = %dialled, ?purpose, "answered");
        self.answered.calls.insert(
            ck,
            AnsweredCall {
                purpose,
                media,
                pid,
                invite: req,
                tx: key,
                peer,
                tag,
                dialog,
                sdp,
                awaiting_ack_answer: awaiting,
                started: false,
                caller,
                dialled,
                started_ms,
            },
        );
        self.respond(now, key, ok);
    }

    /// The media room a caller answered for `purpose` joins: the room's
    /// shared one (created with its first caller), or one of its own.
    fn media_room_for(
        &mut self,
        purpose: Purpose,
        preview: Option<&palaver_sdp::Negotiated>,
    ) -> Result<MediaRoomId, Refusal> {
        match purpose {
            Purpose::Room(room) => {
                if let Some(m) = self.answered.rooms.get(&room) {
                    return Ok(m.media);
                }
                let rate = self.config.conference_rate;
                let m = self
                    .media
                    .create_room(rate, self.config.conference_talkers)
                    .map_err(Refusal::unavailable)?;
                self.answered
                    .rooms
                    .insert(room, RoomMedia { media: m, rate });
                self.answered.media_to_room.insert(m, room);
                Ok(m)
            }
            Purpose::ToneTest => {
                let rate = preview.map(|n| rate_for(n.codec.codec)).unwrap_or(8000);
                self.media
                    .create_room(rate, 1)
                    .map_err(Refusal::unavailable)
            }
        }
    }

    /// The ACK of an answered call: the caller is there, start its experience.
    pub(crate) fn on_answered_ack(&mut self, now: Instant, ck: CallKey, req: &Request) {
        let Some(call) = self.answered.calls.get_mut(&ck) else {
            return;
        };
        if std::mem::take(&mut call.awaiting_ack_answer) {
            let n = take_answer(&mut call.sdp, &req.body);
            match n {
                Ok(n) => {
                    let (media, pid) = (call.media, call.pid);
                    for cmd in update_commands(pid, &n) {
                        self.media.command(media, cmd);
                    }
                }
                Err(why) => {
                    info!(call = ck.0, %why, "no usable SDP answer in the ACK: hanging up");
                    self.hang_up_answered(now, ck);
                    return;
                }
            }
        }
        self.start_answered(now, ck);
    }

    /// Starts what the caller came for (once).
    fn start_answered(&mut self, now: Instant, ck: CallKey) {
        let Some(call) = self.answered.calls.get_mut(&ck) else {
            return;
        };
        if std::mem::replace(&mut call.started, true) {
            return;
        }
        let (media, pid, purpose) = (call.media, call.pid, call.purpose);
        match purpose {
            Purpose::ToneTest => {
                let tone = Tone::new(
                    &[ToneStep {
                        f1: 440,
                        f2: 0,
                        ms: 1000,
                        amplitude: 8000,
                    }],
                    false,
                );
                self.media.command(
                    media,
                    RoomCommand::Play {
                        id: pid,
                        playback: Playback::tone(TONE_TEST_PLAYBACK, tone),
                    },
                );
            }
            Purpose::Room(room) => {
                let Some(stored) = self.dir.room(room).cloned() else {
                    self.hang_up_answered(now, ck);
                    return;
                };
                let rate = self
                    .answered
                    .rooms
                    .get(&room)
                    .map(|m| m.rate)
                    .unwrap_or(8000);
                let join = JoinRequest {
                    participant: pid,
                    number: (!call.caller.number.is_empty() && !call.caller.anonymous)
                        .then(|| call.caller.number.clone()),
                    name: if call.caller.anonymous {
                        None
                    } else {
                        call.caller.name.clone()
                    },
                    anonymous: call.caller.anonymous,
                    call_ref: call.invite.call_id().unwrap_or_default().to_owned(),
                    sample_rate: rate,
                };
                self.conference.handle_join(now, &stored, join);
                self.drain_conference(now);
            }
        }
    }

    /// An in-dialog request on an answered call.
    pub(crate) fn on_answered_in_dialog(
        &mut self,
        now: Instant,
        ck: CallKey,
        key: TxKey,
        req: Request,
    ) {
        let local = &self.config.local;
        let Some(call) = self.answered.calls.get_mut(&ck) else {
            self.reply(now, key, &req, StatusCode::CALL_DOES_NOT_EXIST, None);
            return;
        };
        let ok_cseq = call
            .dialog
            .as_mut()
            .is_some_and(|d| d.accept_remote_cseq(&req));
        if !ok_cseq {
            self.reply(
                now,
                key,
                &req,
                StatusCode::SERVER_INTERNAL_ERROR,
                Some("Server Internal Error (CSeq out of order)"),
            );
            return;
        }
        match req.method {
            Method::Bye => {
                self.reply(now, key, &req, StatusCode::OK, None);
                info!(call = ck.0, "caller hung up");
                self.end_answered(now, ck, true);
            }
            Method::Info => {
                let digit = req
                    .content_type()
                    .and_then(|ct| palaver_sip::dtmf_info::parse_dtmf_info(&ct, &req.body));
                if let Some(d) = digit {
                    let dur = Duration::from_millis(u64::from(d.duration_ms.unwrap_or(160)));
                    self.media.dtmf_info(call.media, call.pid, d.digit, dur);
                    self.reply(now, key, &req, StatusCode::OK, None);
                } else {
                    self.reply(
                        now,
                        key,
                        &req,
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        Some("Unsupported Media Type (only DTMF INFO is understood)"),
                    );
                }
            }
            Method::Invite => {
                if let Some(d) = call.dialog.as_mut() {
                    d.refresh_target(&req);
                }
                let contact = contact_uri_in(local, Some("palaver"), call.peer.transport);
                let mut ok = Response::for_request(&req, StatusCode::OK);
                ok.headers.push(HeaderName::Contact, format!("<{contact}>"));
                match offer_in(&req).and_then(|o| answer_or_offer(&mut call.sdp, o.as_ref())) {
                    Err(r) => return self.refuse(now, key, &req, r),
                    Ok(LegBody::Offer { body }) => {
                        call.awaiting_ack_answer = true;
                        ok.set_body("application/sdp", body);
                    }
                    Ok(LegBody::Answer { body, negotiated }) => {
                        let (media, pid) = (call.media, call.pid);
                        for cmd in update_commands(pid, &negotiated) {
                            self.media.command(media, cmd);
                        }
                        ok.set_body("application/sdp", body);
                    }
                }
                self.respond(now, key, ok);
            }
            _ => {
                let mut r = Response::for_request(&req, StatusCode::METHOD_NOT_ALLOWED);
                r.headers.push(HeaderName::Allow, ALLOW);
                self.respond(now, key, r);
            }
        }
    }

    /// We hang up an answered call (BYE) and forget it.
    pub(crate) fn hang_up_answered(&mut self, now: Instant, ck: CallKey) {
        let local = &self.config.local;
        if let Some(call) = self.answered.calls.get_mut(&ck)
            && let Some(d) = call.dialog.as_mut()
        {
            let sent_by = local_addr_in(local, d.peer.transport).to_string();
            let bye = d.new_request(Method::Bye, &sent_by);
            let peer = d.peer;
            if let Ok(tx) = self.layer.send_request(now, peer, bye) {
                self.client_owner.insert(tx, (ck, ClientRole::Bye));
            }
        }
        self.end_answered(now, ck, false);
    }

    /// Forgets an answered call. `tell_conference`: the caller left on its
    /// own (the conference hears of it); not when the conference asked.
    pub(crate) fn end_answered(&mut self, now: Instant, ck: CallKey, tell_conference: bool) {
        let Some(call) = self.answered.calls.remove(&ck) else {
            return;
        };
        self.server_owner.remove(&call.tx);
        if let Some(cid) = call.invite.call_id() {
            self.dialogs.remove(&(cid.to_owned(), call.tag.clone()));
        }
        self.answered.by_participant.remove(&(call.media, call.pid));
        match call.purpose {
            Purpose::ToneTest => self.media.close_room(call.media),
            Purpose::Room(room) => {
                if tell_conference && call.started {
                    self.conference.handle_hangup(now, room, call.pid);
                    self.drain_conference(now);
                } else if !call.started {
                    // Never handed over: nobody else will remove it.
                    self.media.remove_participant(call.media, call.pid);
                }
            }
        }
        let ended = self.wall_ms(now);
        self.store(StoreOp::InsertCdr(NewCdr {
            call_id: call.invite.call_id().unwrap_or_default().to_owned(),
            from_uri: call
                .invite
                .from_header()
                .map(|f| f.uri.to_string())
                .unwrap_or_default(),
            to_uri: call.invite.uri.to_string(),
            caller: call.caller.number.clone(),
            callee: call.dialled.clone(),
            destination_kind: match call.purpose {
                Purpose::Room(_) => "room".into(),
                Purpose::ToneTest => "service".into(),
            },
            started_at: call.started_ms,
            answered_at: Some(call.started_ms),
            ended_at: ended,
            disposition: Disposition::Answered,
        }));
        debug!(call = ck.0, "answered call ended");
    }

    /// An event from a media room that is not a two-party call's.
    pub(crate) fn on_answered_media_event(
        &mut self,
        now: Instant,
        media: MediaRoomId,
        ev: palaver_media_rt::RoomEvent,
    ) {
        use palaver_media_rt::RoomEvent as E;
        match ev {
            E::Media(m) => {
                if let MediaEvent::Stats { participant, stats } = &m {
                    debug!(
                        media = media.0,
                        %participant,
                        received = stats.packets_received,
                        lost = stats.packets_lost,
                        jitter_ms = stats.jitter_ms,
                        jb = ?stats.jitter_buffer,
                        target_ms = stats.jitter_target.as_millis() as u64,
                        "participant media stats"
                    );
                }
                if let Some(&room) = self.answered.media_to_room.get(&media) {
                    self.conference.handle_media_event(now, room, m);
                    self.drain_conference(now);
                    return;
                }
                // The tone test: hang up once the tone has played.
                match m {
                    MediaEvent::PromptFinished {
                        participant: Some(p),
                        id: TONE_TEST_PLAYBACK,
                        ..
                    }
                    | MediaEvent::RtpTimeout { participant: p } => {
                        if let Some(&ck) = self.answered.by_participant.get(&(media, p)) {
                            self.hang_up_answered(now, ck);
                        }
                    }
                    _ => {}
                }
            }
            E::RecordingFinished {
                recording,
                path,
                samples,
            } => {
                if let Some(rec) = self.answered.recordings.remove(&recording) {
                    self.answered
                        .engine_recording
                        .remove(&(rec.room, rec.conference_id));
                    let rate = self
                        .answered
                        .rooms
                        .get(&rec.room)
                        .map(|m| m.rate)
                        .unwrap_or(self.config.conference_rate);
                    let (started, ended, participants) =
                        rec.stopped.unwrap_or((0, self.wall_ms(now), Vec::new()));
                    self.store(StoreOp::FinishRecording {
                        room: rec.room,
                        conference_id: rec.conference_id,
                        path,
                        ended_at: ended.max(started),
                        duration_ms: (samples as i64 * 1000) / i64::from(rate.max(1)),
                        participants: serde_json::to_string(&participants)
                            .unwrap_or_else(|_| "[]".into()),
                    });
                }
            }
            E::RecordingFailed {
                recording,
                path,
                reason,
            } => {
                warn!(recording, path = %path.display(), %reason, "recording failed");
                self.answered.recordings.remove(&recording);
            }
            E::CommandFailed { reason } => debug!(%reason, "media command failed"),
            E::Closed => {}
        }
    }

    /// Carries out whatever the conference logic asked for.
    pub(crate) fn drain_conference(&mut self, now: Instant) {
        while let Some(action) = self.conference.poll_action() {
            match action {
                ConferenceAction::Media { room, command } => {
                    let Some(m) = self.answered.rooms.get(&room).map(|m| m.media) else {
                        continue;
                    };
                    match command {
                        RoomCommand::RemoveParticipant { id } => {
                            self.media.remove_participant(m, id)
                        }
                        // The engine starts the recorder when it opens the
                        // file (RecordingStarted below).
                        RoomCommand::StartRecording { .. } => {}
                        RoomCommand::StopRecording => self.media.stop_recording(m),
                        other => self.media.command(m, other),
                    }
                }
                ConferenceAction::HangUp { room, participant } => {
                    if let Some(m) = self.answered.rooms.get(&room).map(|m| m.media)
                        && let Some(&ck) = self.answered.by_participant.get(&(m, participant))
                    {
                        self.hang_up_answered(now, ck);
                    }
                }
                ConferenceAction::Event(ev) => self.publish_room_event(ev),
                ConferenceAction::RecordingStarted {
                    room,
                    room_name,
                    recording,
                    path,
                    started_at,
                } => {
                    let Some(m) = self.answered.rooms.get(&room).map(|m| m.media) else {
                        continue;
                    };
                    match self.media.start_recording(m, path.clone()) {
                        Ok(engine_id) => {
                            self.answered.recordings.insert(
                                engine_id,
                                RecordingInFlight {
                                    room,
                                    conference_id: recording,
                                    stopped: None,
                                },
                            );
                            self.answered
                                .engine_recording
                                .insert((room, recording), engine_id);
                            self.store(StoreOp::CreateRecording {
                                room,
                                conference_id: recording,
                                new: NewRecording {
                                    room_id: room,
                                    room_name,
                                    path: path.to_string_lossy().into_owned(),
                                    started_at,
                                },
                            });
                        }
                        Err(e) => warn!(error = %e, "could not start recording"),
                    }
                }
                ConferenceAction::RecordingStopped {
                    room,
                    recording,
                    started_at,
                    ended_at,
                    participants,
                    ..
                } => {
                    if let Some(engine_id) = self.answered.engine_recording.get(&(room, recording))
                        && let Some(rec) = self.answered.recordings.get_mut(engine_id)
                    {
                        rec.stopped = Some((started_at, ended_at, participants));
                    }
                }
                ConferenceAction::Report(report) => self.store(StoreOp::Report(Box::new(report))),
                ConferenceAction::RoomClosed { room } => {
                    if let Some(m) = self.answered.rooms.remove(&room) {
                        self.answered.media_to_room.remove(&m.media);
                        self.media.close_room(m.media);
                    }
                }
            }
        }
        let _ = now;
    }

    fn publish_room_event(&mut self, ev: RoomEvent) {
        self.room_events.push_back(ev);
    }

    /// Hangs up everyone in answered calls (shutdown).
    pub(crate) fn hang_up_all_answered(&mut self, now: Instant) {
        let keys: Vec<CallKey> = self.answered.calls.keys().copied().collect();
        for ck in keys {
            let started = self.answered.calls.get(&ck).is_some_and(|c| c.started);
            let room = self.answered.calls.get(&ck).and_then(|c| match c.purpose {
                Purpose::Room(r) => Some((r, c.pid)),
                Purpose::ToneTest => None,
            });
            self.hang_up_answered(now, ck);
            if started && let Some((r, pid)) = room {
                self.conference.handle_hangup(now, r, pid);
            }
        }
        self.drain_conference(now);
    }
}

/// The report with each recording's web link filled in.
pub fn with_links(
    mut report: ConferenceReport,
    link: impl Fn(u64) -> Option<String>,
) -> ConferenceReport {
    for r in &mut report.recordings {
        if r.link.is_none() {
            r.link = link(r.recording);
        }
    }
    report
}
