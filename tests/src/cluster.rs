//! Several real rootless nodes on one machine (issue 16): each node a sandbox of its own (own
//! mount, pid and network namespaces, overlays, address), all plugged into one bridge that lives
//! in the load balancer's sandbox (a switch in the test's namespaces only). The load balancer
//! runs Debian's haproxy in front of the control planes' API servers, configured as upstream's
//! documentation shows (frontend on 8443, the API servers behind it). The first node is the
//! first control plane and the registry and signature server (registry.local, sigstore.local
//! at REGISTRY_IP, one of its addresses); the others are clients of that trust chain.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::node::{NODE_IP, NODE_NAME, NodeHost, REGISTRY_IP, RealNode, Trust};
use crate::sandbox::{Options, Sandbox};

/// The load balancer's address on the bridge, and the control-plane endpoint it serves.
pub const LB_IP: &str = "192.0.2.100";
pub const LB_PORT: u16 = 8443;

/// The name and address of node `index` (0 is the first node: NODE_NAME, NODE_IP).
pub fn node_name(index: usize) -> String {
    if index == 0 {
        NODE_NAME.to_string()
    } else {
        format!("node{}", index + 1)
    }
}

pub fn node_ip(index: usize) -> String {
    if index == 0 {
        NODE_IP.to_string()
    } else {
        format!("192.0.2.{}", 10 + index)
    }
}

/// The control-plane endpoint every node and kubeconfig uses: the load balancer.
pub fn endpoint() -> String {
    format!("{LB_IP}:{LB_PORT}")
}

/// haproxy's configuration: upstream's frontend and backend, word for word (TCP through to the
/// API servers, round robin), one server line per control plane (a worker has no API server:
/// listed, haproxy would only show it DOWN), plus a log, timeouts and an admin socket. In upstream's backend `option ssl-hello-chk` comes last and replaces the
/// `httpchk` before it: the check is a TLS hello, so a server counts as up while it accepts
/// TLS, healthy or not (the kubeadm HA guide's `http-check connect ssl` asks /healthz instead;
/// with it, an API server whose etcd lost quorum is taken out too).
fn haproxy_config(control_planes: usize) -> String {
    let mut config = format!(
        "global
    log stdout format raw local0
    stats socket /run/haproxy-admin.sock mode 600 level admin
defaults
    log global
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend main
    bind {LB_IP}:{LB_PORT}
    mode tcp
    option tcplog
    default_backend apiserver
backend apiserver
    option httpchk GET /healthz
    http-check expect status 200
    mode tcp
    option ssl-hello-chk
    balance     roundrobin
    default-server inter 2s fall 2 rise 1
"
    );
    for index in 0..control_planes {
        config.push_str(&format!(
            "        server {} {}:6443 check\n",
            node_name(index),
            node_ip(index)
        ));
    }
    config
}

pub struct Cluster {
    /// The load balancer and the bridge every node is plugged into.
    pub lb: Sandbox,
    /// `nodes[0]` is the first control plane and the trust-chain server.
    pub nodes: Vec<RealNode>,
}

impl Cluster {
    /// The load balancer (haproxy running, in front of the first `control_planes` hosts) and
    /// `count` hosts up to (not including) `kubeadm init` and `kubeadm join`.
    pub fn prepare(count: usize, control_planes: usize) -> Result<Cluster> {
        anyhow::ensure!(
            (1..=count).contains(&control_planes),
            "{control_planes} control planes among {count} nodes"
        );
        let lb = Sandbox::start(&Options {
            name: Some("lb".into()),
            addresses: Vec::new(),
        })?;
        let mut hosts = Vec::new();
        for index in 0..count {
            let host = Sandbox::start(&Options {
                name: Some(node_name(index)),
                addresses: if index == 0 {
                    vec![format!("{REGISTRY_IP}/32")]
                } else {
                    Vec::new()
                },
            })?;
            Sandbox::attach(
                &lb,
                &host,
                &format!("{LB_IP}/24"),
                &format!("{}/24", node_ip(index)),
            )?;
            if index > 0 {
                // The way out is the first node: registry.local is one of its addresses, and
                // the wrapper takes the advertised address from the default route.
                host.sh_ok(&format!("ip route add default via {NODE_IP}"));
            }
            hosts.push(host);
        }
        let config = lb.share().join("haproxy.cfg");
        std::fs::write(&config, haproxy_config(control_planes))?;
        lb.spawn_daemon(
            "haproxy",
            &["haproxy", "-db", "-f", config.to_str().context("path")?],
        )?;
        let mut nodes = Vec::new();
        for (index, host) in hosts.into_iter().enumerate() {
            let trust = if index == 0 {
                Trust::Server
            } else {
                Trust::Client
            };
            nodes.push(RealNode::provision(NodeHost::Sandbox(host), trust)?);
        }
        let cluster = Cluster { lb, nodes };
        cluster.wait_lb_listening()?;
        Ok(cluster)
    }

    pub fn first(&self) -> &RealNode {
        &self.nodes[0]
    }

    fn wait_lb_listening(&self) -> Result<()> {
        let port = format!(":{LB_PORT}");
        for _ in 0..100 {
            let listening = self.lb.sh("ss -Htln").stdout;
            if listening.windows(port.len()).any(|w| w == port.as_bytes()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "haproxy does not listen on {}:\n{}",
            endpoint(),
            self.lb.daemon_log("haproxy")
        )
    }

    /// `kubeadm init` of the first node behind the load balancer.
    pub fn init(&self) -> (i32, String) {
        self.first()
            .init(&format!("--control-plane-endpoint {}", endpoint()))
    }

    /// The join command of the first node (`kubeadm token create --print-join-command`
    /// through the wrapper).
    pub fn join_command(&self) -> String {
        let out = self
            .first()
            .root_ok("kubeadm token create --print-join-command");
        out.lines()
            .rev()
            .find(|l| l.trim_start().starts_with("kubeadm join "))
            .unwrap_or_else(|| panic!("no join command in: {out}"))
            .trim()
            .to_string()
    }

    /// A fresh certificate key for a control-plane join, as upstream's docs get it
    /// (`kubeadm init phase upload-certs --upload-certs` through the wrapper, its last line).
    pub fn certificate_key(&self) -> Result<String> {
        let out = self
            .first()
            .root("kubeadm init phase upload-certs --upload-certs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let key = stdout.lines().last().unwrap_or_default().trim().to_string();
        if !out.status.success() || key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "kubeadm init phase upload-certs --upload-certs: {}\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(key)
    }

    /// `kubeadm join` of node `index` through the wrapper, with the printed join command (and,
    /// for a control plane, `--control-plane --certificate-key` with a fresh key); `extra`:
    /// more flags of the wrapper. Its exit status and output.
    pub fn join(&self, index: usize, control_plane: bool, extra: &str) -> Result<(i32, String)> {
        let mut command = self.join_command();
        assert!(
            command.contains(&format!("kubeadm join {}", endpoint()))
                && command.contains("--discovery-token-ca-cert-hash sha256:"),
            "{command}"
        );
        if control_plane {
            command.push_str(&format!(
                " --control-plane --certificate-key {}",
                self.certificate_key()?
            ));
        }
        Ok(self.nodes[index].join(&format!("{command} {extra}"), &node_name(index)))
    }

    /// The state of each API server as haproxy sees it: (server name, "UP"/"DOWN"...).
    pub fn lb_servers(&self) -> Vec<(String, String)> {
        self.lb_stats()
            .into_iter()
            .map(|(name, state, _)| (name, state))
            .collect()
    }

    /// How many connections haproxy has sent to each API server so far.
    pub fn lb_sessions(&self) -> Vec<(String, u64)> {
        self.lb_stats()
            .into_iter()
            .map(|(name, _, sessions)| (name, sessions))
            .collect()
    }

    /// haproxy's `show stat` of the backend's servers: (name, status, total sessions).
    fn lb_stats(&self) -> Vec<(String, String, u64)> {
        let out = self.lb.sh(
            "/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect(\"/run/haproxy-admin.sock\"); s.sendall(b\"show stat\\n\"); print(s.makefile().read())'",
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                (fields.len() > 17 && fields[0] == "apiserver" && fields[1] != "BACKEND").then(
                    || {
                        (
                            fields[1].to_string(),
                            fields[17].to_string(),
                            fields[7].parse().unwrap_or(0),
                        )
                    },
                )
            })
            .collect()
    }
}
