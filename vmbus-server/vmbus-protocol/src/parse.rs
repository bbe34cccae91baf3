//! Parsing a received channel message: type, size and what the negotiated version
//! allows. Never panics, whatever the bytes.

use zerocopy::FromBytes;

use crate::flags::FeatureFlags;
use crate::messages::*;
use crate::version::{Version, MAX_MESSAGE_SIZE};

/// What the connection negotiated; decides which messages are legal.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub version: Version,
    pub features: FeatureFlags,
}

/// A parsed message. Variable-length data (GPADL page lists) borrows the input.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    OfferChannel(OfferChannel),
    RescindChannelOffer(RescindChannelOffer),
    RequestOffers,
    AllOffersDelivered,
    OpenChannel(OpenChannel),
    OpenResult(OpenResult),
    CloseChannel(CloseChannel),
    /// The header and the range bytes that follow it in this message.
    GpadlHeader(GpadlHeader, &'a [u8]),
    /// The body and the page-number bytes that follow it.
    GpadlBody(GpadlBody, &'a [u8]),
    GpadlCreated(GpadlCreated),
    GpadlTeardown(GpadlTeardown),
    GpadlTorndown(GpadlTorndown),
    RelidReleased(RelidReleased),
    InitiateContact(InitiateContact),
    /// With the 6.0 feature word when the message is long enough to carry it.
    VersionResponse(VersionResponse, Option<FeatureFlags>),
    Unload,
    UnloadResponse,
    TlConnectRequest(TlConnectRequest),
    TlConnectResult(TlConnectResult),
    ModifyChannel(ModifyChannel),
    ModifyChannelResponse(ModifyChannelResponse),
    ModifyConnection(ModifyConnection),
    ModifyConnectionResponse(ModifyConnectionResponse),
    Pause,
    PauseResponse,
    Resume,
}

impl Message<'_> {
    /// Whether only the host sends this message (offers, results, responses): the
    /// complement of what a guest may send.
    pub fn from_host(&self) -> bool {
        !matches!(
            self,
            Self::InitiateContact(_)
                | Self::RequestOffers
                | Self::GpadlHeader(..)
                | Self::GpadlBody(..)
                | Self::GpadlTeardown(_)
                | Self::OpenChannel(_)
                | Self::CloseChannel(_)
                | Self::RelidReleased(_)
                | Self::ModifyChannel(_)
                | Self::Unload
                | Self::TlConnectRequest(_)
                | Self::ModifyConnection(_)
                | Self::Pause
                | Self::Resume
        )
    }

    pub fn message_type(&self) -> MessageType {
        match self {
            Self::OfferChannel(_) => MessageType::OFFERCHANNEL,
            Self::RescindChannelOffer(_) => MessageType::RESCIND_CHANNELOFFER,
            Self::RequestOffers => MessageType::REQUESTOFFERS,
            Self::AllOffersDelivered => MessageType::ALLOFFERS_DELIVERED,
            Self::OpenChannel(_) => MessageType::OPENCHANNEL,
            Self::OpenResult(_) => MessageType::OPENCHANNEL_RESULT,
            Self::CloseChannel(_) => MessageType::CLOSECHANNEL,
            Self::GpadlHeader(..) => MessageType::GPADL_HEADER,
            Self::GpadlBody(..) => MessageType::GPADL_BODY,
            Self::GpadlCreated(_) => MessageType::GPADL_CREATED,
            Self::GpadlTeardown(_) => MessageType::GPADL_TEARDOWN,
            Self::GpadlTorndown(_) => MessageType::GPADL_TORNDOWN,
            Self::RelidReleased(_) => MessageType::RELID_RELEASED,
            Self::InitiateContact(_) => MessageType::INITIATE_CONTACT,
            Self::VersionResponse(..) => MessageType::VERSION_RESPONSE,
            Self::Unload => MessageType::UNLOAD,
            Self::UnloadResponse => MessageType::UNLOAD_RESPONSE,
            Self::TlConnectRequest(_) => MessageType::TL_CONNECT_REQUEST,
            Self::TlConnectResult(_) => MessageType::TL_CONNECT_RESULT,
            Self::ModifyChannel(_) => MessageType::MODIFYCHANNEL,
            Self::ModifyChannelResponse(_) => MessageType::MODIFYCHANNEL_RESPONSE,
            Self::ModifyConnection(_) => MessageType::MODIFY_CONNECTION,
            Self::ModifyConnectionResponse(_) => MessageType::MODIFY_CONNECTION_RESPONSE,
            Self::Pause => MessageType::PAUSE,
            Self::PauseResponse => MessageType::PAUSE_RESPONSE,
            Self::Resume => MessageType::RESUME,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Shorter than the 8-byte header.
    #[error("{len}-byte message has no header")]
    NoHeader { len: usize },
    /// Longer than an hv_message payload can be.
    #[error("{len}-byte message exceeds {MAX_MESSAGE_SIZE}")]
    TooLong { len: usize },
    /// Shorter than the message type's structure.
    #[error("{message_type:?} is {len} bytes, needs {needed}")]
    TooShort {
        message_type: MessageType,
        len: usize,
        needed: usize,
    },
    /// Not a type this protocol defines (or one only Windows hosts use internally).
    #[error("unknown message type {}", .0.0)]
    UnknownType(MessageType),
    /// Only INITIATE_CONTACT / VERSION_RESPONSE / UNLOAD(_RESPONSE) are legal before
    /// a version is negotiated.
    #[error("{0:?} before a version was negotiated")]
    NotConnected(MessageType),
    /// The negotiated version predates this message.
    #[error("{message_type:?} needs version {needed}, negotiated {negotiated}")]
    NeedsVersion {
        message_type: MessageType,
        needed: Version,
        negotiated: Version,
    },
    /// The message needs a feature the connection did not negotiate.
    #[error("{message_type:?} needs feature {feature:?}")]
    NeedsFeature {
        message_type: MessageType,
        feature: FeatureFlags,
    },
}

/// When a type is legal. `None` in `min_version` means "also before negotiation".
struct Rule {
    size: usize,
    min_version: Option<Version>,
    feature: FeatureFlags,
}

const fn rule(size: usize, min_version: Version) -> Rule {
    Rule {
        size,
        min_version: Some(min_version),
        feature: FeatureFlags::EMPTY,
    }
}

const fn unconnected(size: usize) -> Rule {
    Rule {
        size,
        min_version: None,
        feature: FeatureFlags::EMPTY,
    }
}

const fn featured(size: usize, feature: FeatureFlags) -> Rule {
    Rule {
        size,
        min_version: Some(Version::V6_0),
        feature,
    }
}

fn rule_for(t: MessageType) -> Option<Rule> {
    use MessageType as T;
    let v1 = Version::WS2008;
    Some(match t {
        T::OFFERCHANNEL => rule(OfferChannel::MESSAGE_SIZE, v1),
        T::RESCIND_CHANNELOFFER => rule(RescindChannelOffer::MESSAGE_SIZE, v1),
        T::REQUESTOFFERS => rule(RequestOffers::MESSAGE_SIZE, v1),
        T::ALLOFFERS_DELIVERED => rule(AllOffersDelivered::MESSAGE_SIZE, v1),
        T::OPENCHANNEL => rule(OpenChannel::MESSAGE_SIZE, v1),
        T::OPENCHANNEL_RESULT => rule(OpenResult::MESSAGE_SIZE, v1),
        T::CLOSECHANNEL => rule(CloseChannel::MESSAGE_SIZE, v1),
        T::GPADL_HEADER => rule(GpadlHeader::MESSAGE_SIZE, v1),
        T::GPADL_BODY => rule(GpadlBody::MESSAGE_SIZE, v1),
        T::GPADL_CREATED => rule(GpadlCreated::MESSAGE_SIZE, v1),
        T::GPADL_TEARDOWN => rule(GpadlTeardown::MESSAGE_SIZE, v1),
        T::GPADL_TORNDOWN => rule(GpadlTorndown::MESSAGE_SIZE, v1),
        T::RELID_RELEASED => rule(RelidReleased::MESSAGE_SIZE, v1),
        T::INITIATE_CONTACT => unconnected(InitiateContact::MESSAGE_SIZE),
        T::VERSION_RESPONSE => unconnected(VersionResponse::MESSAGE_SIZE),
        T::UNLOAD => unconnected(Unload::MESSAGE_SIZE),
        T::UNLOAD_RESPONSE => unconnected(UnloadResponse::MESSAGE_SIZE),
        T::TL_CONNECT_REQUEST => rule(TlConnectRequest::MESSAGE_SIZE, Version::WIN10),
        T::MODIFYCHANNEL => rule(ModifyChannel::MESSAGE_SIZE, Version::WIN10_V4_1),
        T::TL_CONNECT_RESULT => rule(TlConnectResult::MESSAGE_SIZE, Version::WIN10_V4_1),
        T::MODIFYCHANNEL_RESPONSE => rule(ModifyChannelResponse::MESSAGE_SIZE, Version::WIN10_V5_3),
        T::MODIFY_CONNECTION => featured(
            ModifyConnection::MESSAGE_SIZE,
            FeatureFlags::MODIFY_CONNECTION,
        ),
        T::MODIFY_CONNECTION_RESPONSE => featured(
            ModifyConnectionResponse::MESSAGE_SIZE,
            FeatureFlags::MODIFY_CONNECTION,
        ),
        T::PAUSE => featured(Pause::MESSAGE_SIZE, FeatureFlags::PAUSE_RESUME),
        T::PAUSE_RESPONSE => featured(PauseResponse::MESSAGE_SIZE, FeatureFlags::PAUSE_RESUME),
        T::RESUME => featured(Resume::MESSAGE_SIZE, FeatureFlags::PAUSE_RESUME),
        // 18-20 are Windows-internal reserved-channel messages; 0 is INVALID.
        _ => return None,
    })
}

/// Parses one channel message (header included). `negotiated` is `None` while no
/// version is negotiated.
pub fn parse(bytes: &[u8], negotiated: Option<Negotiated>) -> Result<Message<'_>, ParseError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLong { len: bytes.len() });
    }
    let (header, _) = MessageHeader::read_from_prefix(bytes)
        .map_err(|_| ParseError::NoHeader { len: bytes.len() })?;
    let t = header.message_type;
    let rule = rule_for(t).ok_or(ParseError::UnknownType(t))?;
    if bytes.len() < rule.size {
        return Err(ParseError::TooShort {
            message_type: t,
            len: bytes.len(),
            needed: rule.size,
        });
    }
    if let Some(min) = rule.min_version {
        let n = negotiated.ok_or(ParseError::NotConnected(t))?;
        if n.version < min {
            return Err(ParseError::NeedsVersion {
                message_type: t,
                needed: min,
                negotiated: n.version,
            });
        }
        if !n.features.contains(rule.feature) {
            return Err(ParseError::NeedsFeature {
                message_type: t,
                feature: rule.feature,
            });
        }
    }
    let body = &bytes[HEADER_SIZE..];
    decode(t, body).ok_or(ParseError::TooShort {
        message_type: t,
        len: bytes.len(),
        needed: rule.size,
    })
}

/// Reads the fixed part of `T` from `body`, returning the bytes after it.
fn read<T: VmbusMessage>(body: &[u8]) -> Option<(T, &[u8])> {
    T::read_from_prefix(body).ok()
}

fn decode(t: MessageType, body: &[u8]) -> Option<Message<'_>> {
    use MessageType as T;
    Some(match t {
        T::OFFERCHANNEL => Message::OfferChannel(read(body)?.0),
        T::RESCIND_CHANNELOFFER => Message::RescindChannelOffer(read(body)?.0),
        T::REQUESTOFFERS => Message::RequestOffers,
        T::ALLOFFERS_DELIVERED => Message::AllOffersDelivered,
        T::OPENCHANNEL => Message::OpenChannel(read(body)?.0),
        T::OPENCHANNEL_RESULT => Message::OpenResult(read(body)?.0),
        T::CLOSECHANNEL => Message::CloseChannel(read(body)?.0),
        T::GPADL_HEADER => {
            let (h, rest) = read(body)?;
            Message::GpadlHeader(h, rest)
        }
        T::GPADL_BODY => {
            let (b, rest) = read(body)?;
            Message::GpadlBody(b, rest)
        }
        T::GPADL_CREATED => Message::GpadlCreated(read(body)?.0),
        T::GPADL_TEARDOWN => Message::GpadlTeardown(read(body)?.0),
        T::GPADL_TORNDOWN => Message::GpadlTorndown(read(body)?.0),
        T::RELID_RELEASED => Message::RelidReleased(read(body)?.0),
        T::INITIATE_CONTACT => Message::InitiateContact(read(body)?.0),
        T::VERSION_RESPONSE => {
            let (r, rest) = read::<VersionResponse>(body)?;
            let features = u32::read_from_prefix(rest)
                .ok()
                .map(|(f, _)| FeatureFlags(f));
            Message::VersionResponse(r, features)
        }
        T::UNLOAD => Message::Unload,
        T::UNLOAD_RESPONSE => Message::UnloadResponse,
        T::TL_CONNECT_REQUEST => Message::TlConnectRequest(read(body)?.0),
        T::TL_CONNECT_RESULT => Message::TlConnectResult(read(body)?.0),
        T::MODIFYCHANNEL => Message::ModifyChannel(read(body)?.0),
        T::MODIFYCHANNEL_RESPONSE => Message::ModifyChannelResponse(read(body)?.0),
        T::MODIFY_CONNECTION => Message::ModifyConnection(read(body)?.0),
        T::MODIFY_CONNECTION_RESPONSE => Message::ModifyConnectionResponse(read(body)?.0),
        T::PAUSE => Message::Pause,
        T::PAUSE_RESPONSE => Message::PauseResponse,
        T::RESUME => Message::Resume,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{GpadlId, Relid};
    use proptest::prelude::*;
    use std::vec::Vec;
    use zerocopy::FromZeros;

    #[test]
    fn direction_splits_requests_from_answers() {
        for (m, host) in [
            (Message::RequestOffers, false),
            (Message::AllOffersDelivered, true),
            (Message::Unload, false),
            (Message::UnloadResponse, true),
            (Message::Pause, false),
            (Message::PauseResponse, true),
            (Message::Resume, false),
        ] {
            assert_eq!(m.from_host(), host, "{m:?}");
        }
    }

    fn v(version: Version) -> Option<Negotiated> {
        Some(Negotiated {
            version,
            features: FeatureFlags::EMPTY,
        })
    }

    #[test]
    fn every_fixed_message_round_trips() {
        let open = OpenChannel {
            child_relid: Relid(3),
            open_id: 9,
            ring_buffer_gpadl: GpadlId(0xe1e10),
            target_vp: 1,
            downstream_ring_buffer_page_offset: 4,
            user_data: [7; 120],
        };
        let m = OutgoingMessage::new(&open);
        assert_eq!(
            parse(m.as_bytes(), v(Version::WIN10_V5_3)),
            Ok(Message::OpenChannel(open))
        );
        let offer = OfferChannel::new_zeroed();
        let m = OutgoingMessage::new(&offer);
        assert_eq!(
            parse(m.as_bytes(), v(Version::WS2008)),
            Ok(Message::OfferChannel(offer))
        );
    }

    #[test]
    fn one_byte_short_of_every_type_is_refused() {
        for t in 0..40u32 {
            let Some(rule) = rule_for(MessageType(t)) else {
                continue;
            };
            let mut bytes = Vec::from([0u8; MAX_MESSAGE_SIZE]);
            bytes[..4].copy_from_slice(&t.to_le_bytes());
            bytes.truncate(rule.size - 1);
            let n = Some(Negotiated {
                version: Version::V6_0,
                features: FeatureFlags(u32::MAX),
            });
            assert!(
                matches!(
                    parse(&bytes, n),
                    Err(ParseError::TooShort { .. } | ParseError::NoHeader { .. })
                ),
                "type {t}"
            );
            bytes.resize(rule.size, 0);
            assert!(parse(&bytes, n).is_ok(), "type {t}");
        }
    }

    #[test]
    fn order_and_version_rules_apply() {
        let close = OutgoingMessage::new(&CloseChannel {
            child_relid: Relid(1),
        });
        assert_eq!(
            parse(close.as_bytes(), None),
            Err(ParseError::NotConnected(MessageType::CLOSECHANNEL))
        );
        let modify = OutgoingMessage::new(&ModifyChannel {
            child_relid: Relid(1),
            target_vp: 0,
        });
        assert_eq!(
            parse(modify.as_bytes(), v(Version::WIN10)),
            Err(ParseError::NeedsVersion {
                message_type: MessageType::MODIFYCHANNEL,
                needed: Version::WIN10_V4_1,
                negotiated: Version::WIN10,
            })
        );
        assert!(parse(modify.as_bytes(), v(Version::WIN10_V4_1)).is_ok());
        let pause = OutgoingMessage::new(&Pause {});
        assert!(matches!(
            parse(pause.as_bytes(), v(Version::V6_0)),
            Err(ParseError::NeedsFeature { .. })
        ));
        let contact = OutgoingMessage::new(&InitiateContact::new_zeroed());
        assert!(parse(contact.as_bytes(), None).is_ok());
        assert!(parse(contact.as_bytes(), v(Version::V6_0)).is_ok());
    }

    #[test]
    fn unknown_and_reserved_types_are_refused() {
        for t in [0u32, 18, 19, 20, 30, u32::MAX] {
            let mut bytes = [0u8; 64];
            bytes[..4].copy_from_slice(&t.to_le_bytes());
            assert_eq!(
                parse(&bytes, v(Version::V6_0)),
                Err(ParseError::UnknownType(MessageType(t)))
            );
        }
        assert_eq!(
            parse(&[1, 0, 0], None),
            Err(ParseError::NoHeader { len: 3 })
        );
        assert_eq!(
            parse(&[0; MAX_MESSAGE_SIZE + 1], None),
            Err(ParseError::TooLong { len: 241 })
        );
    }

    #[test]
    fn version_response_features_are_optional() {
        let r = VersionResponse {
            version_supported: 1,
            connection_state: ConnectionState::SUCCESSFUL,
            padding: 0,
            msg_conn_id: 4,
        };
        let short = OutgoingMessage::new(&r);
        assert_eq!(
            parse(short.as_bytes(), None),
            Ok(Message::VersionResponse(r, None))
        );
        let long = OutgoingMessage::new(&VersionResponse2 {
            response: r,
            supported_features: 0x10,
        });
        assert_eq!(
            parse(long.as_bytes(), None),
            Ok(Message::VersionResponse(
                r,
                Some(FeatureFlags::CONFIDENTIAL_CHANNELS)
            ))
        );
    }

    #[test]
    fn gpadl_messages_carry_their_tails() {
        let h = GpadlHeader {
            child_relid: Relid(1),
            gpadl: GpadlId(2),
            range_buf_len: 16,
            range_count: 1,
        };
        let m = OutgoingMessage::with_tail(&h, &[1; 16]).unwrap();
        assert_eq!(
            parse(m.as_bytes(), v(Version::WIN8)),
            Ok(Message::GpadlHeader(h, &[1; 16][..]))
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                    version in any::<u32>(), features in any::<u32>(), connected in any::<bool>()) {
            let n = connected.then_some(Negotiated { version: Version(version), features: FeatureFlags(features) });
            if let Ok(m) = parse(&bytes, n) {
                prop_assert_eq!(&bytes[..4], &m.message_type().0.to_le_bytes());
            }
        }

        #[test]
        fn random_types_with_valid_lengths_never_panic(t in 0u32..40, len in 0usize..=240) {
            let mut bytes = std::vec![0xa5u8; len];
            if len >= 4 {
                bytes[..4].copy_from_slice(&t.to_le_bytes());
            }
            let _ = parse(&bytes, v(Version::V6_0));
        }
    }
}
