//! The u7s runtime: what runs as u7s-admin to host a rootless Kubernetes node, and the commands
//! installed in /usr/libexec/podsec/u7s/bin (root-owned links to the podsec-k8s binary).
//!
//! - [`paths`]: u7s-admin's directories; [`ports`]: the ports published per node role;
//! - [`rootlesskit`] (`u7s-rootlesskit`): the namespaces, parent and child halves;
//! - [`nsenter`] and [`nsenter_u7s`]: the ready handshake and entering the namespace;
//! - [`cgroups`]: the host's cgroup version and what it means for the node;
//! - [`crio`]: CRI-O's configuration; [`kubelet`] (`u7s-kubelet`): the kubelet launcher;
//! - [`units`]: the systemd units; [`runtime`]: start/stop/enter (systemd or direct) and
//!   [`start_stop`] (`u7s-start-stop`, u7s.service);
//! - [`rootlessctl`], [`systemctl`]: the wrappers admins and kubeadm call.

pub mod cgroups;
pub mod crio;
pub mod kubelet;
pub mod notify;
pub mod nsenter;
pub mod nsenter_u7s;
pub mod paths;
pub mod ports;
pub mod rootlessctl;
pub mod rootlesskit;
pub mod runtime;
pub mod start_stop;
pub mod systemctl;
pub mod units;
