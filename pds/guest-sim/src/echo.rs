//! The guest's side of an open echo channel: two rings in guest memory named by one
//! GPADL, packets out with HvSignalEvent, echoes back on the event flag.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use synic_pd::Instance;
use vmbus_protocol::Relid;
use vmbus_ring::{
    GpadlRingMem, IncomingKind, IncomingRing, OutgoingKind, OutgoingPacket, OutgoingRing,
    ReadError, RingMem, WriteError,
};

use crate::config::{PAGE, PRIVATE_RING_PFN, RING_PAGES, SHARED_GPA, SHARED_RING_PFN};
use crate::vcpu::Vcpu;
use crate::{ensure, fail, Failure, Result};

type Ring = GpadlRingMem<'static, Vec<u64>>;

/// The pages of a ring GPADL: the guest-to-host ring, then the host-to-guest ring.
/// `generation` picks fresh pages for each channel the run opens.
pub fn ring_pfns(shared: bool, generation: u64) -> Vec<u64> {
    let base = if shared {
        SHARED_RING_PFN
    } else {
        PRIVATE_RING_PFN
    } + generation * 2 * RING_PAGES;
    (base..base + 2 * RING_PAGES).collect()
}

/// Packet `i`'s body: its number, then bytes that depend on both it and their
/// position, 1 to 3000 bytes long so the rings wrap at every alignment.
pub fn body(i: u64) -> Vec<u8> {
    let len = 1 + (i as usize * 977) % 3000;
    let mut b: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect();
    for (dst, src) in b.iter_mut().zip(i.to_le_bytes()) {
        *dst = src;
    }
    b
}

#[derive(Debug)]
pub struct EchoChannel {
    pub relid: Relid,
    pub connection_id: u32,
    /// The SynIC the channel interrupts arrive on.
    pub instance: Instance,
    tx: OutgoingRing<Ring>,
    rx: IncomingRing<Ring>,
}

/// What an exchange did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchanged {
    pub packets: u64,
    pub bytes: u64,
    /// HvSignalEvent calls the guest made.
    pub signals: u64,
    /// Channel interrupts it waited for.
    pub interrupts: u64,
}

/// Zeroes the ring pages and initializes both control pages (Linux's
/// `hv_ringbuffer_init`), before the GPADL is even created.
pub fn prepare_rings(vcpu: &Vcpu<'_>, pfns: &[u64]) -> Result<()> {
    for &pfn in pfns {
        let (region, offset) = vcpu.memory_at(pfn * PAGE, PAGE as usize)?;
        region
            .fill(offset, PAGE as usize, 0)
            .map_err(|e| Failure(format!("ring page {pfn:#x}: {e}")))?;
    }
    Ok(())
}

impl EchoChannel {
    /// The guest's ends of the rings on `pfns` (already prepared).
    pub fn attach(
        vcpu: &Vcpu<'_>,
        pfns: &[u64],
        relid: Relid,
        connection_id: u32,
        instance: Instance,
    ) -> Result<Self> {
        let shared = pfns.first().is_some_and(|&p| p * PAGE >= SHARED_GPA);
        let (region, base) = if shared {
            (vcpu.shared, SHARED_GPA / PAGE)
        } else {
            (vcpu.ram, 0)
        };
        let rel: Vec<u64> = pfns
            .iter()
            .map(|&p| p.checked_sub(base))
            .collect::<Option<_>>()
            .ok_or_else(|| Failure("ring pages straddle private and shared memory".into()))?;
        let split = RING_PAGES as usize;
        let mem = |pages: &[u64]| {
            GpadlRingMem::new(region, pages.to_vec())
                .map_err(|e| Failure(format!("ring memory: {e}")))
        };
        let (tx_mem, rx_mem) = (mem(&rel[..split])?, mem(&rel[split..])?);
        tx_mem.control().initialize();
        rx_mem.control().initialize();
        Ok(Self {
            relid,
            connection_id,
            instance,
            tx: OutgoingRing::new(tx_mem).map_err(|e| Failure(format!("tx ring: {e}")))?,
            rx: IncomingRing::new(rx_mem).map_err(|e| Failure(format!("rx ring: {e}")))?,
        })
    }

    fn signal(&self, vcpu: &mut Vcpu<'_>, stats: &mut Exchanged) -> Result<()> {
        let status = vcpu.signal(self.connection_id, 0)?;
        ensure!(
            status.is_success(),
            "HvSignalEvent on connection {:#x}: {status:?}",
            self.connection_id
        );
        stats.signals += 1;
        Ok(())
    }

    /// Sends packets `first..first + count` and checks each comes back whole, with
    /// its transaction id, in order. Writes as many as fit, reads what came back,
    /// and sleeps only on the channel's interrupt.
    pub fn exchange(&mut self, vcpu: &mut Vcpu<'_>, first: u64, count: u64) -> Result<Exchanged> {
        let mut stats = Exchanged::default();
        let (mut sent, mut received) = (first, first);
        let end = first + count;
        while received < end {
            while sent < end {
                let packet = OutgoingPacket {
                    transaction_id: sent,
                    completion_requested: false,
                    kind: OutgoingKind::InBand,
                };
                match self.tx.write_packet(&packet, &[&body(sent)]) {
                    Ok(()) => sent += 1,
                    Err(WriteError::Full { .. }) => break,
                    Err(e) => return fail(format!("writing packet {sent}: {e}")),
                }
            }
            if self
                .tx
                .commit()
                .map_err(|e| Failure(format!("tx ring: {e}")))?
            {
                self.signal(vcpu, &mut stats)?;
            }
            loop {
                loop {
                    let p = match self.rx.read() {
                        Ok(p) => p,
                        Err(ReadError::Empty) => break,
                        Err(e) => return fail(format!("echo ring from the VSP: {e}")),
                    };
                    ensure!(
                        p.kind == IncomingKind::InBand,
                        "echo {received} is a {:?} packet",
                        p.kind
                    );
                    ensure!(
                        p.transaction_id == received,
                        "expected echo {received}, got transaction id {}",
                        p.transaction_id
                    );
                    let want = body(received);
                    let mut got = vec![0u8; p.payload.len()];
                    self.rx
                        .copy_from(&p.payload, 0, &mut got)
                        .map_err(|e| Failure(format!("echo ring: {e}")))?;
                    ensure!(
                        got.len() == want.len().next_multiple_of(8)
                            && got[..want.len()] == want[..]
                            && got[want.len()..].iter().all(|&b| b == 0),
                        "echo {received} differs: sent {} bytes, got {} back",
                        want.len(),
                        got.len()
                    );
                    stats.bytes += want.len() as u64;
                    received += 1;
                }
                // The VSP may wait for room in this ring: it asked if so.
                if self
                    .rx
                    .commit()
                    .map_err(|e| Failure(format!("rx ring: {e}")))?
                {
                    self.signal(vcpu, &mut stats)?;
                }
                if self
                    .rx
                    .is_empty()
                    .map_err(|e| Failure(format!("rx ring: {e}")))?
                {
                    break;
                }
            }
            if received < end && (sent == end || self.tx_full()?) {
                vcpu.wait_event(
                    self.instance,
                    self.relid.0,
                    &format!("echo {received} on relid {}", self.relid.0),
                )?;
                stats.interrupts += 1;
            }
        }
        stats.packets = count;
        Ok(stats)
    }

    /// Whether the next packet cannot be written now.
    fn tx_full(&mut self) -> Result<bool> {
        let free = self
            .tx
            .free_bytes()
            .map_err(|e| Failure(format!("tx ring: {e}")))?;
        Ok(free < 3000 + 64)
    }

    /// Makes the guest-to-host ring lie: a write index far past its data area.
    pub fn corrupt(&self) {
        self.tx
            .mem()
            .control()
            .write_index()
            .store(0x7fff_fff8, Ordering::SeqCst);
    }
}
