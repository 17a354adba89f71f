//! Several real rootless nodes on one machine (issue 16): each node a sandbox of its own (own
//! mount, pid and network namespaces, overlays, address), joined by a veth pair in the test's
//! namespaces only. The first node is the control plane and the registry and signature server
//! (registry.local, sigstore.local at REGISTRY_IP, one of its addresses); a worker is a client
//! of that trust chain and reaches registry.local and the API server through the link.

use anyhow::Result;

use crate::node::{NODE_IP, NodeHost, REGISTRY_IP, RealNode, Trust};
use crate::sandbox::{Options, Sandbox};

/// The worker's address on the link (the first node has NODE_IP there).
pub const WORKER_IP: &str = "192.0.2.11";
pub const WORKER_NAME: &str = "node2";

pub struct Cluster {
    pub first: RealNode,
    pub worker: RealNode,
}

impl Cluster {
    /// Both hosts up to (not including) `kubeadm init` and `kubeadm join`.
    pub fn prepare() -> Result<Cluster> {
        let first = Sandbox::start(&Options {
            name: Some("node1".into()),
            addresses: vec![format!("{REGISTRY_IP}/32")],
        })?;
        let worker = Sandbox::start(&Options {
            name: Some(WORKER_NAME.into()),
            addresses: Vec::new(),
        })?;
        Sandbox::link(
            &first,
            &worker,
            &format!("{NODE_IP}/24"),
            &format!("{WORKER_IP}/24"),
        )?;
        // The worker's way out is the first node: registry.local is one of its addresses, and
        // the wrapper takes the advertised address from the default route.
        worker.sh_ok(&format!("ip route add default via {NODE_IP}"));
        let first = RealNode::provision(NodeHost::Sandbox(first), Trust::Server)?;
        let worker = RealNode::provision(NodeHost::Sandbox(worker), Trust::Client)?;
        Ok(Cluster { first, worker })
    }

    /// The join command of the first node (`kubeadm token create --print-join-command`
    /// through the wrapper).
    pub fn join_command(&self) -> String {
        let out = self
            .first
            .root_ok("kubeadm token create --print-join-command");
        out.lines()
            .rev()
            .find(|l| l.trim_start().starts_with("kubeadm join "))
            .unwrap_or_else(|| panic!("no join command in: {out}"))
            .trim()
            .to_string()
    }
}
