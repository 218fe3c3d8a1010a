//! [`SdpSession`]: one call leg's side of the offer/answer exchange across
//! its whole life (initial INVITE, re-INVITEs, hold and resume).
//!
//! It owns what RFC 3264 §8 asks to keep between exchanges: our origin (same
//! session id forever, version + 1 whenever our description changes, the same
//! version when it does not), the `m=` line layout (a re-offer keeps every
//! line, in order), the agreed codec and payload types (a re-offer proposes
//! them again rather than starting over), and who is holding whom.
//!
//! It does no SIP: the dialog layer hands it bodies and sends what it
//! returns. Every method is pure apart from `&mut self`.

use std::net::SocketAddr;

use crate::error::NegotiationError;
use crate::model::{Direction, Origin, Session};
use crate::negotiate::{
    Answer, LocalCapabilities, Negotiated, OfferPlan, accept_answer, answer_preferring, build_offer,
};

/// The SDP state of one call leg.
///
/// ```
/// use palaver_sdp::{LocalCapabilities, SdpSession};
///
/// let mut ours = SdpSession::new(LocalCapabilities::default(), 42, "127.0.0.1:4000".parse().unwrap());
/// let mut theirs = SdpSession::new(LocalCapabilities::default(), 7, "127.0.0.1:5000".parse().unwrap());
/// let offer = ours.create_offer();
/// let answer = theirs.handle_offer(&offer).unwrap().session;
/// let agreed = ours.handle_answer(&answer).unwrap();
/// assert_eq!(agreed.codec.name(), "opus");
///
/// let hold = ours.hold();            // a=sendonly, version + 1
/// assert_eq!(hold.origin.session_version, offer.origin.session_version + 1);
/// ```
#[derive(Debug, Clone)]
pub struct SdpSession {
    caps: LocalCapabilities,
    origin: Origin,
    rtp: SocketAddr,
    /// We hold the peer (we asked for `sendonly`).
    holding: bool,
    /// The peer's last effective direction, from its own point of view.
    remote_direction: Option<Direction>,
    /// The last description we sent that was agreed on (offer answered, or
    /// our answer); the reference for versions and the `m=` layout.
    last_local: Option<Session>,
    /// An offer we sent that awaits its answer.
    pending_offer: Option<Session>,
    negotiated: Option<Negotiated>,
}

impl SdpSession {
    /// A new leg with no exchange yet. `session_id` must be unique enough
    /// (RFC 8866 suggests an NTP timestamp; a random `u64` does); `rtp` is
    /// where we receive media, also used as the origin address.
    pub fn new(caps: LocalCapabilities, session_id: u64, rtp: SocketAddr) -> Self {
        SdpSession {
            caps,
            origin: Origin::new(session_id, 1, rtp.ip()),
            rtp,
            holding: false,
            remote_direction: None,
            last_local: None,
            pending_offer: None,
            negotiated: None,
        }
    }

    /// Our origin as last sent (or to be sent first).
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// What the last successful exchange agreed, if any.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Whether we are holding the peer.
    pub fn is_holding(&self) -> bool {
        self.holding
    }

    /// Whether an offer of ours awaits an answer.
    pub fn has_pending_offer(&self) -> bool {
        self.pending_offer.is_some()
    }

    /// Moves our media to another local address; takes effect in the next
    /// description we create.
    pub fn set_local_rtp(&mut self, rtp: SocketAddr) {
        self.rtp = rtp;
    }

    /// Our next offer: the initial one, or a re-offer (re-INVITE, or our
    /// answer to an offerless INVITE) that keeps the agreed codec and every
    /// previous `m=` line.
    pub fn create_offer(&mut self) -> Session {
        let direction = self.local_direction();
        let offer = match (&self.negotiated, &self.last_local) {
            (Some(n), Some(previous)) => build_offer(
                &OfferPlan::pinned(n, &self.caps),
                &self.origin,
                self.rtp,
                direction,
                &previous.media,
                n.media_index,
            ),
            _ => build_offer(
                &OfferPlan::from_capabilities(&self.caps),
                &self.origin,
                self.rtp,
                direction,
                &[],
                0,
            ),
        };
        let offer = self.stamp(offer);
        self.pending_offer = Some(offer.clone());
        offer
    }

    /// Puts the peer on hold: returns the re-offer to send (`a=sendonly`, or
    /// `a=inactive` if the peer holds us too, RFC 6337 §5.3).
    pub fn hold(&mut self) -> Session {
        self.holding = true;
        self.create_offer()
    }

    /// Takes the peer off hold: returns the re-offer to send.
    pub fn resume(&mut self) -> Session {
        self.holding = false;
        self.create_offer()
    }

    /// Forgets our pending offer: the re-INVITE failed (`491` glare, `488`,
    /// timeout) and the previous agreement stands (RFC 3264 §8).
    pub fn cancel_offer(&mut self) {
        self.pending_offer = None;
    }

    /// Takes the peer's answer to our pending offer. On error the pending
    /// offer is dropped and the previous agreement, if any, stands.
    pub fn handle_answer(&mut self, answer: &Session) -> Result<&Negotiated, NegotiationError> {
        let offer = self
            .pending_offer
            .take()
            .ok_or(NegotiationError::NoPendingOffer)?;
        let negotiated = accept_answer(&offer, answer)?;
        self.remote_direction = Some(negotiated.remote_direction);
        self.last_local = Some(offer);
        Ok(self.negotiated.insert(negotiated))
    }

    /// Answers the peer's offer (initial or re-INVITE). A re-offer that still
    /// contains the agreed codec keeps it. On error (`NotAcceptable`: answer
    /// `488`) nothing changes.
    pub fn handle_offer(&mut self, offer: &Session) -> Result<Answer, NegotiationError> {
        let sticky = self.negotiated.as_ref().map(|n| n.codec.codec);
        let wanted = if self.holding {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let mut answer =
            answer_preferring(offer, &self.caps, &self.origin, self.rtp, wanted, sticky)?;
        answer.session = self.stamp(answer.session);
        // An offer crossing ours (glare) wins here; the dialog layer answers
        // 491 before calling us if it wants ours to win instead.
        self.pending_offer = None;
        self.remote_direction = Some(answer.negotiated.remote_direction);
        self.last_local = Some(answer.session.clone());
        self.negotiated = Some(answer.negotiated.clone());
        Ok(answer)
    }

    /// The direction we offer: `sendonly` while holding, `inactive` if the
    /// peer holds us as well, else `sendrecv`.
    fn local_direction(&self) -> Direction {
        if !self.holding {
            return Direction::SendRecv;
        }
        // The peer holds us when it does not want to receive.
        let peer_receives = self.remote_direction.is_none_or(Direction::can_receive);
        if peer_receives {
            Direction::SendOnly
        } else {
            Direction::Inactive
        }
    }

    /// Sets the origin version on a new description of ours: unchanged if
    /// the description is the same as the last agreed one, else + 1
    /// (RFC 3264 §8). The very first description keeps the initial version.
    fn stamp(&mut self, mut session: Session) -> Session {
        if let Some(previous) = &self.last_local {
            session.origin.session_version = previous.origin.session_version;
            if &session != previous {
                session.origin.session_version = previous.origin.session_version.wrapping_add(1);
            }
        }
        self.origin.session_version = session.origin.session_version;
        session
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::model::MediaKind;
    use crate::negotiate::CodecConfig;

    fn leg(id: u64, port: u16) -> SdpSession {
        let rtp = SocketAddr::new([127, 0, 0, 1].into(), port);
        SdpSession::new(LocalCapabilities::default(), id, rtp)
    }

    fn parse(text: &str) -> Session {
        text.parse().unwrap()
    }

    /// Our leg offers, the peer leg answers; returns (our offer, their answer).
    fn exchange(ours: &mut SdpSession, theirs: &mut SdpSession) -> (Session, Session) {
        let offer = ours.create_offer();
        // What travels is text: go through it.
        let offer = parse(&offer.to_string());
        let answer = theirs.handle_offer(&offer).unwrap().session;
        let answer = parse(&answer.to_string());
        ours.handle_answer(&answer).unwrap();
        (offer, answer)
    }

    #[test]
    fn hold_and_resume_by_reinvite_bump_the_version_and_keep_the_session_id() {
        let mut a = leg(1000, 4000);
        let mut b = leg(2000, 5000);
        let (offer, answer) = exchange(&mut a, &mut b);
        assert_eq!(offer.origin.session_version, 1);
        assert_eq!(answer.origin.session_version, 1);
        assert_eq!(a.negotiated().unwrap().direction, Direction::SendRecv);

        // A holds B.
        let hold = a.hold();
        assert!(a.is_holding());
        assert_eq!(hold.origin.session_id, "1000");
        assert_eq!(hold.origin.session_version, 2);
        assert_eq!(hold.media[0].direction(), Some(Direction::SendOnly));
        let answer = b.handle_offer(&hold).unwrap();
        assert_eq!(
            answer.session.media[0].direction(),
            Some(Direction::RecvOnly)
        );
        assert_eq!(answer.session.origin.session_version, 2);
        assert_eq!(answer.negotiated.direction, Direction::RecvOnly);
        let n = a.handle_answer(&answer.session).unwrap();
        assert_eq!(n.direction, Direction::SendOnly);

        // A resumes.
        let resume = a.resume();
        assert_eq!(resume.origin.session_version, 3);
        assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));
        let answer = b.handle_offer(&resume).unwrap();
        assert_eq!(answer.session.origin.session_version, 3);
        assert_eq!(
            a.handle_answer(&answer.session).unwrap().direction,
            Direction::SendRecv
        );
        assert_eq!(a.origin().session_version, 3);
    }

    #[test]
    fn an_unchanged_description_keeps_its_version() {
        let mut a = leg(1, 4000);
        let mut b = leg(2, 5000);
        exchange(&mut a, &mut b);
        // The first re-offer narrows our codec list to the agreed one: that
        // is a change (version 2). B's answer is the same as before.
        let (again, answer) = exchange(&mut a, &mut b);
        assert_eq!(again.origin.session_version, 2);
        assert_eq!(again.media[0].formats, vec!["111", "110"]);
        assert_eq!(answer.origin.session_version, 1);
        // Session refresh re-INVITEs (RFC 4028) after that change nothing.
        for _ in 0..3 {
            let (again, answer) = exchange(&mut a, &mut b);
            assert_eq!(again.origin.session_version, 2);
            assert_eq!(answer.origin.session_version, 1);
        }
        // Moving our media is a change.
        a.set_local_rtp("127.0.0.1:4100".parse().unwrap());
        let moved = a.create_offer();
        assert_eq!(moved.origin.session_version, 3);
        assert_eq!(moved.media[0].port, 4100);
    }

    #[test]
    fn reoffer_keeps_the_agreed_codec_and_payload_types() {
        // The peer offered Opus as 96 and events as 97; we answered with
        // those. Our later re-offer must use the same numbers.
        let mut b = leg(2, 5000);
        let peer_offer = parse(
            "v=0\r\no=- 9 9 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
             m=audio 6000 RTP/AVP 96 0 97\r\na=rtpmap:96 opus/48000/2\r\n\
             a=rtpmap:97 telephone-event/48000\r\na=rtcp-mux\r\n",
        );
        b.handle_offer(&peer_offer).unwrap();
        let hold = b.hold();
        let m = &hold.media[0];
        assert_eq!(m.formats, vec!["96", "97"]);
        assert_eq!(m.rtpmap(96).unwrap().encoding, "opus");
        assert!(m.rtcp_mux());
        assert_eq!(m.direction(), Some(Direction::SendOnly));
        assert_eq!(hold.origin.session_version, 2);
    }

    #[test]
    fn reoffer_keeps_every_previous_m_line_in_order() {
        let mut b = leg(2, 5000);
        let peer_offer = parse(
            "v=0\r\no=- 9 9 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
             m=video 7000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             m=audio 6000 RTP/AVP 8\r\n",
        );
        let answer = b.handle_offer(&peer_offer).unwrap();
        assert_eq!(answer.negotiated.media_index, 1);
        let reoffer = b.hold();
        assert_eq!(reoffer.media.len(), 2);
        assert_eq!(reoffer.media[0].kind, MediaKind::Video);
        assert_eq!(reoffer.media[0].port, 0);
        assert_eq!(reoffer.media[1].kind, MediaKind::Audio);
        assert_eq!(reoffer.media[1].port, 5000);
        assert_eq!(reoffer.media[1].formats, vec!["8"]);

        // The peer answers in the same layout.
        let peer_answer = parse(
            "v=0\r\no=- 9 10 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
             m=video 0 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 8\r\na=recvonly\r\n",
        );
        let n = b.handle_answer(&peer_answer).unwrap();
        assert_eq!(n.media_index, 1);
        assert_eq!(n.direction, Direction::SendOnly);
    }

    #[test]
    fn both_sides_on_hold_is_inactive() {
        let mut a = leg(1, 4000);
        let mut b = leg(2, 5000);
        exchange(&mut a, &mut b);
        // A holds B…
        let hold = a.hold();
        let answer = b.handle_offer(&hold).unwrap().session;
        a.handle_answer(&answer).unwrap();
        // …then B holds A as well: B must offer inactive (RFC 6337 §5.3).
        let hold_too = b.hold();
        assert_eq!(hold_too.media[0].direction(), Some(Direction::Inactive));
        let answer = a.handle_offer(&hold_too).unwrap();
        assert_eq!(answer.negotiated.direction, Direction::Inactive);
        b.handle_answer(&answer.session).unwrap();
        // A resumes; B still holds, so A ends up receive-only.
        let resume = a.resume();
        assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));
        let answer = b.handle_offer(&resume).unwrap();
        assert_eq!(answer.negotiated.direction, Direction::SendOnly);
        assert_eq!(
            a.handle_answer(&answer.session).unwrap().direction,
            Direction::RecvOnly
        );
    }

    #[test]
    fn being_held_by_the_peer_is_visible() {
        let mut a = leg(1, 4000);
        let mut b = leg(2, 5000);
        exchange(&mut a, &mut b);
        // An old phone holds us RFC 2543 style.
        let old_hold = parse(
            "v=0\r\no=- 2 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
             m=audio 5000 RTP/AVP 111 110\r\na=rtpmap:111 opus/48000/2\r\n\
             a=rtpmap:110 telephone-event/48000\r\n",
        );
        let answer = a.handle_offer(&old_hold).unwrap();
        assert_eq!(answer.negotiated.direction, Direction::RecvOnly);
        assert!(!answer.negotiated.remote_direction.can_receive());
        assert_eq!(answer.session.origin.session_version, 2);
    }

    #[test]
    fn failed_reoffer_leaves_the_agreement_in_place() {
        let mut a = leg(1, 4000);
        let mut b = leg(2, 5000);
        exchange(&mut a, &mut b);
        let before = b.negotiated().cloned();
        let video_only = parse(
            "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4002 RTP/AVP 96\r\n",
        );
        assert_eq!(
            b.handle_offer(&video_only).unwrap_err(),
            NegotiationError::NotAcceptable(crate::NotAcceptable::NoAudio)
        );
        assert_eq!(b.negotiated().cloned(), before);
        assert_eq!(b.origin().session_version, 1);

        // Our re-INVITE gets 491: cancel and the old state stands.
        let _ = a.hold();
        assert!(a.has_pending_offer());
        a.cancel_offer();
        assert!(!a.has_pending_offer());
        assert_eq!(
            a.handle_answer(&video_only).unwrap_err(),
            NegotiationError::NoPendingOffer
        );
        // A bad answer drops the pending offer but keeps the agreement.
        let agreed = a.negotiated().cloned();
        let _ = a.resume();
        assert!(a.handle_answer(&video_only).is_err());
        assert_eq!(a.negotiated().cloned(), agreed);
    }

    #[test]
    fn a_reinvite_offer_still_containing_our_codec_keeps_it() {
        let caps = LocalCapabilities {
            codecs: [Codec::G722, Codec::Pcmu]
                .into_iter()
                .map(CodecConfig::standard)
                .collect(),
            ..LocalCapabilities::default()
        };
        let mut b = SdpSession::new(caps, 2, "127.0.0.1:5000".parse().unwrap());
        let first = parse(
            "v=0\r\no=- 9 9 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n",
        );
        assert_eq!(
            b.handle_offer(&first).unwrap().negotiated.codec.codec,
            Codec::Pcmu
        );
        // The re-offer adds G.722, which we prefer, but switching codecs
        // mid-call buys nothing and risks a gap.
        let again = parse(
            "v=0\r\no=- 9 10 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 9 0\r\n",
        );
        assert_eq!(
            b.handle_offer(&again).unwrap().negotiated.codec.codec,
            Codec::Pcmu
        );
        // Once PCMU is gone, the best remaining codec is taken.
        let without = parse(
            "v=0\r\no=- 9 11 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 9\r\n",
        );
        assert_eq!(
            b.handle_offer(&without).unwrap().negotiated.codec.codec,
            Codec::G722
        );
    }

    #[test]
    fn offerless_reinvite_gets_a_pinned_offer_in_the_200() {
        let mut a = leg(1, 4000);
        let mut b = leg(2, 5000);
        exchange(&mut a, &mut b);
        // A re-INVITE without SDP reaches B: B offers in the 200 OK.
        let offer = b.create_offer();
        assert_eq!(offer.media[0].formats, vec!["111", "110"]);
        assert_eq!(offer.origin.session_version, 1);
        let answer = a.handle_offer(&offer).unwrap();
        let n = b.handle_answer(&answer.session).unwrap();
        assert_eq!(n.codec.codec, Codec::Opus);
    }
}
