//! This host's own addresses (exact comparison, not upstream's `ip a | grep` substring match).

use std::net::IpAddr;

/// Whether `address` is assigned to one of this host's interfaces.
pub fn is_local_address(address: IpAddr) -> std::io::Result<bool> {
    let addresses = nix::ifaddrs::getifaddrs()?;
    Ok(addresses.filter_map(|a| a.address).any(|socket| {
        socket
            .as_sockaddr_in()
            .is_some_and(|v4| IpAddr::V4(v4.ip()) == address)
            || socket
                .as_sockaddr_in6()
                .is_some_and(|v6| IpAddr::V6(v6.ip()) == address)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local_and_documentation_address_is_not() {
        assert!(is_local_address("127.0.0.1".parse().unwrap()).unwrap());
        assert!(!is_local_address("198.51.100.77".parse().unwrap()).unwrap());
    }
}
