//! Malformed input a hostile guest can produce: channel messages (random bytes,
//! known types cut short, known types with nonsense fields) and hypercalls the TLFS
//! says must fail. Deterministic from a seed, so a failing run repeats.

use alloc::vec;
use alloc::vec::Vec;

use vmbus_protocol::MessageType;

/// xorshift64*: small, fast and good enough to spread junk around.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let w = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

/// The largest channel message (an HvPostMessage payload).
pub const MAX_MESSAGE: usize = 240;

/// Message types that, whole and well formed, would end or restart the guest's own
/// connection; the flood sends them only cut short.
const SESSION_CHANGING: [MessageType; 2] = [MessageType::INITIATE_CONTACT, MessageType::UNLOAD];

/// One malformed channel message. `live_relid` is never named in the relid field,
/// so the junk attacks the server, not the test's own channel.
pub fn channel_message(rng: &mut XorShift, live_relid: Option<u32>) -> Vec<u8> {
    let kind = rng.below(4);
    let mut m = vec![0u8; 1 + rng.below(MAX_MESSAGE as u64) as usize];
    rng.fill(&mut m);
    let ty = match kind {
        // Random bytes, random type word.
        0 => return m,
        // A real type, with a size that is rarely right.
        1 => MessageType(rng.below(32) as u32),
        // A real type, the relid field a small number the guest does not own.
        _ => MessageType(1 + rng.below(29) as u32),
    };
    if m.len() < 12 {
        m.resize(12, 0);
    }
    m[..4].copy_from_slice(&ty.0.to_le_bytes());
    if kind >= 2 {
        let relid = 2 + rng.below(64) as u32;
        m[8..12].copy_from_slice(&relid.to_le_bytes());
    }
    if SESSION_CHANGING.contains(&ty) {
        // Shorter than a header: never parsed as the real thing.
        m.truncate(6);
    }
    if let Some(live) = live_relid {
        if m.len() >= 12 && m[8..12] == live.to_le_bytes() {
            m[11] ^= 0x80;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vmbus_protocol::{parse, Message, Negotiated, Version};

    #[test]
    fn junk_is_mostly_refused_by_the_parser_and_never_session_changing() {
        let mut rng = XorShift::new(7);
        let negotiated = Some(Negotiated {
            version: Version::V6_0,
            features: vmbus_protocol::FeatureFlags::EMPTY,
        });
        let mut refused = 0;
        for _ in 0..2000 {
            let m = channel_message(&mut rng, Some(1));
            assert!(!m.is_empty() && m.len() <= MAX_MESSAGE);
            match parse(&m, negotiated) {
                Err(_) => refused += 1,
                Ok(Message::InitiateContact(..) | Message::Unload) => {
                    panic!("session-changing junk {m:x?}")
                }
                Ok(_) => {}
            }
            if m.len() >= 12 {
                assert_ne!(m[8..12], 1u32.to_le_bytes(), "names the live relid");
            }
        }
        assert!(refused > 1000, "only {refused} of 2000 refused");
    }

    proptest! {
        #[test]
        fn the_same_seed_gives_the_same_junk(seed in any::<u64>()) {
            let (mut a, mut b) = (XorShift::new(seed), XorShift::new(seed));
            for _ in 0..8 {
                prop_assert_eq!(channel_message(&mut a, None), channel_message(&mut b, None));
            }
        }
    }
}
