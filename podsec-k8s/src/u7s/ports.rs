//! The ports published from the u7s namespace to the host through rootlesskit's builtin port
//! driver, per node role (spec 4.3), with the API server's configured bind port instead of
//! upstream's fixed 6443.

use std::fmt;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::node_config::{CniPlugin, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// `parentIP:parentPort:childPort/proto`, rootlesskit's `--publish` / `add-ports` syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    pub parent_ip: Ipv4Addr,
    pub parent_port: u16,
    pub child_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, thiserror::Error, podsec_common::i18n::Localize, PartialEq, Eq)]
#[error(
    "invalid port '{0}': expected [hostIP:]hostPort:namespacePort/tcp|udp, e.g. 0.0.0.0:31000:31000/tcp"
)]
pub struct PortError(pub String);

impl PortSpec {
    pub fn new(port: u16, protocol: Protocol) -> PortSpec {
        PortSpec {
            parent_ip: Ipv4Addr::UNSPECIFIED,
            parent_port: port,
            child_port: port,
            protocol,
        }
    }

    /// Both claim the same host socket (the same port and protocol on overlapping addresses).
    pub fn same_parent(&self, other: &PortSpec) -> bool {
        self.parent_port == other.parent_port
            && self.protocol == other.protocol
            && (self.parent_ip == other.parent_ip
                || self.parent_ip.is_unspecified()
                || other.parent_ip.is_unspecified())
    }
}

impl FromStr for PortSpec {
    type Err = PortError;
    fn from_str(text: &str) -> Result<PortSpec, PortError> {
        let bad = || PortError(text.to_string());
        let (ports, protocol) = text.rsplit_once('/').ok_or_else(bad)?;
        let protocol = match protocol {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return Err(bad()),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (parent_ip, parent_port, child_port) = match parts[..] {
            [parent, child] => (Ipv4Addr::UNSPECIFIED, parent, child),
            [ip, parent, child] => (ip.parse().map_err(|_| bad())?, parent, child),
            _ => return Err(bad()),
        };
        let port = |p: &str| {
            let digits = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
            match p.parse::<u16>() {
                Ok(n) if digits && n > 0 => Ok(n),
                _ => Err(bad()),
            }
        };
        Ok(PortSpec {
            parent_ip,
            parent_port: port(parent_port)?,
            child_port: port(child_port)?,
            protocol,
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}/{}",
            self.parent_ip, self.parent_port, self.child_port, self.protocol
        )
    }
}

/// The ports a node of `role` publishes. Control plane: etcd client and peer (2379, 2380; other
/// control-plane nodes join through them), the API server's `bind_port`, the kubelet (10250),
/// kube-proxy's health check (10256). Every node: flannel's VXLAN (8472/udp) and DNS (host
/// 6053/udp to 53 inside). Calico adds Typha (5473), VXLAN (4789/udp) and WireGuard
/// (51820/udp). Upstream's kubelet read-only port 10255 is not published: kubeadm disables it.
pub fn role_ports(role: Role, cni: CniPlugin, bind_port: u16) -> Vec<PortSpec> {
    let mut tcp: Vec<u16> = Vec::new();
    if role.is_control_plane() {
        tcp.extend([2379, 2380, bind_port]);
    }
    tcp.extend([10250, 10256]);
    let mut ports: Vec<PortSpec> = tcp
        .into_iter()
        .map(|p| PortSpec::new(p, Protocol::Tcp))
        .collect();
    ports.push(PortSpec::new(8472, Protocol::Udp));
    ports.push(PortSpec {
        parent_ip: Ipv4Addr::UNSPECIFIED,
        parent_port: 6053,
        child_port: 53,
        protocol: Protocol::Udp,
    });
    if cni == CniPlugin::Calico {
        ports.push(PortSpec::new(5473, Protocol::Tcp));
        ports.push(PortSpec::new(4789, Protocol::Udp));
        ports.push(PortSpec::new(51820, Protocol::Udp));
    }
    ports
}

/// The first port that claims a host socket another one already claims.
pub fn first_duplicate(ports: &[PortSpec]) -> Option<&PortSpec> {
    ports
        .iter()
        .enumerate()
        .find(|(i, port)| ports[..*i].iter().any(|earlier| earlier.same_parent(port)))
        .map(|(_, port)| port)
}

/// The ports RootlessKit's API (`GET /v1/ports` on the state directory's api.sock) reports as
/// published.
pub fn published(api_socket: &Path) -> std::io::Result<Vec<PortSpec>> {
    let mut stream = UnixStream::connect(api_socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    // HTTP/1.0: the answer comes with Content-Length, never chunked.
    stream.write_all(b"GET /v1/ports HTTP/1.0\r\nHost: rootlesskit\r\n\r\n")?;
    let mut response = Vec::new();
    stream.take(1 << 20).read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("RootlessKit API: no HTTP response"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "RootlessKit API: {}",
            head.lines().next().unwrap_or_default()
        )));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        proto: String,
        #[serde(rename = "parentIP", default)]
        parent_ip: String,
        parent_port: u16,
        child_port: u16,
    }
    #[derive(serde::Deserialize)]
    struct Status {
        spec: Spec,
    }
    let statuses: Vec<Status> = serde_json::from_str(body)
        .map_err(|e| std::io::Error::other(format!("RootlessKit API: {e}")))?;
    Ok(statuses
        .into_iter()
        .filter_map(|s| {
            let protocol = match s.spec.proto.as_str() {
                "tcp" | "tcp4" => Protocol::Tcp,
                "udp" | "udp4" => Protocol::Udp,
                _ => return None,
            };
            Some(PortSpec {
                parent_ip: s.spec.parent_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
                parent_port: s.spec.parent_port,
                child_port: s.spec.child_port,
                protocol,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_syntax_round_trips_and_rejects_junk() {
        let spec: PortSpec = "0.0.0.0:31000:31000/tcp".parse().unwrap();
        assert_eq!(spec, PortSpec::new(31000, Protocol::Tcp));
        assert_eq!(spec.to_string(), "0.0.0.0:31000:31000/tcp");
        assert_eq!(
            "6053:53/udp".parse::<PortSpec>().unwrap().to_string(),
            "0.0.0.0:6053:53/udp"
        );
        for bad in [
            "31000/tcp",
            "0.0.0.0:31000:31000",
            "a:1:1/tcp",
            "1:0/tcp",
            "1:+2/tcp",
            "1:2/sctp",
            "1:2:3:4/tcp",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_api_port_is_the_configured_bind_port() {
        let ports = role_ports(Role::InitMaster, CniPlugin::Flannel, 16443);
        let tcp: Vec<u16> = ports
            .iter()
            .filter(|p| p.protocol == Protocol::Tcp)
            .map(|p| p.parent_port)
            .collect();
        assert_eq!(tcp, [2379, 2380, 16443, 10250, 10256]);
        assert!(!ports.iter().any(|p| p.parent_port == 6443));
        let worker = role_ports(Role::Worker, CniPlugin::Calico, 6443);
        assert!(
            !worker
                .iter()
                .any(|p| [2379, 2380, 6443].contains(&p.parent_port))
        );
        assert!(worker.contains(&PortSpec::new(5473, Protocol::Tcp)));
        assert!(
            first_duplicate(&role_ports(Role::ControlPlane, CniPlugin::Flannel, 10256)).is_some()
        );
    }
}
