//! What the host is like before a deployment (read only: the dry run gathers the same facts),
//! and the pieces of host preparation that follow from them: the u7s-admin account with its
//! subordinate id ranges (`usermod --add-subuids/--add-subgids`, not upstream's temporary-user
//! trick), the leftovers of an earlier deployment (all of them, not only etcd/member), the
//! directories and files with their owners, the kernel settings.

use std::path::{Path, PathBuf};

use podsec_common::host::users::{self, Account};
use podsec_common::profile::OsRelease;

use super::network::{self, HostAddress};
use super::packages::{self, Installed};
use super::runtime::Runtime;

pub const ETCD_DIR: &str = "/var/lib/podsec/u7s/etcd";
pub const KUBERNETES_DIR: &str = "/etc/kubernetes";
pub const CNI_NET_DIR: &str = "/etc/cni/net.d";
pub const CONFIG_DIR: &str = "/etc/podsec/u7s";
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-podsec-u7s.conf";
/// Where podsec-k8s ships the modules of [`MODULES`] (rpm/tree), loaded at every boot by
/// systemd-modules-load (sysinit.target, before u7s.service), as upstream's
/// /lib/modules-load.d/u7s.conf was.
pub const MODULES_LOAD_PACKAGED: &str = "/usr/lib/modules-load.d/podsec-u7s.conf";
/// Written by host preparation when the packaged file is missing or lacks a module (a
/// `make install` elsewhere, an edited copy); it takes the packaged one's place.
pub const MODULES_LOAD_FILE: &str = "/etc/modules-load.d/podsec-u7s.conf";
/// Upstream's modules-load list, with vxlan (flannel's backend) added; loaded now and written
/// to [`MODULES_LOAD_FILE`] for the next boots (§10.2/21).
pub const MODULES: &[&str] = &[
    "fuse",
    "overlay",
    "tun",
    "bridge",
    "br_netfilter",
    "veth",
    "vxlan",
    "ip_tables",
    "ip6_tables",
    "iptable_nat",
    "ip6table_nat",
    "iptable_filter",
    "ip6table_filter",
    "nf_tables",
    "x_tables",
    "xt_MASQUERADE",
    "xt_addrtype",
    "xt_comment",
    "xt_conntrack",
    "xt_mark",
    "xt_multiport",
    "xt_nat",
    "xt_tcpudp",
];
/// The text of [`MODULES_LOAD_PACKAGED`] and [`MODULES_LOAD_FILE`]: one module a line.
pub fn modules_load_conf() -> String {
    let mut text = String::from(
        "# podsec-k8s: kernel modules of a rootless Kubernetes node, loaded at every boot\n",
    );
    for module in MODULES {
        text.push_str(module);
        text.push('\n');
    }
    text
}

/// Whether the modules-load.d file that systemd-modules-load reads (the one in /etc, else the
/// packaged one) lists every module of [`MODULES`].
pub fn modules_persisted(etc: Option<&str>, packaged: Option<&str>) -> bool {
    etc.or(packaged).is_some_and(|text| {
        let listed: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
            .collect();
        MODULES.iter().all(|m| listed.contains(m))
    })
}

/// Groups u7s-admin joins when they exist (added, never replacing its others).
pub const U7S_GROUPS: &[&str] = &["systemd-journal", "podman", "kube"];
pub const SUBID_COUNT: u64 = 65536;

/// The facts the plan is computed from.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub os: OsRelease,
    pub hosts_binds_registry_local: bool,
    pub machine: String,
    pub hostname: String,
    pub installed: Installed,
    pub addresses: Vec<HostAddress>,
    pub route_table: String,
    pub subuid: String,
    pub subgid: String,
    pub u7s_admin: Option<Account>,
    /// The groups u7s-admin is in now.
    pub u7s_admin_groups: Vec<String>,
    pub existing_groups: Vec<String>,
    pub u7s_group_exists: bool,
    pub leftovers: Vec<PathBuf>,
    pub runtime_running: bool,
    /// CNI configuration file names already in /etc/cni/net.d.
    pub cni_configs: Vec<String>,
    pub loaded_modules: Vec<String>,
    /// The modules are loaded again at boot (see [`modules_persisted`]).
    pub modules_persisted: bool,
    pub ip_forward: bool,
    /// Ports an administrator added to the existing node configuration (kept).
    pub extra_ports: Vec<crate::u7s::ports::PortSpec>,
}

impl HostFacts {
    /// Reads the host; changes nothing.
    pub fn gather(runtime: &dyn Runtime) -> HostFacts {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let hosts = read("/etc/hosts");
        let u7s_admin = users::find_user(super::runtime::U7S_ADMIN).ok().flatten();
        HostFacts {
            os: OsRelease::load(Path::new("/")),
            hosts_binds_registry_local: podsec_common::host::hosts::address_of(
                &hosts,
                podsec_common::trust_chain::LOCAL_REGISTRY,
            )
            .is_some(),
            machine: nix::sys::utsname::uname()
                .map(|u| u.machine().to_string_lossy().into_owned())
                .unwrap_or_default(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            installed: packages::detect_installed(),
            addresses: network::host_addresses().unwrap_or_default(),
            route_table: read("/proc/net/route"),
            subuid: read("/etc/subuid"),
            subgid: read("/etc/subgid"),
            existing_groups: U7S_GROUPS
                .iter()
                .filter(|g| users::group_gid(g).ok().flatten().is_some())
                .map(|g| g.to_string())
                .collect(),
            u7s_group_exists: users::group_gid(super::runtime::U7S_ADMIN)
                .ok()
                .flatten()
                .is_some(),
            u7s_admin_groups: u7s_admin
                .as_ref()
                .and_then(|a| users::groups_of(a).ok())
                .unwrap_or_default(),
            u7s_admin,
            leftovers: leftovers(Path::new("/"), &runtime.leftover_state()),
            runtime_running: runtime.is_running(),
            cni_configs: std::fs::read_dir(CNI_NET_DIR)
                .map(|rd| {
                    let mut names: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    names
                })
                .unwrap_or_default(),
            loaded_modules: MODULES
                .iter()
                .filter(|m| Path::new("/sys/module").join(m).exists())
                .map(|m| m.to_string())
                .collect(),
            modules_persisted: modules_persisted(
                std::fs::read_to_string(MODULES_LOAD_FILE).ok().as_deref(),
                std::fs::read_to_string(MODULES_LOAD_PACKAGED)
                    .ok()
                    .as_deref(),
            ),
            ip_forward: read("/proc/sys/net/ipv4/ip_forward").trim() == "1",
            extra_ports: crate::node_config::NodeConfig::load_default()
                .map(|c| c.extra_ports)
                .unwrap_or_default(),
        }
    }
}

/// What an earlier deployment leaves behind, below `root` (`/` on a node).
pub fn leftovers(root: &Path, runtime_state: &[PathBuf]) -> Vec<PathBuf> {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let mut found = Vec::new();
    let etcd = at(ETCD_DIR);
    if let Ok(entries) = std::fs::read_dir(&etcd) {
        found.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    let kube = at(KUBERNETES_DIR);
    for name in [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "bootstrap-kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        let path = kube.join(name);
        if path.symlink_metadata().is_ok() {
            found.push(path);
        }
    }
    if let Ok(entries) = std::fs::read_dir(kube.join("manifests")) {
        found.extend(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml")),
        );
    }
    if std::fs::read_dir(kube.join("pki")).is_ok_and(|mut rd| rd.next().is_some()) {
        found.push(kube.join("pki"));
    }
    for state in runtime_state {
        let path = root.join(state.strip_prefix("/").unwrap_or(state));
        if std::fs::read_dir(&path).is_ok_and(|mut rd| rd.next().is_some()) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// `(start, count)` ranges of `name` in an /etc/subuid-style text.
pub fn subid_ranges(text: &str, name: &str, uid: Option<u32>) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            let start = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            let mine = owner == name || uid.is_some_and(|u| owner == u.to_string());
            mine.then_some((start, count))
        })
        .collect()
}

/// A free range of `SUBID_COUNT` ids after every range in use (at least 100000, aligned).
pub fn free_subid_range(subuid: &str, subgid: &str) -> u64 {
    let mut end = 100_000u64;
    for text in [subuid, subgid] {
        for line in text.lines() {
            let mut fields = line.trim().split(':').skip(1);
            if let (Some(Ok(start)), Some(Ok(count))) = (
                fields.next().map(str::parse::<u64>),
                fields.next().map(str::parse::<u64>),
            ) {
                end = end.max(start.saturating_add(count));
            }
        }
    }
    end.div_ceil(SUBID_COUNT) * SUBID_COUNT
}

/// CNI configurations that sort before ours: CRI-O would use them instead of flannel's.
pub fn cni_configs_before_ours(existing: &[String], ours: &str) -> Vec<String> {
    existing
        .iter()
        .filter(|name| {
            let config =
                name.ends_with(".conf") || name.ends_with(".conflist") || name.ends_with(".json");
            config && name.as_str() < ours
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_modules_load_file_lists_every_module() {
        // rpm/tree is what podsec-k8s installs to /usr/lib/modules-load.d.
        let packaged = include_str!("../../../rpm/tree/usr/lib/modules-load.d/podsec-u7s.conf");
        assert_eq!(packaged, modules_load_conf());
        assert!(modules_persisted(None, Some(packaged)));
        // /etc's file of the same name replaces it (systemd-modules-load's rule).
        let without_vxlan = packaged.replace("vxlan\n", "");
        assert!(!modules_persisted(Some(&without_vxlan), Some(packaged)));
        assert!(modules_persisted(Some(packaged), None));
        assert!(!modules_persisted(None, None));
    }

    #[test]
    fn subid_ranges_are_found_and_a_free_one_chosen() {
        let subuid = "alice:100000:65536\nbob:165536:65536\n";
        let subgid = "alice:100000:65536\nsomeone:300000:1000\n";
        assert_eq!(subid_ranges(subuid, "bob", None), [(165536, 65536)]);
        assert!(subid_ranges(subuid, "u7s-admin", None).is_empty());
        assert_eq!(subid_ranges("999:1:2\n", "u7s-admin", Some(999)), [(1, 2)]);
        let start = free_subid_range(subuid, subgid);
        assert_eq!(start, 327680);
        assert_eq!(start % SUBID_COUNT, 0);
        assert!(start >= 301000);
        assert_eq!(free_subid_range("", ""), 131072);
    }

    #[test]
    fn every_kind_of_leftover_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let at = |p: &str| root.path().join(p.trim_start_matches('/'));
        assert!(leftovers(root.path(), &[]).is_empty());
        std::fs::create_dir_all(at("/var/lib/podsec/u7s/etcd/member")).unwrap();
        std::fs::create_dir_all(at("/etc/kubernetes/manifests")).unwrap();
        std::fs::create_dir_all(at("/etc/kubernetes/pki")).unwrap();
        std::fs::create_dir_all(at("/etc/kubernetes/audit")).unwrap();
        std::fs::write(at("/etc/kubernetes/kubelet.conf"), "x").unwrap();
        std::fs::write(at("/etc/kubernetes/manifests/etcd.yaml"), "x").unwrap();
        std::fs::write(at("/etc/kubernetes/manifests/README"), "x").unwrap();
        std::fs::write(at("/etc/kubernetes/pki/ca.crt"), "x").unwrap();
        std::fs::create_dir_all(at("/home/u/.local/share/usernetes/_var_lib_kubelet/pki")).unwrap();
        let found = leftovers(
            root.path(),
            &[PathBuf::from(
                "/home/u/.local/share/usernetes/_var_lib_kubelet",
            )],
        );
        let names: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(root.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "etc/kubernetes/kubelet.conf",
                "etc/kubernetes/manifests/etcd.yaml",
                "etc/kubernetes/pki",
                "home/u/.local/share/usernetes/_var_lib_kubelet",
                "var/lib/podsec/u7s/etcd/member",
            ]
        );
    }

    #[test]
    fn foreign_cni_configs_that_would_win() {
        let existing = [
            "00-other.conflist",
            "100-crio-bridge.conflist",
            "10-flannel.conflist",
            "87-podman.conflist",
        ]
        .map(String::from);
        assert_eq!(
            cni_configs_before_ours(&existing, "10-flannel.conflist"),
            ["00-other.conflist"]
        );
    }
}
