//! IPv4 networks of node.toml (Service, pod and slirp4netns networks) and of this host.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// rootlesskit's default slirp4netns network; outside the default Service and pod CIDRs.
pub const DEFAULT_SLIRP_CIDR: Ipv4Cidr = Ipv4Cidr {
    address: Ipv4Addr::new(10, 0, 2, 0),
    prefix: 24,
};

/// An IPv4 network `a.b.c.d/len` with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix: u8,
}

#[derive(Debug, Clone, thiserror::Error, podsec_common::i18n::Localize, PartialEq, Eq)]
pub enum CidrError {
    #[error("invalid network '{0}': expected an IPv4 network a.b.c.d/len")]
    Syntax(String),
    #[error("invalid network '{text}': host bits are set (the network is {network})")]
    HostBits { text: String, network: String },
}

impl Ipv4Cidr {
    /// The network, or `None` when `address` has host bits set or `prefix` > 32.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Option<Ipv4Cidr> {
        let cidr = Ipv4Cidr { address, prefix };
        (prefix <= 32 && cidr.network_bits() == u32::from(address)).then_some(cidr)
    }

    /// The network containing `address` at `prefix` (host bits cleared).
    pub fn containing(address: Ipv4Addr, prefix: u8) -> Ipv4Cidr {
        let prefix = prefix.min(32);
        let cidr = Ipv4Cidr { address, prefix };
        Ipv4Cidr {
            address: Ipv4Addr::from(cidr.network_bits()),
            prefix,
        }
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn network_bits(&self) -> u32 {
        u32::from(self.address) & self.mask()
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == self.network_bits()
    }

    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.address) || other.contains(self.address)
    }

    /// The `n`-th address of the network (`.1` is `host(1)`), if it fits.
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let size = if self.prefix == 0 {
            u64::from(u32::MAX) + 1
        } else {
            1u64 << (32 - u32::from(self.prefix))
        };
        (u64::from(n) < size).then(|| Ipv4Addr::from(self.network_bits() + n))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Ipv4Cidr, CidrError> {
        let syntax = || CidrError::Syntax(text.to_string());
        let (address, prefix) = text.split_once('/').ok_or_else(syntax)?;
        let address: Ipv4Addr = address.parse().map_err(|_| syntax())?;
        let prefix_ok =
            !prefix.is_empty() && prefix.len() <= 2 && prefix.bytes().all(|b| b.is_ascii_digit());
        let prefix: u8 = if prefix_ok {
            prefix.parse().map_err(|_| syntax())?
        } else {
            return Err(syntax());
        };
        if prefix > 32 {
            return Err(syntax());
        }
        Ipv4Cidr::new(address, prefix).ok_or_else(|| CidrError::HostBits {
            text: text.to_string(),
            network: Ipv4Cidr::containing(address, prefix).to_string(),
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// The IPv4 networks of this host's interfaces, loopback excluded.
pub fn host_networks() -> std::io::Result<Vec<(String, Ipv4Cidr)>> {
    let mut networks = Vec::new();
    for interface in nix::ifaddrs::getifaddrs()? {
        let (Some(address), Some(mask)) = (interface.address, interface.netmask) else {
            continue;
        };
        let (Some(address), Some(mask)) = (address.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        if address.ip().is_loopback() {
            continue;
        }
        let prefix = u32::from(mask.ip()).count_ones() as u8;
        networks.push((
            interface.interface_name,
            Ipv4Cidr::containing(address.ip(), prefix),
        ));
    }
    Ok(networks)
}
