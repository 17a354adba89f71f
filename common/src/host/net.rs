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

/// A process listening on a TCP port of this host (its network namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub pid: i32,
    /// `/proc/<pid>/comm`: the program's name as the kernel knows it.
    pub program: String,
    /// The systemd unit whose cgroup holds it (`httpd2.service`), when there is one.
    pub unit: Option<String>,
}

/// The inodes of the listening TCP sockets on `port` in a `/proc/net/tcp{,6}` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            // State 0A is TCP_LISTEN.
            (u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == "0A")
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// The systemd unit of a process from its `/proc/<pid>/cgroup` text (the v2 line, else the
/// `name=systemd` hierarchy of v1).
fn unit_of_cgroup(text: &str) -> Option<String> {
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .filter(|p| *p != "/")
        .or_else(|| {
            text.lines()
                .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
        })?;
    path.split('/')
        .rev()
        .find(|c| c.ends_with(".service"))
        .map(str::to_string)
}

/// Who listens on TCP `port` (IPv4 or IPv6): read from /proc, changes nothing. Processes whose
/// descriptors cannot be read are left out.
pub fn listeners(port: u16) -> Vec<Listener> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| wanted.iter().any(|w| target.as_os_str() == w.as_str()))
        });
        if holds {
            let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
            found.push(Listener {
                pid,
                program: read("comm").unwrap_or_default().trim().to_string(),
                unit: read("cgroup").as_deref().and_then(unit_of_cgroup),
            });
        }
    }
    found.sort_by_key(|l| l.pid);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local_and_documentation_address_is_not() {
        assert!(is_local_address("127.0.0.1".parse().unwrap()).unwrap());
        assert!(!is_local_address("198.51.100.77".parse().unwrap()).unwrap());
    }

    #[test]
    fn listening_sockets_and_units_are_read_from_proc_tables() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0
   1: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 5678 1 0
   2: 0100007F:0050 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 9999 1 0
";
        assert_eq!(listening_inodes(table, 80), [1234]);
        assert_eq!(listening_inodes(table, 5000), [5678]);
        assert!(listening_inodes(table, 81).is_empty());
        assert_eq!(
            unit_of_cgroup("0::/system.slice/httpd2.service\n").as_deref(),
            Some("httpd2.service")
        );
        assert_eq!(
            unit_of_cgroup("12:cpu:/x\n1:name=systemd:/system.slice/nginx.service\n0::/\n")
                .as_deref(),
            Some("nginx.service")
        );
        assert_eq!(unit_of_cgroup("0::/user.slice/session-1.scope\n"), None);
    }

    #[test]
    fn a_listener_of_this_process_is_found() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let found = listeners(port);
        assert!(
            found.iter().any(|l| l.pid == std::process::id() as i32),
            "{found:?}"
        );
    }
}
