use crate::{Channel, HandlerError, MessageInfo, MessageRegisters};

/// One protected procedure call: the channel it travels on, its tag, and the
/// message registers that carry the arguments in and the reply back. A caller's
/// kernel gets it with the caller's channel id; the kernel hands it to the callee's
/// [`Handler::protected`](crate::Handler::protected) re-tagged with the callee's id
/// for the same channel (Microkit's `protected(ch, msginfo)`, with the IPC buffer).
#[derive(Debug, PartialEq, Eq)]
pub struct PpCall<'a> {
    pub ch: Channel,
    pub msg: MessageInfo,
    pub mrs: &'a mut MessageRegisters,
}

impl<'a> PpCall<'a> {
    pub fn new(ch: Channel, msg: MessageInfo, mrs: &'a mut MessageRegisters) -> Self {
        Self { ch, msg, mrs }
    }

    /// The same call as the PD on the other end of the channel names it.
    pub fn on(self, ch: Channel) -> Self {
        Self { ch, ..self }
    }

    pub fn label(&self) -> u64 {
        self.msg.label()
    }

    /// How many message registers the caller filled.
    pub fn count(&self) -> usize {
        self.msg.count()
    }

    /// The handler's refusal of a label or registers it does not understand.
    pub fn bad_request(&self) -> HandlerError {
        HandlerError::BadRequest {
            channel: self.ch,
            label: self.msg.label(),
        }
    }

    /// The handler's refusal of a call on a channel it does not serve calls on.
    pub fn unexpected(&self) -> HandlerError {
        HandlerError::UnexpectedCall(self.ch)
    }
}
