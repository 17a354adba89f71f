//! IPv4 networks: the pod and service CIDRs, the host's own networks they must not overlap (both
//! are checked, upstream checked only the service CIDR), and the address to advertise when none
//! is given (the one on the interface of the default route; none is an error, not an empty value).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, podsec_common::i18n::Localize)]
pub enum NetworkError {
    #[error("invalid IPv4 network '{0}': expected ADDRESS/PREFIX, e.g. 10.244.0.0/16")]
    Syntax(String),
    #[error("network {given} has host bits set: did you mean {network}?")]
    HostBits { given: String, network: Ipv4Net },
    #[error("network {0} is too small for a cluster network (prefix longer than /28)")]
    TooSmall(String),
    #[error(
        "{what} {network} overlaps the network {host_network} of interface {interface} on this host"
    )]
    HostOverlap {
        what: &'static str,
        network: Ipv4Net,
        host_network: Ipv4Net,
        interface: String,
    },
    #[error("pod network {pod} and service network {service} overlap")]
    PodServiceOverlap { pod: Ipv4Net, service: Ipv4Net },
    #[error(
        "cannot determine the address to advertise: no IPv4 default route with an address on its interface; give --apiserver-advertise-address"
    )]
    NoDefaultRoute,
    #[error("cannot list the host's network interfaces: {0}")]
    Interfaces(String),
}

/// An IPv4 network with its prefix length; the address is the network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    /// The network `address` belongs to at `prefix`.
    pub fn containing(address: Ipv4Addr, prefix: u8) -> Ipv4Net {
        Ipv4Net {
            address: Ipv4Addr::from(u32::from(address) & Self::mask(prefix)),
            prefix,
        }
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & Self::mask(self.prefix) == u32::from(self.address)
    }

    /// Two networks overlap when the shorter prefix contains the other's address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let prefix = self.prefix.min(other.prefix);
        Ipv4Net::containing(self.address, prefix) == Ipv4Net::containing(other.address, prefix)
    }

    /// The `n`-th address of the network (`10.96.0.0/12` → n=1: `10.96.0.1`).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address).wrapping_add(n))
    }

    /// A cluster network: canonical (no host bits) and big enough to hand out.
    pub fn parse_cluster(text: &str) -> Result<Ipv4Net, NetworkError> {
        let (address, prefix) = parse_parts(text)?;
        let network = Ipv4Net::containing(address, prefix);
        if network.address != address {
            return Err(NetworkError::HostBits {
                given: text.to_string(),
                network,
            });
        }
        if prefix > 28 {
            return Err(NetworkError::TooSmall(text.to_string()));
        }
        Ok(network)
    }
}

fn parse_parts(text: &str) -> Result<(Ipv4Addr, u8), NetworkError> {
    let syntax = || NetworkError::Syntax(text.to_string());
    let (address, prefix) = text.split_once('/').ok_or_else(syntax)?;
    let address = Ipv4Addr::from_str(address).map_err(|_| syntax())?;
    if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
    if prefix > 32 {
        return Err(syntax());
    }
    Ok((address, prefix))
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// One IPv4 address of a host interface with its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    pub interface: String,
    pub address: Ipv4Addr,
    pub network: Ipv4Net,
}

/// The IPv4 addresses of this host's interfaces (loopback included: 127.0.0.0/8 is a host network
/// a cluster network must not cover either).
pub fn host_addresses() -> Result<Vec<HostAddress>, NetworkError> {
    let addresses =
        nix::ifaddrs::getifaddrs().map_err(|e| NetworkError::Interfaces(e.to_string()))?;
    let mut found = Vec::new();
    for entry in addresses {
        let (Some(address), Some(netmask)) = (entry.address, entry.netmask) else {
            continue;
        };
        let (Some(address), Some(netmask)) = (address.as_sockaddr_in(), netmask.as_sockaddr_in())
        else {
            continue;
        };
        let prefix = u32::from(netmask.ip()).leading_ones() as u8;
        found.push(HostAddress {
            interface: entry.interface_name.clone(),
            address: address.ip(),
            network: Ipv4Net::containing(address.ip(), prefix),
        });
    }
    Ok(found)
}

/// Refuses pod or service networks that overlap each other or any host network.
pub fn check_cluster_networks(
    pod: Ipv4Net,
    service: Ipv4Net,
    host: &[HostAddress],
) -> Result<(), NetworkError> {
    if pod.overlaps(&service) {
        return Err(NetworkError::PodServiceOverlap { pod, service });
    }
    for (what, network) in [("pod network", pod), ("service network", service)] {
        if let Some(h) = host.iter().find(|h| h.network.overlaps(&network)) {
            return Err(NetworkError::HostOverlap {
                what,
                network,
                host_network: h.network,
                interface: h.interface.clone(),
            });
        }
    }
    Ok(())
}

/// The IPv4 default route's interface and gateway from `/proc/net/route` text.
pub fn default_route(route_table: &str) -> Option<(String, Ipv4Addr)> {
    route_table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (interface, destination, gateway, mask) = (
            fields.first()?,
            fields.get(1)?,
            fields.get(2)?,
            fields.get(7)?,
        );
        if *destination != "00000000" || *mask != "00000000" {
            return None;
        }
        // The kernel prints the address in host (little-endian) byte order.
        let gateway = u32::from_str_radix(gateway, 16).ok()?;
        Some((interface.to_string(), Ipv4Addr::from(gateway.swap_bytes())))
    })
}

/// The address to advertise: the host address on the default route's interface whose network
/// contains the gateway (or the interface's first address for a point-to-point default route).
pub fn advertise_address(
    route_table: &str,
    host: &[HostAddress],
) -> Result<HostAddress, NetworkError> {
    let (interface, gateway) = default_route(route_table).ok_or(NetworkError::NoDefaultRoute)?;
    let on_interface: Vec<&HostAddress> =
        host.iter().filter(|h| h.interface == interface).collect();
    on_interface
        .iter()
        .find(|h| h.network.contains(gateway))
        .or_else(|| on_interface.first())
        .map(|h| (*h).clone())
        .ok_or(NetworkError::NoDefaultRoute)
}

/// `advertise_address` for this host.
pub fn detect_advertise_address() -> Result<HostAddress, NetworkError> {
    let table = std::fs::read_to_string(Path::new("/proc/net/route")).unwrap_or_default();
    advertise_address(&table, &host_addresses()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        Ipv4Net::parse_cluster(s).unwrap()
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(net("10.96.0.0/12").to_string(), "10.96.0.0/12");
        assert_eq!(net("10.96.0.0/12").nth(1), Ipv4Addr::new(10, 96, 0, 1));
        assert!(matches!(
            Ipv4Net::parse_cluster("10.244.1.0/16"),
            Err(NetworkError::HostBits { .. })
        ));
        assert!(matches!(
            Ipv4Net::parse_cluster("10.0.0.0/30"),
            Err(NetworkError::TooSmall(_))
        ));
        for bad in [
            "10.0.0.0",
            "10.0.0/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "x/8",
            "10.0.0.0/+8",
            "fd00::/8",
        ] {
            assert!(
                matches!(Ipv4Net::parse_cluster(bad), Err(NetworkError::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn overlaps_at_the_shorter_prefix() {
        assert!(net("10.96.0.0/12").overlaps(&net("10.100.0.0/16")));
        assert!(net("10.100.0.0/16").overlaps(&net("10.96.0.0/12")));
        assert!(!net("10.96.0.0/12").overlaps(&net("10.244.0.0/16")));
    }

    fn host(interface: &str, address: &str, prefix: u8) -> HostAddress {
        let address: Ipv4Addr = address.parse().unwrap();
        HostAddress {
            interface: interface.into(),
            address,
            network: Ipv4Net::containing(address, prefix),
        }
    }

    #[test]
    fn both_cluster_networks_are_checked_against_the_host() {
        let hosts = [host("lo", "127.0.0.1", 8), host("eth0", "10.244.7.5", 24)];
        // The pod network is checked too (upstream checked only the service network, §10.2/16).
        let err =
            check_cluster_networks(net("10.244.0.0/16"), net("10.96.0.0/12"), &hosts).unwrap_err();
        assert!(
            err.to_string().contains(
                "pod network 10.244.0.0/16 overlaps the network 10.244.7.0/24 of interface eth0"
            ),
            "{err}"
        );
        let err =
            check_cluster_networks(net("10.200.0.0/16"), net("10.244.0.0/20"), &hosts).unwrap_err();
        assert!(err.to_string().starts_with("service network"), "{err}");
        assert!(matches!(
            check_cluster_networks(net("10.96.0.0/16"), net("10.96.0.0/12"), &hosts),
            Err(NetworkError::PodServiceOverlap { .. })
        ));
        check_cluster_networks(net("10.200.0.0/16"), net("10.96.0.0/12"), &hosts).unwrap();
    }

    const ROUTES: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";

    #[test]
    fn advertise_address_is_on_the_default_route() {
        assert_eq!(
            default_route(ROUTES),
            Some(("eth0".to_string(), Ipv4Addr::new(10, 0, 0, 1)))
        );
        let hosts = [
            host("lo", "127.0.0.1", 8),
            host("eth1", "192.168.0.9", 24),
            host("eth0", "172.16.0.3", 16),
            host("eth0", "10.0.0.7", 24),
        ];
        assert_eq!(
            advertise_address(ROUTES, &hosts).unwrap().address,
            Ipv4Addr::new(10, 0, 0, 7)
        );
        // No default route: an error, never an empty address (§10.2 defect 17).
        assert_eq!(
            advertise_address(
                &ROUTES.lines().take(2).collect::<Vec<_>>().join("\n"),
                &hosts
            ),
            Err(NetworkError::NoDefaultRoute)
        );
    }
}
