//! Which cgroup hierarchy the host runs, and what that means for a rootless node.
//!
//! - **v2** (ALT's default with systemd): u7s-admin's user manager delegates its subtree
//!   (`user@.service.d/delegate.conf`), RootlessKit evacuates its own processes into a leaf,
//!   and the kubelet builds its per-QoS cgroups below the namespace's root; pod limits apply.
//! - **v1** (and hybrid: v1 controllers with a cgroup2 `unified` mount beside them): nothing is
//!   delegated to an unprivileged user, so the kubelet cannot create cgroups. It runs without
//!   per-QoS cgroups, and CRI-O keeps each pod's infra container (the pod has no cgroup of its
//!   own to hold it otherwise); pods run without cgroup limits.

/// The host's cgroup version, from the file system mounted on /sys/fs/cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    pub fn detect() -> CgroupVersion {
        let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
        if unified {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }

    /// The kubelet's `cgroupsPerQOS`: only where a subtree is delegated.
    pub fn per_qos_cgroups(self) -> bool {
        self == CgroupVersion::V2
    }

    /// CRI-O's `drop_infra_ctr`: on v1 the infra container is what holds the pod together.
    pub fn drop_infra_container(self) -> bool {
        self == CgroupVersion::V2
    }
}
