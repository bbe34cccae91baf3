//! The virtio-net driver PD's end of netvsp's frame queues: frames netvsp sends
//! go to the device's transmit queue, frames the device receives go to netvsp.
//! Neither side is made to wait by the other: a frame moves only when its
//! destination has room (the queue asks to be woken otherwise, the device's
//! transmit completion interrupts), so nothing is taken that cannot be placed.

use virtio_net::{Bus, Dma, Driver, Error, MAX_FRAME};

use super::Backend;

/// Frames moved and dropped since the PD started.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Pumped {
    pub to_wire: u64,
    pub from_wire: u64,
    /// Frames from netvsp the wire cannot carry (runts, or longer than a buffer).
    pub refused: u64,
}

/// Moves frames both ways until neither can move. Ok(true) when netvsp asked
/// to be notified; an error is the device breaking its rings.
pub fn pump<B: Bus, D: Dma>(
    nic: &mut Driver<B, D>,
    peer: &mut dyn Backend,
    counts: &mut Pumped,
) -> Result<bool, Error> {
    let mut buf = [0u8; MAX_FRAME];
    loop {
        let mut moved = false;
        if nic.can_transmit()? {
            if let Some(n) = peer.receive(&mut buf) {
                moved = true;
                match nic.transmit(&buf[..n]) {
                    Ok(_) => counts.to_wire += 1,
                    Err(Error::OutOfRange) => counts.refused += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        if peer.has_room(1) {
            if let Some(n) = nic.receive(&mut buf)? {
                moved = true;
                // has_room said yes: the queue takes it.
                if peer.transmit(&buf[..n]) {
                    counts.from_wire += 1;
                }
            }
        }
        if !moved {
            return Ok(peer.take_wakeup());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::queue::QueueBackend;
    use alloc::vec;
    use virtio_net::model::{Lie, Model};
    use virtio_net::DMA_LEN;

    #[test]
    fn frames_cross_between_netvsp_and_the_device_as_room_allows() {
        const SLOTS: u32 = 4;
        let size = QueueBackend::region_size(SLOTS).unwrap();
        let (a, b) = (
            ipc::testing::leaked_region(size),
            ipc::testing::leaked_region(size),
        );
        let mut netvsp = QueueBackend::new(a, b, SLOTS).unwrap();
        let mut ours = QueueBackend::new(b, a, SLOTS).unwrap();
        let (bus, dma) = Model::device(DMA_LEN, Lie::None);
        let mut nic = Driver::init(bus.clone(), dma).unwrap();
        let mut counts = Pumped::default();
        let mut buf = vec![0u8; MAX_FRAME];

        // netvsp's frames reach the wire; a runt from the guest is refused, not fatal.
        assert!(netvsp.transmit(&[1; 60]));
        assert!(netvsp.transmit(&[2; 10]));
        assert!(netvsp.transmit(&[3; 1514]));
        pump(&mut nic, &mut ours, &mut counts).unwrap();
        let sent = bus.0.borrow().sent.clone();
        assert_eq!(sent, vec![vec![1; 60], vec![3; 1514]]);
        assert_eq!((counts.to_wire, counts.refused), (2, 1));

        // More frames than netvsp's queue holds: the rest wait in the device
        // until netvsp takes some, and then follow in order.
        assert_eq!(netvsp.receive(&mut buf), None, "netvsp asks to be woken");
        for k in 0..6u8 {
            bus.0.borrow_mut().deliver(&[k; 64]);
        }
        assert!(
            pump(&mut nic, &mut ours, &mut counts).unwrap(),
            "wake netvsp"
        );
        assert_eq!(counts.from_wire, u64::from(SLOTS));
        for k in 0..6u8 {
            if k == 4 {
                pump(&mut nic, &mut ours, &mut counts).unwrap();
            }
            assert_eq!(netvsp.receive(&mut buf), Some(64), "frame {k}");
            assert_eq!(&buf[..64], &[k; 64]);
        }
        assert_eq!(counts.from_wire, 6);
    }

    #[test]
    fn a_device_that_breaks_its_rings_stops_the_pump() {
        let mut peer = crate::backend::Loopback::new(8);
        let (bus, dma) = Model::device(DMA_LEN, Lie::UsedId(u32::MAX));
        let mut nic = Driver::init(bus.clone(), dma).unwrap();
        bus.0.borrow_mut().deliver(&[7; 60]);
        let mut counts = Pumped::default();
        assert_eq!(
            pump(&mut nic, &mut peer, &mut counts),
            Err(Error::UsedId(u32::MAX))
        );
    }
}
