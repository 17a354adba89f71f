//! A u7s node in a sandbox: the package installed as `make install` lays it out (into the
//! sandbox's own /usr), the account u7s-admin with subordinate ids, a root-owned node
//! configuration, and the recording stand-ins of tests/standins/ for what cannot run here
//! (CRI-O and the kubelet).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::sandbox::{Options, Sandbox, target_dir};

pub const U7S_BIN: &str = "/usr/libexec/podsec/u7s/bin";
/// PATH of an admin who follows the docs: `export PATH=/usr/libexec/podsec/u7s/bin:$PATH`.
pub const ADMIN_PATH: &str =
    "/usr/libexec/podsec/u7s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const NODE_IP: &str = "192.0.2.10";
pub const USER: &str = "u7s-admin";

/// The directory of the stand-in scripts.
pub fn standins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("standins")
}

/// What the node configuration says (the rest is fixed).
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub role: &'static str,
    pub bind_port: u16,
    pub extra: &'static str,
}

impl Default for NodeSpec {
    fn default() -> NodeSpec {
        NodeSpec {
            role: "init-master",
            bind_port: 16443,
            extra: "",
        }
    }
}

pub struct U7sNode {
    pub sandbox: Sandbox,
    pub uid: u32,
}

impl U7sNode {
    /// A sandbox with the node's address, the installed package, u7s-admin, the stand-ins for
    /// CRI-O and the kubelet in /usr/bin, and /etc/podsec/u7s/node.toml.
    pub fn set_up(spec: &NodeSpec) -> U7sNode {
        let sandbox = Sandbox::start(&Options {
            name: Some("u7s".into()),
            addresses: vec![format!("{NODE_IP}/32")],
        })
        .unwrap();
        let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-commands");
        let standins = standins();
        let script = format!(
            r#"set -e
{install} {build} "" /usr >/dev/null
install -m 0755 {standins}/crio /usr/bin/crio
install -m 0755 {standins}/kubelet /usr/bin/kubelet
useradd -r -m -d /var/lib/{USER} -s /bin/sh {USER}
usermod --add-subuids 200000-265535 --add-subgids 200000-265535 {USER}
id -u {USER}"#,
            install = install.display(),
            build = target_dir().display(),
            standins = standins.display(),
        );
        let uid: u32 = sandbox.sh_ok(&script).trim().parse().unwrap();
        let node = U7sNode { sandbox, uid };
        node.write_config(&node.config_text(spec));
        node
    }

    pub fn config_text(&self, spec: &NodeSpec) -> String {
        config_text(spec, self.uid)
    }

    /// Writes /etc/podsec/u7s/node.toml as the kubeadm wrapper does (root, 0644).
    pub fn write_config(&self, text: &str) {
        let staged = self.sandbox.share().join("node.toml");
        std::fs::write(&staged, text).unwrap();
        self.sandbox.sh_ok(&format!(
            "install -d -m 0755 /etc/podsec/u7s && install -m 0644 {} /etc/podsec/u7s/node.toml",
            staged.display()
        ));
    }

    /// `sh -c script` as root with the admin's PATH.
    pub fn root(&self, script: &str) -> Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", ADMIN_PATH)
            .output()
    }

    /// `sh -c script` as u7s-admin with the u7s PATH.
    pub fn user(&self, script: &str) -> Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", ADMIN_PATH)
            .user(USER)
            .output()
    }

    pub fn root_ok(&self, script: &str) -> String {
        ok(script, self.root(script))
    }

    pub fn user_ok(&self, script: &str) -> String {
        ok(script, self.user(script))
    }

    /// A stand-in's record (`crio` or `kubelet`), as JSON.
    pub fn record(&self, name: &str) -> serde_json::Value {
        let text = self.root_ok(&format!("cat /var/lib/{USER}/standin/{name}.json"));
        serde_json::from_str(&text).unwrap()
    }

    /// The processes of the sandbox as `(uid, command name)`, the sandbox's own init excluded.
    pub fn processes(&self) -> Vec<(u32, String)> {
        self.root_ok("ps -e -o uid=,comm=")
            .lines()
            .filter_map(|line| {
                let (uid, name) = line.trim().split_once(char::is_whitespace)?;
                Some((uid.parse().ok()?, name.trim().to_string()))
            })
            .filter(|(_, name)| !["podsec-sandbox", "ps", "sh"].contains(&name.as_str()))
            .collect()
    }
}

/// The node configuration /etc/podsec/u7s/node.toml of a node whose u7s-admin has `uid`.
pub fn config_text(spec: &NodeSpec, uid: u32) -> String {
    format!(
        r#"role = "{role}"
kubernetes-version = "v1.33.13"
uid = {uid}
registry = "registry.local"
platform = "c10f"
pause-image = "registry.local/c10f/pause:3.10"
external-ip = "{NODE_IP}"
advertise-address = "{NODE_IP}"
bind-port = {port}
service-cidr = "10.96.0.0/12"
pod-cidr = "10.244.0.0/16"
cni-plugin = "flannel"
{extra}"#,
        role = spec.role,
        uid = uid,
        port = spec.bind_port,
        extra = spec.extra
    )
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `out`'s stdout; fails the test, showing `script` and the whole output, unless it exited 0.
pub fn ok(script: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{script}\nstatus {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
