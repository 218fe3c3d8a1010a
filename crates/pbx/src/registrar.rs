//! The registrar's memory: which devices are registered for which line
//! (RFC 3261 §10), with expiry. The store keeps the same bindings so they
//! survive a restart; this module decides, the runtime persists.

use std::collections::HashMap;
use std::net::SocketAddr;

use palaver_sip::{Peer, Transport, Uri};
use palaver_store::{Binding, LineId};

/// One registered contact of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub line: LineId,
    /// The Contact URI as the device registered it.
    pub contact: Uri,
    /// Where the REGISTER really came from: calls to the device go there,
    /// so devices behind NAT are reachable.
    pub peer: Peer,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    pub user_agent: String,
    pub instance: Option<String>,
}

impl Registration {
    pub fn to_binding(&self) -> Binding {
        Binding {
            line_id: self.line,
            contact: self.contact.to_string(),
            received: self.peer.addr.to_string(),
            transport: store_transport(self.peer.transport),
            expires_at: self.expires_at,
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            user_agent: self.user_agent.clone(),
            instance: self.instance.clone(),
        }
    }

    /// Rebuilds a registration from the store; `None` if the row no longer parses.
    pub fn from_binding(b: &Binding) -> Option<Registration> {
        let contact = Uri::parse(&b.contact).ok()?;
        let addr: SocketAddr = b.received.parse().ok()?;
        let transport = match b.transport {
            palaver_store::Transport::Udp => Transport::Udp,
            palaver_store::Transport::Tcp => Transport::Tcp,
            palaver_store::Transport::Tls => Transport::Tls,
        };
        Some(Registration {
            line: b.line_id,
            contact,
            peer: Peer {
                transport,
                addr,
                conn: None,
            },
            expires_at: b.expires_at,
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            user_agent: b.user_agent.clone(),
            instance: b.instance.clone(),
        })
    }
}

pub fn store_transport(t: Transport) -> palaver_store::Transport {
    match t {
        Transport::Udp => palaver_store::Transport::Udp,
        Transport::Tcp => palaver_store::Transport::Tcp,
        Transport::Tls => palaver_store::Transport::Tls,
    }
}

/// What a REGISTER changed, for persistence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // short-lived, moved straight into a store write
pub enum BindingChange {
    Upsert(Registration),
    Remove { line: LineId, contact: String },
}

/// All registrations, by line.
#[derive(Debug, Default)]
pub struct Registrar {
    by_line: HashMap<LineId, Vec<Registration>>,
    /// Devices per line; the binding closest to expiry makes room for a new one.
    pub max_per_line: usize,
}

impl Registrar {
    pub fn new(max_per_line: usize) -> Registrar {
        Registrar {
            by_line: HashMap::new(),
            max_per_line: max_per_line.max(1),
        }
    }

    /// Restores bindings loaded from the store.
    pub fn restore(&mut self, regs: impl IntoIterator<Item = Registration>) {
        for r in regs {
            self.by_line.entry(r.line).or_default().push(r);
        }
    }

    /// Live contacts of a line at `now_ms`.
    pub fn contacts(&self, line: LineId, now_ms: i64) -> Vec<&Registration> {
        self.by_line
            .get(&line)
            .map(|v| v.iter().filter(|r| r.expires_at > now_ms).collect())
            .unwrap_or_default()
    }

    pub fn count(&self, now_ms: i64) -> usize {
        self.by_line
            .values()
            .map(|v| v.iter().filter(|r| r.expires_at > now_ms).count())
            .sum()
    }

    /// Adds or refreshes a binding. Returns the changes to persist (the
    /// upsert and any binding evicted to respect `max_per_line`), or `None`
    /// when the REGISTER is older than what we have (same Call-ID, lower or
    /// equal CSeq: §10.3 step 7).
    pub fn bind(&mut self, reg: Registration, now_ms: i64) -> Option<Vec<BindingChange>> {
        let list = self.by_line.entry(reg.line).or_default();
        list.retain(|r| r.expires_at > now_ms);
        let mut changes = Vec::new();
        if let Some(existing) = list.iter_mut().find(|r| same_contact(r, &reg)) {
            if existing.call_id == reg.call_id && reg.cseq <= existing.cseq {
                return None;
            }
            if existing.contact != reg.contact {
                changes.push(BindingChange::Remove {
                    line: existing.line,
                    contact: existing.contact.to_string(),
                });
            }
            *existing = reg.clone();
        } else {
            if list.len() >= self.max_per_line {
                list.sort_by_key(|r| r.expires_at);
                let evicted = list.remove(0);
                changes.push(BindingChange::Remove {
                    line: evicted.line,
                    contact: evicted.contact.to_string(),
                });
            }
            list.push(reg.clone());
        }
        changes.push(BindingChange::Upsert(reg));
        Some(changes)
    }

    /// Removes one contact (Expires: 0).
    pub fn unbind(&mut self, line: LineId, contact: &Uri) -> Option<BindingChange> {
        let list = self.by_line.get_mut(&line)?;
        let pos = list
            .iter()
            .position(|r| r.contact.same_aor(contact) || r.contact == *contact)?;
        let r = list.remove(pos);
        Some(BindingChange::Remove {
            line,
            contact: r.contact.to_string(),
        })
    }

    /// Removes every contact of a line (`Contact: *`).
    pub fn unbind_all(&mut self, line: LineId) -> Vec<BindingChange> {
        self.by_line
            .remove(&line)
            .unwrap_or_default()
            .into_iter()
            .map(|r| BindingChange::Remove {
                line,
                contact: r.contact.to_string(),
            })
            .collect()
    }

    /// Drops expired bindings; returns them for persistence.
    pub fn expire(&mut self, now_ms: i64) -> Vec<BindingChange> {
        let mut gone = Vec::new();
        for (line, list) in self.by_line.iter_mut() {
            list.retain(|r| {
                if r.expires_at > now_ms {
                    true
                } else {
                    gone.push(BindingChange::Remove {
                        line: *line,
                        contact: r.contact.to_string(),
                    });
                    false
                }
            });
        }
        self.by_line.retain(|_, v| !v.is_empty());
        gone
    }

    /// Forgets the bindings of lines that no longer exist.
    pub fn retain_lines(&mut self, keep: impl Fn(LineId) -> bool) {
        self.by_line.retain(|l, _| keep(*l));
    }
}

/// Same device: same `+sip.instance` when both have one, else same Contact URI.
fn same_contact(a: &Registration, b: &Registration) -> bool {
    match (&a.instance, &b.instance) {
        (Some(x), Some(y)) => x == y,
        _ => a.contact == b.contact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(contact: &str, cseq: u32, expires_at: i64) -> Registration {
        Registration {
            line: LineId(1),
            contact: Uri::parse(contact).unwrap(),
            peer: Peer::udp("127.0.0.1:5070".parse().unwrap()),
            expires_at,
            call_id: "c".into(),
            cseq,
            user_agent: String::new(),
            instance: None,
        }
    }

    #[test]
    fn several_contacts_refresh_and_expire() {
        let mut r = Registrar::new(3);
        r.bind(reg("sip:1001@127.0.0.1:5070", 1, 10_000), 0)
            .unwrap();
        r.bind(reg("sip:1001@127.0.0.1:5072", 1, 20_000), 0)
            .unwrap();
        assert_eq!(r.contacts(LineId(1), 0).len(), 2);
        // A stale retransmission (same Call-ID, same CSeq) changes nothing.
        assert!(
            r.bind(reg("sip:1001@127.0.0.1:5070", 1, 99_000), 0)
                .is_none()
        );
        r.bind(reg("sip:1001@127.0.0.1:5070", 2, 30_000), 0)
            .unwrap();
        assert_eq!(r.contacts(LineId(1), 0).len(), 2);
        assert_eq!(r.contacts(LineId(1), 25_000).len(), 1);
        assert_eq!(r.expire(25_000).len(), 1);
        assert_eq!(r.count(0), 1);
    }

    #[test]
    fn oldest_binding_makes_room() {
        let mut r = Registrar::new(2);
        r.bind(reg("sip:a@h:1", 1, 10_000), 0).unwrap();
        r.bind(reg("sip:a@h:2", 1, 20_000), 0).unwrap();
        let ch = r.bind(reg("sip:a@h:3", 1, 30_000), 0).unwrap();
        assert!(matches!(&ch[0], BindingChange::Remove { contact, .. } if contact == "sip:a@h:1"));
        assert_eq!(r.contacts(LineId(1), 0).len(), 2);
    }
}
