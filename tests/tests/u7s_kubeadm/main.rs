//! podsec-u7s-kubeadm end to end in the sandbox, with the real parts that run here: the real
//! docker-registry holding tags (as registry.local), a TLS registry stand-in with a test CA, a
//! token server and pagination in front of it, the real kubeadm v1.33.13 (config validate, image
//! lists, the file-only init phases run as u7s-admin with our configuration), and the real etcd
//! and kube-apiserver started with the command lines of the manifests kubeadm wrote (after our
//! audit patch), checked with the real kubectl. kubelet and CRI-O cannot run here: the sandbox
//! has version stand-ins of them (they answer `--version`, nothing else), so init stops at the
//! host preparation (`--prepare-only`) or runs as `--dry-run`.
//!
//! Issue 6 acceptance 1 (dry runs change nothing), 3 (the audit patch on kubeadm's manifest), 4
//! (resolution against a registry), 5 (the wrapper/host defects of spec §10.1-§10.2: the
//! `defect_*` assertions), 6 (real kubeadm and kube-apiserver).

use std::path::{Path, PathBuf};
use std::process::Output;

use podsec_k8s::u7s_kubeadm::audit;
use podsec_k8s::u7s_kubeadm::kubeadm_config::{
    self, Discovery, InitInput, JoinInput, NodeInput, Role,
};
use podsec_k8s::u7s_kubeadm::network::Ipv4Net;
use podsec_k8s::u7s_kubeadm::versions::KubeVersion;
use podsec_tests::fixtures::{path_with_commands, tree_digest};
use podsec_tests::k8s;
use podsec_tests::sandbox::{Options, Sandbox};

mod host;
mod plan;
mod registry;
mod runtime;
mod validate;

const ADDRESS: &str = "192.0.2.20";
const TOKEN: &str = "abcdef.0123456789abcdef";
const HASH: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The image tags of registry.local/<platform>/... for the pinned kubeadm v1.33.13
/// (`kubeadm config images list`: kube-*:v1.33.13, coredns:v1.12.0, pause:3.10, etcd:3.5.24-0).
fn standard_tags(platform: &str) -> Vec<String> {
    let mut entries = vec![
        format!(
            "{platform}/kube-apiserver:v1.26.3,v1.26.9,v1.26.11,v1.33.2,v1.33.9,v1.33.13,latest"
        ),
        format!("{platform}/kube-controller-manager:v1.33.13"),
        format!("{platform}/kube-scheduler:v1.33.13"),
        format!("{platform}/kube-proxy:v1.33.13"),
        format!("{platform}/coredns:v1.12.0"),
        format!("{platform}/flannel:v0.9.1,v0.25.1,v0.26.7,v0.27.0,latest"),
        format!("{platform}/flannel-cni-plugin:v1.5.1-flannel2,v1.7.1-flannel1"),
    ];
    if platform == "nopause" {
        entries.push(format!("{platform}/pause:3.9"));
    } else {
        entries.push(format!("{platform}/pause:3.10"));
    }
    if platform == "sub" || platform == "nopause" {
        entries.push(format!("{platform}/etcd:3.5.16-0,3.6.1-0"));
    } else {
        entries.push(format!("{platform}/etcd:3.5.16-0,3.5.24-0"));
    }
    entries
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sandboxed ALT-like node: ALT os-release, the real kubeadm as /usr/bin/kubeadm, version
/// stand-ins of kubelet and CRI-O, a stand-in apt-cache listing kubernetes1.26..1.33 packages,
/// and the real docker-registry as registry.local:80 holding tags.
struct Node {
    sandbox: Sandbox,
    path: String,
}

impl Node {
    fn start(platforms: &[&str]) -> Node {
        for name in ["kubeadm", "kubectl", "kube-apiserver", "etcd"] {
            if let Err(e) = k8s::binary(name) {
                panic!("{e:#}");
            }
        }
        let sandbox = Sandbox::start(&Options {
            name: None,
            addresses: vec![format!("{ADDRESS}/32")],
        })
        .expect("sandbox (needs root)");
        let node = Node {
            sandbox,
            path: path_with_commands(),
        };
        let share = node.sandbox.share();
        std::fs::write(
            share.join("registry.yml"),
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:80\n",
                share.join("registry-data").display()
            ),
        )
        .unwrap();
        let kubeadm = k8s::binary("kubeadm").unwrap();
        node.root_ok(&format!(
            r#"set -e
rm -f /etc/os-release
printf '%s\n' 'NAME="ALT SP Server"' 'ID=altlinux' 'VERSION_ID=10.2' 'CPE_NAME="cpe:/o:alt:spserver:10.2"' 'ALT_BRANCH_ID="c10f2"' > /etc/os-release
ln -sf {kubeadm} /usr/bin/kubeadm
# version stand-ins: kubelet and CRI-O cannot run here; these only answer --version
printf '#!/bin/sh\necho "Kubernetes v1.33.13"\n' > /usr/bin/kubelet
printf '#!/bin/sh\necho "crio version 1.33.2"\n' > /usr/bin/crio
cat > /usr/local/bin/apt-cache <<'EOS'
#!/bin/sh
# stand-in of ALT's apt-cache: the kubernetes packages of a repository
case "$1" in
search) for m in 26 27 28 29 30 31 32 33; do echo "kubernetes1.$m-kubeadm - Kubernetes kubeadm"; done ;;
show) m=${{2#kubernetes1.}}; m=${{m%%-*}}; echo "Package: $2"; echo "Version: 1.$m.4-alt1" ;;
esac
EOS
chmod 0755 /usr/bin/kubelet /usr/bin/crio /usr/local/bin/apt-cache
echo '127.0.0.1 registry.local' >> /etc/hosts
useradd -m alice"#,
            kubeadm = kubeadm.display()
        ));
        node.sandbox
            .spawn_daemon(
                "registry",
                &[
                    "docker-registry",
                    "serve",
                    share.join("registry.yml").to_str().unwrap(),
                ],
            )
            .unwrap();
        node.root_ok(
            "for i in $(seq 100); do curl -sf -o /dev/null http://registry.local/v2/ && exit 0; sleep 0.1; done; exit 1",
        );
        let mut entries = Vec::new();
        for platform in platforms {
            entries.extend(standard_tags(platform));
        }
        node.push_tags(&entries);
        node
    }

    /// Pushes a tiny image under every `repository:tag1,tag2` (a config blob and one manifest
    /// per tag: tag listing needs nothing more).
    fn push_tags(&self, entries: &[String]) {
        let out = self
            .sandbox
            .command("sh")
            .args(["-c", podsec_tests::fixtures::PUSH_TAGS, "push"])
            .args(entries)
            .env("PATH", &self.path)
            .output();
        assert!(out.status.success(), "pushing tags: {}", text(&out));
    }

    fn root(&self, script: &str) -> Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", &self.path)
            .output()
    }

    fn root_ok(&self, script: &str) -> String {
        let out = self.root(script);
        assert!(out.status.success(), "{script}\n{}", text(&out));
        stdout(&out)
    }

    fn as_u7s(&self, script: &str) -> Output {
        self.sandbox
            .command("sh")
            .args(["-c", script])
            .env("PATH", &self.path)
            .user("u7s-admin")
            .output()
    }

    /// The wrapper, through the link farm, with extra environment.
    fn kubeadm(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self
            .sandbox
            .command("podsec-u7s-kubeadm")
            .args(args)
            .env("PATH", &self.path);
        for (k, v) in env {
            command = command.env(k, v);
        }
        command.output()
    }

    fn kubeadm_ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.kubeadm(args, env);
        assert!(out.status.success(), "kubeadm {args:?}: {}", text(&out));
        stdout(&out)
    }

    /// A failure with one clear line naming the problem.
    fn kubeadm_fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.kubeadm(args, env);
        assert!(
            !out.status.success(),
            "kubeadm {args:?} should fail: {}",
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let last = err.lines().last().unwrap_or_default().to_string();
        assert!(last.starts_with("podsec-u7s-kubeadm: "), "{err}");
        last
    }

    /// Every file the sandbox changed (its upper layers) and its temporary directory.
    fn changes(&self) -> Vec<(PathBuf, u32, Vec<u8>)> {
        let mut all = tree_digest(&self.sandbox.state().join("layers"));
        all.extend(tree_digest(&self.sandbox.state().join("tmp")));
        all
    }

    fn stat(&self, path: &str) -> String {
        self.root_ok(&format!("stat -c '%U:%G %a' {path}"))
            .trim()
            .to_string()
    }
}

/// A calico manifest shaped as Tigera's calico-vxlan.yaml (CRD, ConfigMap, the calico-node
/// DaemonSet with init containers, the kube-controllers Deployment), its images under `prefix`.
fn calico_manifest(prefix: &str, node_tag: &str) -> String {
    format!(
        r#"---
# Source: calico/templates/calico-config.yaml
kind: ConfigMap
apiVersion: v1
metadata:
  name: calico-config
  namespace: kube-system
data:
  calico_backend: "vxlan"
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ippools.crd.projectcalico.org
spec:
  group: crd.projectcalico.org
  names:
    kind: IPPool
    plural: ippools
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
---
kind: DaemonSet
apiVersion: apps/v1
metadata:
  name: calico-node
  namespace: kube-system
spec:
  selector:
    matchLabels:
      k8s-app: calico-node
  template:
    metadata:
      labels:
        k8s-app: calico-node
    spec:
      hostNetwork: true
      initContainers:
        - name: install-cni
          image: {prefix}/cni:v3.29.1
      containers:
        - name: calico-node
          image: {prefix}/node:{node_tag}
          env:
            - name: CALICO_IPV4POOL_VXLAN
              value: "Always"
            - name: IP_AUTODETECTION_METHOD
              value: kubernetes-internal-ip
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: calico-kube-controllers
  namespace: kube-system
spec:
  selector:
    matchLabels:
      k8s-app: calico-kube-controllers
  template:
    metadata:
      labels:
        k8s-app: calico-kube-controllers
    spec:
      containers:
        - name: calico-kube-controllers
          image: {prefix}/kube-controllers:v3.29.1
"#
    )
}

/// Reads a static pod manifest of the sandbox and returns its first container's command.
fn manifest_command(node: &Node, name: &str) -> Vec<String> {
    let text = node.root_ok(&format!("cat /etc/kubernetes/manifests/{name}.yaml"));
    let pod: serde_json::Value = podsec_common::yaml::from_str(&text).unwrap();
    pod["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
