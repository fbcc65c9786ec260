//! Connection caps: how many connections may be open at once, in all and from one address. A
//! connection takes a [`Slot`] when accepted and gives it back when its socket closes (the slot lives
//! in the socket's wrapper, so an upgraded WebSocket keeps it); one over a cap is closed at once.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The server holds its total cap of connections.
    Total,
    /// The client's address (or IPv6 /64) holds its cap.
    PerAddress,
}

#[derive(Debug)]
pub(crate) struct Caps {
    total: usize,
    per_address: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One open connection's place under the caps, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    caps: Arc<Caps>,
    address: IpAddr,
}

impl Caps {
    pub(crate) fn new(total: usize, per_address: usize) -> Arc<Caps> {
        Arc::new(Caps { total, per_address, open: Mutex::new(Open::default()) })
    }

    /// A slot for a connection from `ip`, unless a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let address = address_of(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.total {
            return Err(Refused::Total);
        }
        let from_address = open.by_address.entry(address).or_insert(0);
        if *from_address >= self.per_address {
            return Err(Refused::PerAddress);
        }
        *from_address += 1;
        open.total += 1;
        Ok(Slot { caps: self.clone(), address })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// What one client is, for the per-address cap: an IPv4 address (IPv4-mapped IPv6 included), or an
/// IPv6 /64, the block one subscriber gets.
pub(crate) fn address_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_all_and_slots_are_given_back() {
        let caps = Caps::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = caps.admit(a).unwrap();
        let _a2 = caps.admit(a).unwrap();
        assert_eq!(caps.admit(a).unwrap_err(), Refused::PerAddress);
        let _b1 = caps.admit(b).unwrap();
        assert_eq!(caps.admit(b).unwrap_err(), Refused::Total);
        drop(a1);
        assert_eq!(caps.open(), 2);
        let _b2 = caps.admit(b).unwrap();
        assert_eq!(caps.admit(b).unwrap_err(), Refused::Total);
    }

    #[test]
    fn an_ipv6_64_is_one_address_and_mapped_ipv4_is_ipv4() {
        let caps = Caps::new(10, 1);
        let _one = caps.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(caps.admit("2001:db8::ffff:1".parse().unwrap()).unwrap_err(), Refused::PerAddress);
        let _other = caps.admit("2001:db8:0:1::1".parse().unwrap()).unwrap();
        let _v4 = caps.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(caps.admit("::ffff:192.0.2.1".parse().unwrap()).unwrap_err(), Refused::PerAddress);
    }
}
