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
