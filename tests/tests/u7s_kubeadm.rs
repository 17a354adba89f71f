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

#[test]
fn dry_runs_print_the_whole_plan_and_change_nothing() {
    let node = Node::start(&["c10f"]);
    let before = node.changes();
    let init = node.kubeadm_ok(
        &[
            "init",
            "--dry-run",
            "--apiserver-advertise-address",
            ADDRESS,
        ],
        &[],
    );
    let join = node.kubeadm_ok(
        &[
            "join",
            "192.0.2.10:6443",
            "--token",
            TOKEN,
            "--discovery-token-ca-cert-hash",
            HASH,
            "--control-plane",
            "--certificate-key",
            KEY,
            "--apiserver-advertise-address",
            ADDRESS,
            "--dry-run",
        ],
        &[],
    );
    // The installed name `kubeadm` (in /usr/libexec/podsec/u7s/bin) is the same wrapper.
    let links = podsec_tests::fixtures::command_links();
    let wrapper = std::fs::read_link(links.join("podsec-u7s-kubeadm")).unwrap();
    let alias = node.root_ok(&format!(
        "d=$(mktemp -d); ln -s {} $d/kubeadm; $d/kubeadm init --dry-run --apiserver-advertise-address {ADDRESS}; rm -r $d",
        wrapper.display()
    ));
    // Nothing changed anywhere in the sandbox: files, users, temporary files (acceptance 1).
    assert!(before == node.changes(), "a dry run changed the sandbox");
    assert_eq!(alias.lines().next(), init.lines().next());

    for expected in [
        "podsec-u7s-kubeadm init: the plan (dry run: nothing was changed)",
        "v1.33.13 (the minor of the installed kubeadm v1.33.13, newest v1.33 patch in the registry)",
        "registry.local/c10f (registry.local bound in /etc/hosts; platform c10f from /etc/os-release)",
        "create system user u7s-admin",
        // the real kubeadm's image list, each tag found in the real registry
        "registry.local/c10f/etcd:3.5.24-0",
        "registry.local/c10f/coredns:v1.12.0",
        "registry.local/c10f/pause:3.10",
        "registry.local/c10f/flannel:v0.26.7",
        "file /etc/podsec/u7s/kubeadm/init.yaml (root:u7s-admin 0640)",
        "      | kind: InitConfiguration",
        "      |     dataDir: /var/lib/podsec/u7s/etcd",
        "file /etc/kubernetes/audit/policy.yaml (root:root 0644)",
        "file /etc/podsec/u7s/kube-flannel.yml (root:root 0644)",
        "skopeo copy --override-arch amd64 docker://registry.local/c10f/kube-apiserver:v1.33.13",
        "run inside the namespace: /usr/bin/kubeadm init --config /etc/podsec/u7s/kubeadm/init.yaml --upload-certs",
        "Processes:",
        "rootlesskit as u7s-admin",
        "Published ports (host -> u7s namespace):",
        "0.0.0.0:6443:6443/tcp",
        "enable and start u7s.service",
    ] {
        assert!(
            init.contains(expected),
            "init plan lacks {expected:?}:\n{init}"
        );
    }
    for expected in [
        "control-plane node (kubeadm join --control-plane)",
        "      | kind: JoinConfiguration",
        "      |     apiServerEndpoint: 192.0.2.10:6443",
        "      |   certificateKey: 00112233",
        "/usr/bin/kubeadm join --config /etc/podsec/u7s/kubeadm/join.yaml",
        "add the audit flags, mount and volume to /etc/kubernetes/manifests/kube-apiserver.yaml",
    ] {
        assert!(
            join.contains(expected),
            "join plan lacks {expected:?}:\n{join}"
        );
    }
    // §10.2 defect 11: --dry-run never ran anything that mutates; no native kubeadm --dry-run.
    assert!(!init.contains("--dry-run"), "{init}");

    // §10.2 defect 10: no subcommand is the usage, never the deployment, and changes nothing.
    let out = node.kubeadm(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("Usage: kubeadm"));
    let out = node.kubeadm(&["-v", "5"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // §10.2 defect 9: an unknown flag is an error, not part of a command line
    let err = node.kubeadm_fails(&["init", "--ttl", "1h", "--dry-run"], &[]);
    assert!(err.contains("unknown flag --ttl for kubeadm init"), "{err}");
    // §10.2 defect 17: bad input exits non-zero (upstream: exit 0)
    let err = node.kubeadm_fails(&["init", "--dry-run"], &[("U7S_KUBEVERSION", "1.x")]);
    assert!(err.contains("U7S_KUBEVERSION='1.x'"), "{err}");
    // other subcommands need the running namespace, and say so (no 10 blind retries)
    let err = node.kubeadm_fails(&["token", "list"], &[]);
    assert!(err.contains("u7s namespace is not running"), "{err}");
    assert!(
        before == node.changes(),
        "a failed command changed the sandbox"
    );
}

#[test]
fn versions_registries_and_substitutions_against_the_real_registry() {
    let node = Node::start(&["c10f", "sub", "nopause"]);
    let adv = ["--apiserver-advertise-address", ADDRESS, "--dry-run"];
    let init = |env: &[(&str, &str)]| {
        let mut args = vec!["init"];
        args.extend(adv);
        node.kubeadm_ok(&args, env)
    };
    let init_fails = |env: &[(&str, &str)]| {
        let mut args = vec!["init"];
        args.extend(adv);
        node.kubeadm_fails(&args, env)
    };

    // v1.26.11 > v1.26.9 > v1.26.3 by number (§10.2 defect 13); another minor needs packages,
    // which the (stand-in) ALT repository has: the plan installs them, the images follow.
    let plan = init(&[("U7S_KUBEVERSION", "v1.26")]);
    assert!(
        plan.contains("v1.26.11 (U7S_KUBEVERSION, newest v1.26 patch in the registry)"),
        "{plan}"
    );
    assert!(plan.contains("install packages kubernetes1.26-kubeadm kubernetes1.26-kubelet kubernetes1.26-crio cri-tools1.26"), "{plan}");
    assert!(
        plan.contains("$ apt-get install -y kubernetes1.26-kubeadm"),
        "{plan}"
    );
    assert!(
        plan.contains("are listed by kubeadm v1.26 once its package is installed"),
        "{plan}"
    );
    // an exact patch the registry lacks: the error lists what it has, in order
    let err = init_fails(&[("U7S_KUBEVERSION", "v1.26.10")]);
    assert!(err.contains("(it has v1.26.3, v1.26.9, v1.26.11)"), "{err}");
    // flannel: v0.27.0 has no shipped manifest, v0.9.1 is older than v0.26.7
    assert!(
        plan.contains("flannel v0.26.7 (newest in the registry with a shipped manifest)"),
        "{plan}"
    );
    // U7S_FLANNELCNIPLUGIN_TAG is honoured (§10.2 defect 15)
    let plan = init(&[
        ("U7S_FLANNEL_TAG", "v0.25.1"),
        ("U7S_FLANNELCNIPLUGIN_TAG", "v1.5.1-flannel2"),
    ]);
    assert!(
        plan.contains("registry.local/c10f/flannel-cni-plugin:v1.5.1-flannel2"),
        "{plan}"
    );

    // Registry precedence (§10.2 defect 12). /etc/hosts: registry.local (above). A non-empty
    // U7S_REGISTRY is honoured although /etc/hosts binds registry.local; TLS is verified by
    // default, so plain HTTP to it is refused until registries.conf marks it insecure.
    let err = init_fails(&[("U7S_REGISTRY", "127.0.0.1")]);
    assert!(
        err.contains("https://127.0.0.1/v2/c10f/kube-apiserver/tags/list"),
        "{err}"
    );
    node.root_ok(
        "mkdir -p /etc/containers && printf '[[registry]]\\nlocation = \"127.0.0.1\"\\ninsecure = true\\n' > /etc/containers/registries.conf",
    );
    let plan = init(&[("U7S_REGISTRY", "127.0.0.1")]);
    assert!(
        plan.contains("127.0.0.1/c10f (U7S_REGISTRY; platform c10f from /etc/os-release)"),
        "{plan}"
    );
    // the flag wins over the variable
    let mut args = vec!["init", "--image-repository", "registry.local/c10f"];
    args.extend(adv);
    let plan = node.kubeadm_ok(&args, &[("U7S_REGISTRY", "bogus.invalid")]);
    assert!(
        plan.contains("registry.local/c10f (--image-repository)"),
        "{plan}"
    );
    // U7S_PLATFORM over os-release, k8s-c10fN mapped to c10f
    let plan = init(&[("U7S_PLATFORM", "k8s-c10f1")]);
    assert!(
        plan.contains("U7S_PLATFORM=k8s-c10f1: images live under /c10f now"),
        "{plan}"
    );

    // U7S_SETAVAILABLEIMAGES (§10.2 defect 14): platform "sub" has etcd 3.5.16-0 and 3.6.1-0
    // but not kubeadm's 3.5.24-0.
    let err = init_fails(&[("U7S_PLATFORM", "sub")]);
    assert!(
        err.contains("etcd: the registry has no tag 3.5.24-0 (it has 3.5.16-0)"),
        "{err}"
    );
    let plan = init(&[("U7S_PLATFORM", "sub"), ("U7S_SETAVAILABLEIMAGES", "yes")]);
    assert!(
        plan.contains("WARNING: U7S_SETAVAILABLEIMAGES=yes: registry.local/sub/etcd:3.5.24-0 is not in the registry; using registry.local/sub/etcd:3.5.16-0 in its place"),
        "{plan}"
    );
    assert!(
        plan.contains("      |     imageTag: 3.5.16-0"),
        "kubeadm asks for the substitute itself:\n{plan}"
    );
    assert!(!plan.contains("3.6.1-0"), "never another minor:\n{plan}");
    // pause 3.9 is no stand-in for 3.10 (another minor), even when substitutions are allowed
    let err = init_fails(&[
        ("U7S_PLATFORM", "nopause"),
        ("U7S_SETAVAILABLEIMAGES", "yes"),
    ]);
    assert!(
        err.contains("pause: the registry has no tag of the same minor as 3.10"),
        "{err}"
    );
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

/// Calico from the administrator's manifest (issue 13, item 6), against the real registry:
/// refused without a manifest, with an image of another registry or a tag the registry lacks,
/// with a manifest that is a link; accepted when every image is there, and the plan pulls them,
/// writes the validated copy, applies it after init, and publishes calico's ports.
#[test]
fn calico_from_the_administrators_manifest_against_the_real_registry() {
    let node = Node::start(&["c10f"]);
    node.push_tags(&[
        "calico/cni:v3.29.1".to_string(),
        "calico/node:v3.29.1".to_string(),
        "calico/kube-controllers:v3.29.1".to_string(),
    ]);
    for (name, text) in [
        (
            "calico.yaml",
            calico_manifest("registry.local/calico", "v3.29.1"),
        ),
        (
            "upstream.yaml",
            calico_manifest("docker.io/calico", "v3.29.1"),
        ),
        (
            "missing-tag.yaml",
            calico_manifest("registry.local/calico", "v3.30.0"),
        ),
    ] {
        node.root_ok(&format!(
            "mkdir -p /etc/podsec && cat > /etc/podsec/{name} <<'EOF'\n{text}EOF\nchmod 0644 /etc/podsec/{name}"
        ));
    }
    node.root_ok("ln -sf /etc/podsec/calico.yaml /etc/podsec/link.yaml");
    let before = node.changes();
    let init = |manifest: Option<&str>| {
        let mut env = vec![("U7S_CNI_PLUGIN", "calico")];
        if let Some(m) = manifest {
            env.push(("U7S_CALICO_MANIFEST", m));
        }
        node.kubeadm(
            &[
                "init",
                "--apiserver-advertise-address",
                ADDRESS,
                "--dry-run",
            ],
            &env,
        )
    };
    let fails = |manifest: Option<&str>| {
        let out = init(manifest);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        err
    };
    let err = fails(None);
    assert!(
        err.contains("U7S_CNI_PLUGIN='calico': calico needs its manifest: set U7S_CALICO_MANIFEST"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/upstream.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/upstream.yaml: image docker.io/calico/cni:v3.29.1 is not in the node's registry registry.local"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/missing-tag.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/missing-tag.yaml: image registry.local/calico/node: the registry has no tag v3.30.0 (it has none of that kind)"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/link.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/link.yaml: refused: it is a symbolic link"),
        "{err}"
    );
    let err = fails(Some("/etc/podsec/none.yaml"));
    assert!(
        err.contains("U7S_CALICO_MANIFEST=/etc/podsec/none.yaml: no such file"),
        "{err}"
    );

    let out = init(Some("/etc/podsec/calico.yaml"));
    assert!(out.status.success(), "{}", text(&out));
    let plan = stdout(&out);
    for expected in [
        "calico                  the manifest of U7S_CALICO_MANIFEST=/etc/podsec/calico.yaml (3 images)",
        "pod network             192.168.0.0/16",
        "      |   podSubnet: 192.168.0.0/16",
        "file /etc/podsec/u7s/calico.yaml (root:root 0644)",
        "      |           image: registry.local/calico/node:v3.29.1",
        "docker://registry.local/calico/node:v3.29.1",
        "docker://registry.local/calico/cni:v3.29.1",
        "docker://registry.local/calico/kube-controllers:v3.29.1",
        "apply calico: kubectl --kubeconfig /root/.kube/config apply --server-side -f /etc/podsec/u7s/calico.yaml (bounded retries)",
        "      | cni-plugin = \"calico\"",
        "kube-proxy and calico-node (DaemonSets)",
        "0.0.0.0:5473:5473/tcp",
        "0.0.0.0:4789:4789/udp",
        "0.0.0.0:51820:51820/udp",
    ] {
        assert!(plan.contains(expected), "plan lacks {expected:?}:\n{plan}");
    }
    assert!(!plan.contains("flannel"), "no flannel with calico:\n{plan}");
    // VXLAN always and the node's address: nothing to warn about for several rootless nodes
    assert!(!plan.contains("WARNING"), "{plan}");
    assert!(
        before == node.changes(),
        "a dry run or a refusal changed the sandbox"
    );
}

#[test]
fn tls_registry_with_token_auth_and_pagination() {
    let node = Node::start(&["c10f"]);
    let share = node.sandbox.share();
    let pki = share.join("tls");
    std::fs::create_dir_all(&pki).unwrap();
    k8s::make_ca(&pki, "ca", "podsec-test-registry-ca").unwrap();
    k8s::make_cert(
        &pki,
        "ca",
        "server",
        "/CN=tls.registry.test",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:tls.registry.test\n",
    )
    .unwrap();
    let log = share.join("token-registry.log");
    let stand_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("standins/token-registry.py");
    let p = |name: &str| pki.join(name).display().to_string();
    node.root_ok("echo '127.0.0.1 tls.registry.test' >> /etc/hosts");
    node.sandbox
        .spawn_daemon(
            "token-registry",
            &[
                "python3",
                stand_in.to_str().unwrap(),
                "--listen",
                "127.0.0.1:5443",
                "--cert",
                &p("server.crt"),
                "--key",
                &p("server.key"),
                "--upstream",
                "http://127.0.0.1:80",
                "--realm",
                "https://tls.registry.test:5443/token",
                "--service",
                "tls.registry.test",
                "--page",
                "3",
                "--log",
                log.to_str().unwrap(),
            ],
        )
        .unwrap();
    node.root_ok(&format!(
        "for i in $(seq 100); do curl -s -o /dev/null --cacert {} https://tls.registry.test:5443/v2/ && exit 0; sleep 0.1; done; exit 1",
        p("ca.crt")
    ));
    let env = [("U7S_REGISTRY", "tls.registry.test:5443")];
    let args = [
        "init",
        "--dry-run",
        "--apiserver-advertise-address",
        ADDRESS,
    ];

    // Without the registry's CA the certificate is not trusted: TLS is verified (§10.1 defect 6).
    let err = node.kubeadm_fails(&args, &env);
    assert!(
        err.contains("/etc/containers/certs.d/tls.registry.test:5443/ca.crt"),
        "{err}"
    );

    // With it (containers' certs.d, as CRI-O and skopeo read it) the bearer token is fetched and
    // every page followed: v1.33.13 sorts last of seven kube-apiserver tags, on the third page.
    node.root_ok(&format!(
        "install -D -m 0644 {} /etc/containers/certs.d/tls.registry.test:5443/ca.crt",
        p("ca.crt")
    ));
    let _ = std::fs::remove_file(&log);
    let plan = node.kubeadm_ok(&args, &env);
    assert!(
        plan.contains("v1.33.13 (the minor of the installed kubeadm v1.33.13, newest v1.33 patch"),
        "{plan}"
    );
    assert!(
        plan.contains("tls.registry.test:5443/c10f/etcd:3.5.24-0"),
        "{plan}"
    );
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let apiserver: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| r["path"] == "/v2/c10f/kube-apiserver/tags/list")
        .collect();
    assert!(
        apiserver.first().is_some_and(|r| r["auth"] == ""),
        "first try anonymous: {apiserver:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/token" && r["scope"] == "repository:c10f/kube-apiserver:pull"),
        "{requests:?}"
    );
    let paged: Vec<&&serde_json::Value> =
        apiserver.iter().filter(|r| r["auth"] == "Bearer").collect();
    assert_eq!(paged.len(), 3, "7 tags in pages of 3: {apiserver:?}");
    assert!(
        paged[2]["query"].as_str().unwrap().contains("last="),
        "{paged:?}"
    );
}

/// Reads a static pod manifest of the sandbox and returns its first container's command.
fn manifest_command(node: &Node, name: &str) -> Vec<String> {
    let text = node.root_ok(&format!("cat /etc/kubernetes/manifests/{name}.yaml"));
    let pod: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    pod["spec"]["containers"][0]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn host_preparation_then_real_kubeadm_phases_and_an_audited_api_server() {
    let node = Node::start(&["c10f"]);
    // What must survive: a foreign CNI configuration and root-owned plugin binaries.
    node.root_ok(
        "mkdir -p /etc/cni/net.d /usr/libexec/cni && echo '{}' > /etc/cni/net.d/87-podman.conflist && \
         echo plugin > /usr/libexec/cni/bridge && chmod 0755 /usr/libexec/cni/bridge && \
         touch /usr/share/containers/containers.conf",
    );
    let containers_conf = node.root_ok("sha256sum /usr/share/containers/containers.conf");
    let args = [
        "init",
        "--prepare-only",
        "--apiserver-advertise-address",
        ADDRESS,
        "--node-name",
        "node1",
        "--service-cidr",
        "10.112.0.0/12",
        "--pod-network-cidr",
        "10.200.0.0/16",
        "--apiserver-cert-extra-sans",
        "api.example.org",
        "--token",
        TOKEN,
        "--token-ttl",
        "2h",
    ];
    node.kubeadm_ok(&args, &[]);

    // The account, with a subordinate range from usermod (§10.2 defect 21), not alice's.
    let ids = node.root_ok(
        "id u7s-admin; grep '^u7s-admin:' /etc/subuid /etc/subgid; grep '^alice:' /etc/subuid",
    );
    assert!(
        ids.contains("/etc/subuid:u7s-admin:") && ids.contains("/etc/subgid:u7s-admin:"),
        "{ids}"
    );
    let alice_start: u64 = ids
        .lines()
        .last()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let u7s_start: u64 = ids
        .lines()
        .find(|l| l.starts_with("/etc/subuid:u7s-admin"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(u7s_start >= alice_start + 65536, "{ids}");
    // Owners and modes: root owns what root reads; u7s-admin only its data (§10.1 defects 1, 5).
    for (path, expected) in [
        ("/etc/podsec/u7s", "root:root 755"),
        ("/etc/podsec/u7s/kubeadm/init.yaml", "root:u7s-admin 640"),
        ("/etc/podsec/u7s/kube-flannel.yml", "root:root 644"),
        ("/etc/kubernetes", "u7s-admin:u7s-admin 755"),
        ("/etc/kubernetes/audit", "root:u7s-admin 1770"),
        ("/etc/kubernetes/audit/policy.yaml", "root:root 644"),
        ("/var/lib/podsec/u7s/etcd", "u7s-admin:u7s-admin 700"),
        ("/etc/cni/net.d/10-flannel.conflist", "root:root 644"),
        // §10.1 defect 4: package binaries keep their owner
        ("/usr/libexec/cni/bridge", "root:root 755"),
        ("/etc/sysctl.d/90-podsec-u7s.conf", "root:root 644"),
        // issue 13 item 3: the modules again at every boot, not only a one-shot modprobe (this
        // sandbox has no packaged /usr/lib/modules-load.d file: host preparation writes /etc's)
        ("/etc/modules-load.d/podsec-u7s.conf", "root:root 644"),
        // the runtime's typed node configuration, loaded back by the runtime's own reader
        ("/etc/podsec/u7s/node.toml", "root:root 644"),
    ] {
        assert_eq!(node.stat(path), expected, "{path}");
    }
    let node_toml = node.root_ok("cat /etc/podsec/u7s/node.toml");
    let config = podsec_k8s::node_config::NodeConfig::from_toml(&node_toml, Path::new("node.toml"))
        .unwrap_or_else(|e| panic!("{e}: {node_toml}"));
    let uid: u32 = node.root_ok("id -u u7s-admin").trim().parse().unwrap();
    assert_eq!(config.uid, uid);
    assert_eq!(config.service_cidr.to_string(), "10.112.0.0/12");
    assert_eq!(config.pod_cidr.to_string(), "10.200.0.0/16");
    assert_eq!(config.pause_image, "registry.local/c10f/pause:3.10");
    // §10.1 defect 7: /etc/cni is not wiped, the vendor containers.conf not edited
    assert_eq!(
        node.root_ok("cat /etc/cni/net.d/87-podman.conflist").trim(),
        "{}"
    );
    assert_eq!(
        node.root_ok("sha256sum /usr/share/containers/containers.conf"),
        containers_conf
    );
    assert_eq!(
        node.root_ok("cat /proc/sys/net/ipv4/ip_forward").trim(),
        "1"
    );
    assert_eq!(
        node.root_ok("cat /etc/modules-load.d/podsec-u7s.conf"),
        podsec_k8s::u7s_kubeadm::host_prep::modules_load_conf()
    );
    // A reboot, simulated: a fresh sandbox (its own network namespace, ip_forward 0) with this
    // /etc's files; the real systemd-sysctl of boot applies them. (systemd-modules-load is not
    // run: modules are the host kernel's, and this kernel has none.)
    let rebooted = Sandbox::start(&Options::default()).expect("sandbox");
    for file in [
        "/etc/sysctl.d/90-podsec-u7s.conf",
        "/etc/modules-load.d/podsec-u7s.conf",
    ] {
        let copy = rebooted.share().join("copy");
        std::fs::write(&copy, node.root_ok(&format!("cat {file}"))).unwrap();
        rebooted.sh_ok(&format!(
            "mkdir -p $(dirname {file}) && cp {} {file}",
            copy.display()
        ));
    }
    assert_eq!(
        rebooted
            .sh_ok("cat /proc/sys/net/ipv4/ip_forward; /lib/systemd/systemd-sysctl /etc/sysctl.d/90-podsec-u7s.conf && cat /proc/sys/net/ipv4/ip_forward"),
        "0\n1\n"
    );
    rebooted.sh_ok("grep -qx br_netfilter /etc/modules-load.d/podsec-u7s.conf");
    drop(rebooted);
    // §10.1 defect 5: u7s-admin can write its log there but not replace the policy
    let out = node.as_u7s(
        "touch /etc/kubernetes/audit/probe.log && rm /etc/kubernetes/audit/probe.log && \
         ! mv /etc/kubernetes/audit/policy.yaml /etc/kubernetes/audit/old 2>/dev/null && \
         ! sh -c 'echo weak > /etc/kubernetes/audit/policy.yaml' 2>/dev/null && echo guarded",
    );
    assert!(stdout(&out).contains("guarded"), "{}", text(&out));

    // Re-running changes nothing (idempotent).
    let before = node.changes();
    node.kubeadm_ok(&args, &[]);
    assert!(
        before == node.changes(),
        "a second --prepare-only changed files"
    );

    // The real kubeadm accepts our configuration.
    let config = "/etc/podsec/u7s/kubeadm/init.yaml";
    let kubeadm = k8s::binary("kubeadm").unwrap().display().to_string();
    node.root_ok(&format!("{kubeadm} config validate --config {config}"));
    // The file-only init phases, run as u7s-admin (root of the namespace in production): our
    // directory owners are what lets kubeadm write.
    let out = node.as_u7s(&format!(
        "set -e; for phase in 'certs all' 'kubeconfig all' 'control-plane all' 'etcd local'; do \
         {kubeadm} init phase $phase --config {config}; done"
    ));
    assert!(out.status.success(), "kubeadm phases: {}", text(&out));
    let etcd_command = manifest_command(&node, "etcd");
    assert!(
        etcd_command.contains(&"--data-dir=/var/lib/podsec/u7s/etcd".to_string()),
        "{etcd_command:?}"
    );
    assert!(etcd_command.contains(&"--listen-peer-urls=https://0.0.0.0:2380".to_string()));
    assert!(
        !etcd_command.iter().any(|a| a.contains("enable-v2")),
        "§10.2 defect 23"
    );

    // The audit patch on the manifest kubeadm wrote (acceptance 3), then idempotent.
    let original = node.root_ok("cat /etc/kubernetes/manifests/kube-apiserver.yaml");
    assert!(
        !original.contains("audit"),
        "kubeadm wrote no audit settings itself"
    );
    let patched = audit::patch_manifest(&original).unwrap().expect("patched");
    assert_eq!(audit::patch_manifest(&patched).unwrap(), None);
    std::fs::write(node.sandbox.share().join("kube-apiserver.yaml"), &patched).unwrap();
    node.root_ok(&format!(
        "install -o u7s-admin -g u7s-admin -m 0600 {} /etc/kubernetes/manifests/kube-apiserver.yaml",
        node.sandbox.share().join("kube-apiserver.yaml").display()
    ));
    let apiserver_command = manifest_command(&node, "kube-apiserver");
    for flag in [
        "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        "--audit-log-path=/etc/kubernetes/audit/audit.log",
        "--advertise-address=192.0.2.20",
        "--service-cluster-ip-range=10.112.0.0/12",
        "--etcd-servers=https://127.0.0.1:2379",
    ] {
        assert!(
            apiserver_command.contains(&flag.to_string()),
            "{flag}: {apiserver_command:?}"
        );
    }

    // etcd and kube-apiserver with exactly those command lines, as u7s-admin (acceptance 6).
    let start = |label: &str, mut command: Vec<String>, binary: &str| {
        command[0] = k8s::binary(binary).unwrap().display().to_string();
        let mut argv = vec![
            "setpriv".to_string(),
            "--reuid=u7s-admin".into(),
            "--regid=u7s-admin".into(),
            "--init-groups".into(),
            "--".into(),
        ];
        argv.extend(command);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        node.sandbox.spawn_daemon(label, &argv).unwrap();
    };
    start("etcd", etcd_command, "etcd");
    start("kube-apiserver", apiserver_command, "kube-apiserver");
    let kubectl = k8s::binary("kubectl").unwrap().display().to_string();
    let ready = node.root(&format!(
        "for i in $(seq 240); do {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf get --raw /readyz >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1"
    ));
    assert!(
        ready.status.success(),
        "kube-apiserver not ready:\n{}\n{}",
        node.sandbox
            .daemon_log("etcd")
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n"),
        node.sandbox
            .daemon_log("kube-apiserver")
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // It serves requests (the super-admin is in system:masters, the group upstream's policy
    // never audited), and our rendered flannel manifest is a valid set of API objects.
    node.root_ok(&format!(
        "{kubectl} --kubeconfig /etc/kubernetes/super-admin.conf create namespace podsec-audit-probe && \
         {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf get namespace podsec-audit-probe && \
         {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf apply -f /etc/podsec/u7s/kube-flannel.yml"
    ));
    let flannel = node.root_ok(&format!(
        "{kubectl} --kubeconfig /etc/kubernetes/super-admin.conf -n kube-flannel get daemonset kube-flannel-ds -o jsonpath='{{.spec.template.spec.containers[0].image}} {{.spec.template.spec.initContainers[*].name}}'"
    ));
    assert_eq!(
        flannel.trim(),
        "registry.local/c10f/flannel:v0.26.7 install-cni-plugin"
    );
    // calico's apply as the plan runs it (server-side) takes a manifest shaped as Tigera's: its
    // CRD, ConfigMap, DaemonSet and Deployment are valid API objects for the real API server.
    node.root_ok(&format!(
        "cat > /etc/podsec/calico-apply.yaml <<'EOF'\n{}EOF\n\
         {kubectl} --kubeconfig /etc/kubernetes/super-admin.conf apply --server-side -f /etc/podsec/calico-apply.yaml",
        calico_manifest("registry.local/calico", "v3.29.1")
    ));
    let calico = node.root_ok(&format!(
        "{kubectl} --kubeconfig /etc/kubernetes/super-admin.conf -n kube-system get daemonset calico-node -o jsonpath='{{.spec.template.spec.containers[0].image}}'"
    ));
    assert_eq!(calico.trim(), "registry.local/calico/node:v3.29.1");
    let log = node.root_ok(
        "for i in $(seq 40); do grep -q podsec-audit-probe /etc/kubernetes/audit/audit.log 2>/dev/null && break; sleep 0.25; done; cat /etc/kubernetes/audit/audit.log",
    );
    let event: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["requestURI"] == "/api/v1/namespaces/podsec-audit-probe" && e["verb"] == "get")
        .unwrap_or_else(|| panic!("no audit event for the namespace:\n{log}"));
    assert!(
        event["user"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "system:masters"),
        "{event}"
    );
    assert_eq!(event["level"], "Metadata");
    assert_eq!(
        node.stat("/etc/kubernetes/audit/audit.log")
            .split(' ')
            .next(),
        Some("u7s-admin:u7s-admin")
    );

    // Leftovers are detected and only removed when asked (§10.2 defect 21).
    let err = node.kubeadm_fails(&args, &[]);
    assert!(
        err.contains("leftovers of an earlier deployment: /etc/kubernetes/admin.conf"),
        "{err}"
    );
    assert!(
        err.contains("/var/lib/podsec/u7s/etcd/member") && err.contains("--reset"),
        "{err}"
    );
    assert!(
        node.root("test -e /etc/kubernetes/admin.conf")
            .status
            .success()
    );
}

/// Configurations in every shape the wrapper makes, for v1.33 (the pinned kubeadm's minor).
fn configurations(discovery_file: &Path) -> Vec<(String, String)> {
    let version = KubeVersion::parse("v1.33.13").unwrap();
    let net = |s: &str| Ipv4Net::parse_cluster(s).unwrap();
    let init = |f: &dyn Fn(&mut InitInput, &mut NodeInput)| {
        let mut input = InitInput {
            image_repository: "registry.local/c10f".into(),
            control_plane_endpoint: format!("{ADDRESS}:6443"),
            pod_subnet: net("10.244.0.0/16"),
            service_subnet: net("10.96.0.0/12"),
            dns_domain: "cluster.local".into(),
            cert_extra_sans: Vec::new(),
            feature_gates: Vec::new(),
            token: None,
            token_ttl: None,
            certificate_key: None,
            etcd_image_tag: None,
            dns_image_tag: None,
        };
        let mut node = NodeInput {
            role: Role::Init,
            version,
            node_name: "node1".into(),
            advertise_address: ADDRESS.parse().unwrap(),
            bind_port: 6443,
            skip_phases: Vec::new(),
            patches: None,
            init: None,
            join: None,
        };
        f(&mut input, &mut node);
        node.init = Some(input);
        kubeadm_config::render(&node).unwrap()
    };
    let join = |role: Role, discovery: Discovery, key: Option<&str>| {
        kubeadm_config::render(&NodeInput {
            role,
            version,
            node_name: "node2".into(),
            advertise_address: "192.0.2.21".parse().unwrap(),
            bind_port: 7443,
            skip_phases: vec!["preflight".into()],
            patches: Some("/etc/podsec/patches".into()),
            init: None,
            join: Some(JoinInput {
                discovery,
                tls_bootstrap_token: Some(TOKEN.into()),
                certificate_key: key.map(String::from),
            }),
        })
        .unwrap()
    };
    let token = || Discovery::Token {
        endpoint: "192.0.2.10:6443".into(),
        token: TOKEN.into(),
        ca_cert_hashes: vec![HASH.into()],
        unsafe_skip_ca_verification: false,
    };
    vec![
        ("init-defaults".into(), init(&|_, _| {})),
        (
            "init-every-flag".into(),
            init(&|i, n| {
                i.token = Some(TOKEN.into());
                i.token_ttl = Some("2h".into());
                i.certificate_key = Some(KEY.into());
                i.cert_extra_sans = vec!["api.example.org".into(), "10.0.0.5".into()];
                i.feature_gates = vec![("PublicKeysECDSA".into(), true)];
                i.dns_domain = "corp.internal".into();
                i.service_subnet = net("10.112.0.0/12");
                i.pod_subnet = net("10.200.0.0/16");
                i.control_plane_endpoint = "api.example.org:8443".into();
                i.etcd_image_tag = Some("3.5.16-0".into());
                i.dns_image_tag = Some("v1.11.3".into());
                n.bind_port = 7443;
                n.skip_phases = vec!["addon/kube-proxy".into()];
                n.patches = Some("/etc/podsec/patches".into());
            }),
        ),
        (
            "init-ttl-only".into(),
            init(&|i, _| i.token_ttl = Some("0".into())),
        ),
        ("join-worker".into(), join(Role::Worker, token(), None)),
        (
            "join-control-plane".into(),
            join(Role::ControlPlane, token(), Some(KEY)),
        ),
        (
            "join-unsafe-skip".into(),
            join(
                Role::Worker,
                Discovery::Token {
                    endpoint: "192.0.2.10:6443".into(),
                    token: TOKEN.into(),
                    ca_cert_hashes: vec![],
                    unsafe_skip_ca_verification: true,
                },
                None,
            ),
        ),
        (
            "join-file".into(),
            join(
                Role::Worker,
                Discovery::File {
                    kubeconfig: discovery_file.display().to_string(),
                },
                None,
            ),
        ),
    ]
}

#[test]
fn every_generated_configuration_passes_kubeadm_config_validate() {
    let kubeadm = k8s::binary("kubeadm").unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../podsec-k8s/tests/golden/kubeadm");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("1.33-")
        })
        .collect();
    assert_eq!(files.len(), 3, "the golden files of the newest minor");
    let discovery = dir.path().join("discovery.conf");
    std::fs::write(
        &discovery,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://192.0.2.10:6443\n    certificate-authority-data: QUJD\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    for (name, text) in configurations(&discovery) {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    for file in files {
        let out = std::process::Command::new(&kubeadm)
            .args(["config", "validate", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", file.display(), text(&out));
        // image lists are what the plan checks in the registry: the config's overrides apply
        if file.to_string_lossy().contains("init-every-flag") {
            let out = std::process::Command::new(&kubeadm)
                .args(["config", "images", "list", "--config"])
                .arg(&file)
                .output()
                .unwrap();
            let images = stdout(&out);
            assert!(
                images.contains("registry.local/c10f/etcd:3.5.16-0"),
                "{images}"
            );
            assert!(
                images.contains("registry.local/c10f/coredns:v1.11.3"),
                "{images}"
            );
        }
    }
}

/// `kubeadm init` as an administrator runs it, through the real u7s runtime (rootlesskit,
/// slirp4netns, nsenter as u7s-admin) and the real kubeadm inside the namespace, with the
/// recording stand-ins of CRI-O and the kubelet. kubeadm's preflight runs in full, nothing
/// ignored: the namespace's checks (root, ip_forward, ports, directories, versions...) and, over
/// the CRI, the runtime's status and every image kubeadm needs, which the CRI-O stand-in finds
/// in the store the wrapper pulled into. The kubelet would start the static pods; here the test
/// starts etcd and kube-apiserver inside the namespace from the manifests kubeadm wrote, and the
/// phases that need a running kubelet are skipped. Everything of the wrapper after kubeadm then
/// runs for real: the audit patch, the admin.conf copies, flannel applied over the published API
/// port.
#[test]
fn init_through_the_real_runtime_and_kubeadm_inside_the_namespace() {
    const REGISTRY_IP: &str = "192.0.2.30";
    for name in ["kubeadm", "kubectl", "kube-apiserver", "etcd"] {
        if let Err(e) = k8s::binary(name) {
            panic!("{e:#}");
        }
    }
    let sandbox = Sandbox::start(&Options {
        name: None,
        addresses: vec![format!("{ADDRESS}/32"), format!("{REGISTRY_IP}/32")],
    })
    .expect("sandbox (needs root)");
    let node = Node {
        sandbox,
        path: podsec_tests::u7s::ADMIN_PATH.to_string(),
    };
    let share = node.sandbox.share();
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-commands");
    let standins = podsec_tests::u7s::standins();
    let bin = |name: &str| {
        std::fs::canonicalize(k8s::binary(name).unwrap())
            .unwrap()
            .display()
            .to_string()
    };
    std::fs::write(
        share.join("registry.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {REGISTRY_IP}:80\n",
            share.join("registry-data").display()
        ),
    )
    .unwrap();
    // The package as make install lays it out; the real kubeadm, kubectl, etcd and
    // kube-apiserver where u7s-admin can run them; CRI-O and the kubelet as recording
    // stand-ins; the account (so the test can give CRI-O's store a plain file system: overlay
    // storage cannot sit on the sandbox's overlayfs); registry.local on another address.
    node.root_ok(&format!(
        r#"set -e
{install} {build} "" /usr >/dev/null
install -m 0755 {standins}/crio /usr/bin/crio
install -m 0755 {standins}/kubelet /usr/bin/kubelet
install -m 0755 {kubeadm} /usr/bin/kubeadm
install -m 0755 {kubectl} /usr/local/bin/kubectl
install -m 0755 {apiserver} /usr/local/bin/kube-apiserver
install -m 0755 {etcd} /usr/local/bin/etcd
rm -f /etc/os-release
printf '%s\n' 'ID=altlinux' 'ALT_BRANCH_ID="c10f2"' 'CPE_NAME="cpe:/o:alt:spserver:10.2"' > /etc/os-release
echo '{REGISTRY_IP} registry.local' >> /etc/hosts
mkdir -p /etc/containers
printf '[[registry]]\nlocation = "registry.local"\ninsecure = true\n' > /etc/containers/registries.conf
useradd -r -m -d /var/lib/u7s-admin -s /bin/sh u7s-admin
store=/var/lib/u7s-admin/.local/share/usernetes/containers/storage
mkdir -p $store {share}/store
chown u7s-admin: {share}/store
mount --bind {share}/store $store
chown -R u7s-admin: /var/lib/u7s-admin/.local"#,
        build = podsec_tests::sandbox::target_dir().display(),
        install = install.display(),
        standins = standins.display(),
        share = share.display(),
        kubeadm = bin("kubeadm"),
        kubectl = bin("kubectl"),
        apiserver = bin("kube-apiserver"),
        etcd = bin("etcd"),
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
    node.push_tags(&standard_tags("c10f"));

    let rc = share.join("init.rc");
    // No --ignore-preflight-errors: every check passes here. Warnings only: SystemVerification
    // (the test machine's cgroup v1) and Hostname (node1 resolves nowhere).
    let script = format!(
        "export PATH={path}; kubeadm init --apiserver-advertise-address {ADDRESS} --node-name node1 \
         --skip-phases=wait-control-plane,upload-config/kubelet,mark-control-plane,kubelet-finalize \
         </dev/null; echo $? > {rc}",
        path = podsec_tests::u7s::ADMIN_PATH,
        rc = rc.display()
    );
    node.sandbox
        .spawn_daemon("init", &["sh", "-c", &script])
        .unwrap();
    let wait = |what: &str, seconds: u32, check: &dyn Fn() -> bool| {
        for _ in 0..seconds * 4 {
            if check() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!(
            "{what} within {seconds} s; the run so far:\n{}",
            node.sandbox.daemon_log("init")
        );
    };
    // The kubelet's part: once kubeadm has written the static pods, run etcd and the API server
    // inside the namespace with the manifests' command lines.
    wait("kubeadm wrote the static pods", 240, &|| {
        node.root("test -s /etc/kubernetes/manifests/kube-apiserver.yaml && test -s /etc/kubernetes/manifests/etcd.yaml")
            .status
            .success()
    });
    for (label, manifest, binary) in [
        ("etcd", "etcd", "/usr/local/bin/etcd"),
        (
            "kube-apiserver",
            "kube-apiserver",
            "/usr/local/bin/kube-apiserver",
        ),
    ] {
        let mut command = manifest_command(&node, manifest);
        command[0] = binary.to_string();
        let mut argv = vec![format!("{}/nsenter_u7s", podsec_tests::u7s::U7S_BIN)];
        argv.extend(command);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        node.sandbox.spawn_daemon(label, &argv).unwrap();
    }
    wait("the wrapper finished", 300, &|| rc.exists());
    let log = node.sandbox.daemon_log("init");
    assert_eq!(
        std::fs::read_to_string(&rc).unwrap().trim(),
        "0",
        "kubeadm init failed:\n{log}\n--- kube-apiserver:\n{}",
        node.sandbox
            .daemon_log("kube-apiserver")
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // kubeadm ran inside the namespace with our configuration, its output kept; its preflight
    // ran to the end without an error, the CRI answering.
    for line in [
        "[preflight] Running pre-flight checks",
        "[preflight] Pulling images required for setting up a Kubernetes cluster",
        "[certs] Generating \"ca\" certificate and key",
    ] {
        assert!(log.contains(line), "{line}: {log}");
    }
    assert!(!log.contains("[ERROR"), "{log}");
    assert!(
        !log.contains("Couldn't create the interface used for talking to the container runtime"),
        "{log}"
    );
    // Preflight's CRI check asked the runtime's status, and its image check found every image
    // kubeadm needs in CRI-O's store, pulled there by the wrapper: it asked for no pull.
    let calls: Vec<serde_json::Value> = node
        .root_ok("cat /var/lib/u7s-admin/standin/cri-calls.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(calls.iter().any(|c| c["method"] == "Status"), "{calls:?}");
    assert!(
        calls.iter().all(|c| c["method"] != "PullImage"),
        "{calls:?}"
    );
    for image in [
        "registry.local/c10f/kube-apiserver:v1.33.13",
        "registry.local/c10f/kube-controller-manager:v1.33.13",
        "registry.local/c10f/kube-scheduler:v1.33.13",
        "registry.local/c10f/kube-proxy:v1.33.13",
        "registry.local/c10f/coredns:v1.12.0",
        "registry.local/c10f/pause:3.10",
        "registry.local/c10f/etcd:3.5.24-0",
    ] {
        assert!(
            calls
                .iter()
                .any(|c| c["method"] == "ImageStatus" && c["image"] == image && c["found"] == true),
            "{image}: {calls:?}"
        );
    }
    assert!(
        log.contains("[upload-config] Storing the configuration"),
        "{log}"
    );
    assert!(log.contains("enable and start u7s.service"), "{log}");

    // The runtime got the node configuration the wrapper wrote: CRI-O's pause image, the
    // namespace as u7s-admin.
    let crio: serde_json::Value =
        serde_json::from_str(&node.root_ok("cat /var/lib/u7s-admin/standin/crio.json")).unwrap();
    assert_eq!(
        crio["config"]["crio"]["image"]["pause_image"],
        "registry.local/c10f/pause:3.10"
    );
    // Every image pulled into CRI-O's store through the namespace (skopeo, the node's policy).
    let images = node.root_ok(&format!(
        "cat {}/store/overlay-images/images.json",
        share.display()
    ));
    for image in [
        "registry.local/c10f/kube-apiserver:v1.33.13",
        "registry.local/c10f/etcd:3.5.24-0",
        "registry.local/c10f/pause:3.10",
        "registry.local/c10f/flannel:v0.26.7",
        "registry.local/c10f/flannel-cni-plugin:v1.7.1-flannel1",
    ] {
        assert!(images.contains(image), "{image} not in the store: {images}");
    }
    // The cluster got our configuration.
    let kubectl =
        |args: &str| node.root_ok(&format!("kubectl --kubeconfig /root/.kube/config {args}"));
    let cluster_config = kubectl(
        "-n kube-system get configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}'",
    );
    assert!(
        cluster_config.contains("dataDir: /var/lib/podsec/u7s/etcd"),
        "{cluster_config}"
    );
    let proxy =
        kubectl("-n kube-system get configmap kube-proxy -o 'jsonpath={.data.config\\.conf}'");
    assert!(proxy.contains("maxPerCore: 0"), "{proxy}");
    // flannel applied by the wrapper over the published API port.
    assert_eq!(
        kubectl("-n kube-flannel get daemonset kube-flannel-ds -o 'jsonpath={.spec.template.spec.containers[0].image}'").trim(),
        "registry.local/c10f/flannel:v0.26.7"
    );
    // The audit patch went onto the manifest kubeadm wrote; admin.conf copies owned right.
    let manifest = node.root_ok("cat /etc/kubernetes/manifests/kube-apiserver.yaml");
    assert!(
        manifest.contains("--audit-policy-file=/etc/kubernetes/audit/policy.yaml"),
        "{manifest}"
    );
    assert_eq!(
        node.stat("/etc/kubernetes/manifests/kube-apiserver.yaml"),
        "u7s-admin:u7s-admin 600"
    );
    assert_eq!(node.stat("/root/.kube/config"), "root:root 600");
    assert_eq!(
        node.stat("/var/lib/u7s-admin/.kube/config"),
        "u7s-admin:u7s-admin 600"
    );
    // Other subcommands go to the native kubeadm inside the namespace, arguments as given.
    let tokens = node.root_ok("kubeadm token list -o jsonpath='{.token}'");
    assert!(!tokens.trim().is_empty(), "no bootstrap token listed");
    node.root_ok("u7s-start-stop stop");
}
