extern crate std;

use core::fmt::Write as _;
use std::format;
use std::string::ToString;

use ipc::testing::{RecordingKernel, RoutingKernel};
use ipc::{Channel, IpcError, MessageInfo, MessageRegisters, PpCall, PpReply};

use super::*;

crate::status! {
    /// A device with one refusal of its own.
    struct Status in "the test page" {
        BAD = 5 => "bad thing",
    }
}

fn decode(label: u64, regs: &[u64]) -> Result<MmioRequest, DecodeError> {
    let mut mrs = MessageRegisters::new();
    for (i, &r) in regs.iter().enumerate() {
        mrs.set(i, r);
    }
    MmioRequest::decode(MessageInfo::new(label, regs.len()), &mrs)
}

/// Name, label, registers, and what they decode to.
type DecodeCase = (
    &'static str,
    u64,
    &'static [u64],
    Result<MmioRequest, DecodeError>,
);

#[test]
fn requests_decode_from_hostile_registers() {
    let cases: &[DecodeCase] = &[
        (
            "read",
            label::MMIO_READ,
            &[0xfec0_0000, 4],
            Ok(MmioRequest::Read {
                gpa: 0xfec0_0000,
                size: 4,
            }),
        ),
        (
            "write, value kept whole",
            label::MMIO_WRITE,
            &[1, 2, u64::MAX],
            Ok(MmioRequest::Write {
                gpa: 1,
                size: 2,
                value: u64::MAX,
            }),
        ),
        (
            "read too short",
            label::MMIO_READ,
            &[0xfec0_0000],
            Err(DecodeError::TooShort { needed: 2, got: 1 }),
        ),
        (
            "write without a value",
            label::MMIO_WRITE,
            &[0, 4],
            Err(DecodeError::TooShort { needed: 3, got: 2 }),
        ),
        (
            "another label",
            0x1A03,
            &[0, 4],
            Err(DecodeError::UnknownLabel(0x1A03)),
        ),
    ];
    for (name, label, regs, want) in cases {
        assert_eq!(decode(*label, regs), *want, "{name}");
    }
}

#[test]
fn requests_round_trip_and_split() {
    for (request, parts) in [
        (MmioRequest::Read { gpa: 9, size: 8 }, (9, 8, None)),
        (
            MmioRequest::Write {
                gpa: 9,
                size: 1,
                value: 0x1ff,
            },
            (9, 1, Some(0x1ff)),
        ),
    ] {
        let mut mrs = MessageRegisters::new();
        let msg = request.encode(&mut mrs);
        assert_eq!(MmioRequest::decode(msg, &mrs), Ok(request));
        assert_eq!(request.parts(), parts, "{request:?}");
    }
}

#[test]
fn value_masks_cover_the_access_size() {
    for (size, mask) in [(1, 0xff), (2, 0xffff), (4, 0xffff_ffff), (8, u64::MAX)] {
        assert_eq!(value_mask(size), mask, "size {size}");
    }
}

#[test]
fn status_names_known_and_unknown_codes() {
    assert_eq!(format!("{:?}", Status::OK), "Status(ok)");
    assert_eq!(format!("{}", Status::BAD), "bad thing");
    assert_eq!(format!("{:?}", Status(0x42)), "Status(0x42)");
    let common = [
        (Status::OUTSIDE_WINDOW, "outside the test page"),
        (Status::BAD_SIZE, "bad access size"),
        (Status::NOT_PERMITTED, "not permitted"),
        (Status::BAD_REQUEST, "bad request"),
    ];
    for (status, name) in common {
        assert_eq!(status.to_string(), name, "{status:?}");
        assert_ne!(status, Status::BAD);
    }
    assert_eq!(Status(0x42).to_string(), "status 0x42");
    assert_eq!(Status::from(5), Status::BAD);
    assert_eq!(
        ClientError::Refused(Status::BAD).to_string(),
        "refused: bad thing"
    );
}

/// A device that answers reads of 0x10 with 0xab, refuses everything else with
/// BAD, and records the last write.
fn device(call: PpCall<'_>) -> PpReply {
    let PpCall { ch, msg, mrs } = call;
    assert_eq!(ch, Channel::new(2));
    let reply = match MmioRequest::decode(msg, mrs) {
        Ok(MmioRequest::Read { gpa: 0x10, size: 1 }) => reply(mrs, OK, 0xab),
        Ok(MmioRequest::Write { value, .. }) => reply(mrs, OK, value),
        _ => reply(mrs, Status::BAD.0, 0),
    };
    Ok(reply)
}

#[test]
fn clients_see_values_and_refusals() {
    let mut k = RoutingKernel::new(device);
    let ch = Channel::new(2);
    assert_eq!(mmio_read::<Status>(&mut k, ch, 0x10, 1), Ok(0xab));
    assert_eq!(
        mmio_read::<Status>(&mut k, ch, 0x11, 1),
        Err(ClientError::Refused(Status::BAD))
    );
    assert_eq!(mmio_write::<Status>(&mut k, ch, 0, 4, 5), Ok(()));
    assert_eq!(forward(&mut k, ch, 0x10, 1, None), Ok(0xab));
    assert_eq!(forward(&mut k, ch, 0, 4, Some(7)), Ok(7));
    assert_eq!(
        forward(&mut k, ch, 0x11, 1, None),
        Err(ClientError::Refused(5))
    );
    assert_eq!(
        call::<Status>(&mut k, ch, 0x7777, &[]),
        Err(ClientError::Refused(Status::BAD))
    );
    let mut refusing = RecordingKernel::default();
    assert_eq!(
        forward(&mut refusing, ch, 0, 4, None),
        Err(ClientError::Ipc(IpcError::NotGranted(ch)))
    );
}

#[test]
fn log_lines_are_prefixed_and_cut_to_the_buffer() {
    let mut k = RecordingKernel::default();
    log(&mut k, "dev", format_args!("refused {}", 1));
    assert_eq!(k.console, "dev: refused 1\n");
    // Written a character at a time, as a long formatted value is.
    struct Long;
    impl core::fmt::Display for Long {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            (0..400).try_for_each(|_| f.write_char('x'))
        }
    }
    let mut k = RecordingKernel::default();
    log(&mut k, "dev", format_args!("{Long}"));
    assert_eq!(k.console.len(), 200);
    assert!(k.console.starts_with("dev: xxx"));
    assert!(k.console.ends_with("x\n"));
}

/// A device PD in-process: answers through [`device`], or with two registers when
/// `broken`.
struct Pd {
    broken: bool,
}

impl ipc::Handler for Pd {
    fn protected(&mut self, _: &mut dyn ipc::Kernel, call: PpCall<'_>) -> ipc::HandlerReply {
        let reply = device(call).map_err(ipc::HandlerError::Ipc)?;
        Ok(match self.broken {
            true => MessageInfo::new(reply.label(), 2),
            false => reply,
        })
    }
}

#[test]
fn serve_hands_a_pd_one_call() {
    let mut k = RecordingKernel::default();
    let mut pd = Pd { broken: false };
    let ch = Channel::new(2);
    let read = serve::<Status>(&mut pd, &mut k, ch, label::MMIO_READ, &[0x10, 1]);
    assert_eq!(read, Ok((Status::OK, 0xab)));
    let short = serve::<Status>(&mut pd, &mut k, ch, label::MMIO_WRITE, &[0x10, 1]);
    assert_eq!(short, Ok((Status::BAD, 0)));
}

#[test]
#[should_panic(expected = "mr0 alone")]
fn serve_refuses_a_reply_longer_than_mr0() {
    let mut pd = Pd { broken: true };
    let _ = serve::<Status>(
        &mut pd,
        &mut RecordingKernel::default(),
        Channel::new(2),
        label::MMIO_READ,
        &[0x10, 1],
    );
}

/// A device PD written the way the ioapic and tpm are: `call` decides,
/// [`protected!`](crate::protected) replies.
struct Counter {
    served: u64,
}

impl Counter {
    fn call(&mut self, _: &mut dyn ipc::Kernel, call: &PpCall<'_>) -> Answer<Status> {
        if call.ch != Channel::new(2) {
            return Err(call.unexpected());
        }
        Ok(match MmioRequest::decode(call.msg, call.mrs) {
            Ok(MmioRequest::Read { gpa, .. }) => {
                self.served += 1;
                Ok(gpa + 1)
            }
            _ => Err(Status::BAD),
        })
    }
}

impl ipc::Handler for Counter {
    crate::protected!();
}

#[test]
fn protected_replies_with_the_answer_and_passes_pd_errors_on() {
    let mut pd = Counter { served: 0 };
    let mut k = RecordingKernel::default();
    let read = serve::<Status>(&mut pd, &mut k, Channel::new(2), label::MMIO_READ, &[7, 1]);
    assert_eq!(read, Ok((Status::OK, 8)));
    let write = serve::<Status>(&mut pd, &mut k, Channel::new(2), label::MMIO_WRITE, &[7, 1]);
    assert_eq!(write, Ok((Status::BAD, 0)));
    let stranger = serve::<Status>(&mut pd, &mut k, Channel::new(3), label::MMIO_READ, &[7, 1]);
    assert_eq!(
        stranger,
        Err(ipc::HandlerError::UnexpectedCall(Channel::new(3)))
    );
    assert_eq!(pd.served, 1);
}
