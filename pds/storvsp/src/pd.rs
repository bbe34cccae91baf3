//! storvsp as an `ipc` protection domain.
//!
//! vmbus-server calls it with the VSP contract (`vmbus_server::vsp`): GET_OFFER for
//! the storage offer, MAP_GPADL with the page list in the GPADL window, OPEN with
//! the ring GPADL, CLOSE, MODIFY. On OPEN the PD claims the channel's signal
//! connection at hvcall-pd, so the guest's HvSignalEvent arrives as a notification
//! on the hvcall channel; it then drains every open channel and signals the guest
//! through synic-pd's SIGNAL_EVENT when the rings ask for it.
//!
//! What system.xml must grant (`setvar_vaddr` / `setvar` names):
//! - region [`GUEST_RAM`] (rw): guest RAM, for the rings and the GPA-direct data
//!   buffers; variable [`GUEST_RAM_GPA`]: where it sits in guest physical space;
//! - region [`GPADL_WINDOW`] (r): vmbus-server's `vsp<i>_gpadl` window;
//! - variables [`VMBUS_CHANNEL`] (vmbus-server pp-calls us; we notify it),
//!   [`HVCALL_CHANNEL`] (pp to hvcall-pd, which notifies on it) and
//!   [`SYNIC_CHANNEL`] (pp to synic-pd);
//! - the disk: region [`DISK`] (rw) on bare metal, or a backend the host-sim entry
//!   passes in.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use hvcall_pd::api::{
    register_connection, unregister_connection, RegisterStatus, Registration, RouteKind,
};
use hvdef::Vtl;
use ipc::{
    Channel, ChannelSet, Handler, HandlerError, Init, InitError, Kernel, MessageInfo,
    MessageRegisters, Perms, Region,
};
use synic_pd::{Instance, SintTarget};
use vmbus_protocol::ids::{interface, Guid};
use vmbus_protocol::status::{
    STATUS_DEVICE_NOT_CONNECTED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS,
};
use vmbus_protocol::{GpadlId, OfferFlags, Relid};
use vmbus_ring::GpadlRingMem;
use vmbus_server::vsp::{self, MapGpadl, VspOffer, VspOpen, VspRequest, REPLY_NONE, REPLY_OK};

use crate::backend::{Backend, RegionBackend};
use crate::channel::{NoSubChannels, Storvsp, StorvspConfig};
use crate::guest_mem::RegionGuestMemory;
use crate::packet::PAGE_SIZE;
use crate::ring_transport::RingTransport;
use crate::scsi::{Controller, DiskConfig, ScsiAddress, ScsiDisk};
use crate::transport::{scratch_size, service};

pub const GUEST_RAM: &str = "guest_ram";
pub const GUEST_RAM_GPA: &str = "guest_ram_gpa";
pub const GPADL_WINDOW: &str = "gpadl_window";
pub const DISK: &str = "disk";
pub const VMBUS_CHANNEL: &str = "vmbus_channel";
pub const HVCALL_CHANNEL: &str = "hvcall_channel";
pub const SYNIC_CHANNEL: &str = "synic_channel";

/// The instance GUID of the one controller this PD offers.
pub const INSTANCE_ID: Guid =
    Guid::from_fields(0x5354_4f52, 0x5653, 0x5000, [0, 0, 0, 0, 0, 0, 0, 1]);

/// Most page-list words a GPADL may have for us (a ring GPADL of 1 MiB + header).
const MAX_GPADL_WORDS: usize = 1 + 256 + 1;

struct OpenChannel<'a> {
    transport: RingTransport<GpadlRingMem<'a, Vec<u64>>>,
    target: SintTarget,
    event_flag: u32,
    signal_connection_id: u32,
}

/// The PD's state.
pub struct StorvspPd<'a> {
    vsp: Storvsp,
    ram: Region<'a>,
    mem: RegionGuestMemory<'a>,
    ram_first_pfn: u64,
    window: Region<'a>,
    vmbus: Channel,
    hvcall: Channel,
    synic: Channel,
    gpadls: BTreeMap<(Relid, GpadlId), Vec<u64>>,
    channels: BTreeMap<Relid, OpenChannel<'a>>,
    scratch: Vec<u8>,
    /// Channels torn down because their ring broke the protocol.
    pub broken_rings: u64,
}

impl core::fmt::Debug for StorvspPd<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StorvspPd")
            .field("vsp", &self.vsp)
            .field("gpadls", &self.gpadls.len())
            .field("open", &self.channels.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Channels the PD uses.
#[derive(Copy, Clone, Debug)]
pub struct Channels {
    pub vmbus: Channel,
    pub hvcall: Channel,
    pub synic: Channel,
}

fn channel_var(init: &dyn Init, name: &'static str) -> Result<Channel, InitError> {
    let v = init.variable(name)?;
    u8::try_from(v)
        .ok()
        .and_then(Channel::try_new)
        .ok_or(InitError::InvalidVariable { name, value: v })
}

fn region(init: &dyn Init, name: &'static str, perms: Perms) -> Result<Region<'static>, InitError> {
    let r = init.region(name)?;
    if !r.perms().covers(perms) {
        return Err(InitError::RegionPerms {
            name,
            needed: perms,
        });
    }
    Ok(r)
}

impl StorvspPd<'static> {
    /// Builds the PD from what system.xml granted. `backend` is the disk when the
    /// runtime has one to give (host-sim: an image file); otherwise the [`DISK`]
    /// region is the disk.
    pub fn init(
        init: &dyn Init,
        backend: Option<Box<dyn Backend + Send>>,
    ) -> Result<Self, InitError> {
        let ram = region(init, GUEST_RAM, Perms::RW)?;
        let ram_gpa = init.variable(GUEST_RAM_GPA)?;
        let window = region(init, GPADL_WINDOW, Perms::R)?;
        let channels = Channels {
            vmbus: channel_var(init, VMBUS_CHANNEL)?,
            hvcall: channel_var(init, HVCALL_CHANNEL)?,
            synic: channel_var(init, SYNIC_CHANNEL)?,
        };
        let backend = match backend {
            Some(b) => b,
            None => Box::new(RegionBackend::new(region(init, DISK, Perms::RW)?)),
        };
        Self::new(ram, ram_gpa, window, channels, backend).ok_or(InitError::InvalidVariable {
            name: GUEST_RAM_GPA,
            value: ram_gpa,
        })
    }
}

impl<'a> StorvspPd<'a> {
    /// `None` if the RAM region cannot be guest memory at `ram_gpa` (not page
    /// aligned).
    pub fn new(
        ram: Region<'a>,
        ram_gpa: u64,
        window: Region<'a>,
        channels: Channels,
        backend: Box<dyn Backend + Send>,
    ) -> Option<Self> {
        let mem = RegionGuestMemory::single(ram_gpa, ram).ok()?;
        let mut controller = Controller::new();
        controller
            .attach(
                ScsiAddress::default(),
                ScsiDisk::new(backend, DiskConfig::default()),
            )
            .ok()?;
        let config = StorvspConfig::default();
        Some(Self {
            vsp: Storvsp::new(controller, config),
            ram,
            mem,
            ram_first_pfn: ram_gpa / PAGE_SIZE as u64,
            window,
            vmbus: channels.vmbus,
            hvcall: channels.hvcall,
            synic: channels.synic,
            gpadls: BTreeMap::new(),
            channels: BTreeMap::new(),
            scratch: vec![0; scratch_size(config.max_transfer_bytes)],
            broken_rings: 0,
        })
    }

    pub fn storvsp(&self) -> &Storvsp {
        &self.vsp
    }

    fn offer() -> VspOffer {
        VspOffer {
            interface_id: interface::STORAGE,
            instance_id: INSTANCE_ID,
            subchannel_index: 0,
            flags: OfferFlags::EMPTY,
            mmio_megabytes: 0,
            mmio_megabytes_optional: 0,
            // Data buffers are read straight from guest RAM as this PD maps it,
            // encrypted or not.
            confidential_external_memory: true,
            user_defined: [0; 120],
        }
    }

    fn map_gpadl(&mut self, m: &MapGpadl) -> u32 {
        let words = m.words as usize;
        if words > MAX_GPADL_WORDS {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        let mut buf = vec![0u64; words];
        if vsp::read_window(&self.window, &mut buf).is_err() {
            return STATUS_INVALID_PARAMETER;
        }
        let Ok(ranges) = vmbus_protocol::gpa::validate(&buf, usize::from(m.range_count)) else {
            return STATUS_INVALID_PARAMETER;
        };
        let mut pfns = Vec::new();
        for r in ranges.iter() {
            // Rings are whole pages.
            if r.byte_offset != 0 || !(r.byte_count as usize).is_multiple_of(PAGE_SIZE) {
                return STATUS_INVALID_PARAMETER;
            }
            for pfn in r.pfns.iter() {
                match pfn.checked_sub(self.ram_first_pfn) {
                    Some(p) => pfns.push(p),
                    None => return STATUS_INVALID_PARAMETER,
                }
            }
        }
        self.gpadls.insert((m.relid, m.gpadl), pfns);
        STATUS_SUCCESS
    }

    fn open(&mut self, kernel: &mut dyn Kernel, o: &VspOpen) -> u32 {
        if self.channels.contains_key(&o.relid) {
            return STATUS_INVALID_PARAMETER;
        }
        let Some(pfns) = self.gpadls.get(&(o.relid, o.ring_gpadl)) else {
            return STATUS_INVALID_PARAMETER;
        };
        let split = o.downstream_page_offset as usize;
        if split < 2 || pfns.len().saturating_sub(split) < 2 {
            return STATUS_INVALID_PARAMETER;
        }
        let up = pfns[..split].to_vec();
        let down = pfns[split..].to_vec();
        let (Ok(up), Ok(down)) = (
            GpadlRingMem::new(self.ram, up),
            GpadlRingMem::new(self.ram, down),
        ) else {
            return STATUS_INVALID_PARAMETER;
        };
        let Ok(transport) = RingTransport::new(up, down) else {
            return STATUS_INVALID_PARAMETER;
        };
        let reg = Registration {
            connection_id: o.signal_connection_id,
            vtl: Vtl::VTL0,
            kind: RouteKind::Service,
        };
        match register_connection(kernel, self.hvcall, &reg) {
            Ok(Some(RegisterStatus::Ok)) => {}
            _ => return STATUS_DEVICE_NOT_CONNECTED,
        }
        let instance = if o.paravisor_synic {
            Instance::PARAVISOR
        } else {
            Instance::HYPERVISOR
        };
        self.channels.insert(
            o.relid,
            OpenChannel {
                transport,
                target: SintTarget {
                    vp: o.target_vp,
                    instance,
                    sint: o.target_sint,
                },
                event_flag: o.event_flag,
                signal_connection_id: o.signal_connection_id,
            },
        );
        // A fresh open negotiates afresh.
        self.vsp.reset();
        STATUS_SUCCESS
    }

    fn close(&mut self, kernel: &mut dyn Kernel, relid: Relid) {
        if let Some(c) = self.channels.remove(&relid) {
            // hvcall-pd may be gone too; the channel is closed either way.
            let _ = unregister_connection(kernel, self.hvcall, c.signal_connection_id, Vtl::VTL0);
            self.vsp.reset();
        }
    }

    /// Answers one call from vmbus-server.
    pub fn vsp_call(
        &mut self,
        kernel: &mut dyn Kernel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, HandlerError> {
        let request = VspRequest::decode(msg, mrs).map_err(|_| HandlerError::BadRequest {
            channel: self.vmbus,
            label: msg.label(),
        })?;
        let status = match request {
            VspRequest::GetOffer { slot: 0 } => return Ok(Self::offer().encode(mrs)),
            VspRequest::GetOffer { .. } => return Ok(MessageInfo::new(REPLY_NONE, 0)),
            VspRequest::MapGpadl(m) => self.map_gpadl(&m),
            VspRequest::UnmapGpadl { relid, gpadl } => {
                self.gpadls.remove(&(relid, gpadl));
                STATUS_SUCCESS
            }
            VspRequest::Open(o) => self.open(kernel, &o),
            VspRequest::Close { relid } => {
                self.close(kernel, relid);
                STATUS_SUCCESS
            }
            VspRequest::Modify { relid, target_vp } => match self.channels.get_mut(&relid) {
                Some(c) => {
                    c.target.vp = target_vp;
                    STATUS_SUCCESS
                }
                None => STATUS_INVALID_PARAMETER,
            },
        };
        mrs.set(0, u64::from(status));
        Ok(MessageInfo::new(REPLY_OK, 1))
    }

    /// Drains every open channel and signals the guest where the rings say so.
    pub fn service_all(&mut self, kernel: &mut dyn Kernel) {
        let mut broken = Vec::new();
        for (relid, c) in self.channels.iter_mut() {
            match service(
                &mut self.vsp,
                0,
                &mut c.transport,
                &self.mem,
                &mut NoSubChannels,
                &mut self.scratch,
            ) {
                Ok(done) => {
                    if done.signal {
                        // A full SynIC queue only delays the guest; it polls on
                        // its next interrupt anyway.
                        let _ =
                            synic_pd::api::signal_event(kernel, self.synic, c.target, c.event_flag);
                    }
                }
                Err(_) => broken.push(*relid),
            }
        }
        // A ring that lied cannot be used again: stop serving it (the guest sees
        // no more completions, as with a device that failed). Closing it the way
        // CLOSE does also gives the signal connection back to hvcall-pd, so the
        // guest's doorbells for the dead channel stop waking us and the id can be
        // routed again when vmbus-server reopens the channel.
        for relid in broken {
            self.broken_rings += 1;
            self.close(kernel, relid);
        }
    }
}

impl Handler for StorvspPd<'_> {
    fn notified(
        &mut self,
        kernel: &mut dyn Kernel,
        channels: ChannelSet,
    ) -> Result<(), HandlerError> {
        for ch in channels.iter() {
            if ch != self.hvcall && ch != self.vmbus {
                return Err(HandlerError::UnexpectedNotification(ch));
            }
        }
        self.service_all(kernel);
        Ok(())
    }

    fn protected(
        &mut self,
        kernel: &mut dyn Kernel,
        ch: Channel,
        msg: MessageInfo,
        mrs: &mut MessageRegisters,
    ) -> Result<MessageInfo, HandlerError> {
        if ch != self.vmbus {
            return Err(HandlerError::UnexpectedCall(ch));
        }
        self.vsp_call(kernel, msg, mrs)
    }
}
