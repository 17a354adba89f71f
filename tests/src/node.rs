//! A real rootless node in a sandbox, deployed the way the README tells an administrator:
//! the package installed as `make install` lays it out, podsec's trust chain (create-policy,
//! create-services, an image maker), the node's system images loaded and signed into
//! registry.local by podsec-load-sign-oci, then `kubeadm init` through the wrapper. What runs
//! is real: CRI-O, conmon, crun, the kubelet and every control-plane component, in the u7s
//! namespace of u7s-admin (rootlesskit, slirp4netns).
//!
//! Where the parts come from: Kubernetes from `scripts/k8s-bins`, CoreDNS, flanneld and pause
//! from `scripts/node-bins`, the images from `scripts/node-images` (all cached under
//! ~/.cache/podsec); CRI-O and pinns from `$PODSEC_CRIO`, else `/usr/bin/crio` (ALT installs it),
//! else `../shared/bin/` (built from CRI-O's sources, its README says how); conmon, runc and the
//! CNI plugins are Debian's packages. Debian 12's crun (1.8.1) is too old for CRI-O 1.33, so
//! `/usr/bin/crun`, the runtime CRI-O's configuration names, is the test-only shim
//! `tests/standins/oci-runtime-shim` (runc, minus what these machines cannot do).
//!
//! Two hosts: the test sandbox, which has no systemd, so the runtime starts its units directly
//! ([`RealNode::prepare`]), and a machine with a real systemd as PID 1
//! ([`RealNode::prepare_systemd`], `crate::systemd`), where the wrapper goes the production way:
//! lingering, u7s-admin's user manager, rootlesskit.service and kubelet.service, u7s.service.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::k8s;
use crate::sandbox::{Options, Sandbox, target_dir};
use crate::systemd::Machine;
use crate::u7s::{ADMIN_PATH, ok};

/// The node's own address (advertised, on tap0 inside the namespace).
pub const NODE_IP: &str = "192.0.2.10";
/// registry.local and sigstore.local: another address of the same host, so that the namespace
/// (which has NODE_IP on its own tap0) reaches them through slirp4netns.
pub const REGISTRY_IP: &str = "192.0.2.30";
pub const NODE_NAME: &str = "node1";
pub const MAKER: &str = "imagemaker";
pub const EMAIL: &str = "imagemaker@registry.local";
pub const PLATFORM: &str = "c10f";

/// The NodePort Service (port 31080 of the node) of the node tests' `app: web` workloads.
pub const WEB_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 31080}]
"#;
const USER: &str = "u7s-admin";
const SUBIDS: &str = "200000-265535";
const STORE: &str = "/var/lib/u7s-admin/.local/share/usernetes/containers";

/// The value of a step a node test cannot go on without; its error, whole, as the panic.
pub fn panic_on<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e:#}"))
}

/// The directory of the third-party binaries no registry serves here (test infrastructure).
pub fn shared_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bin")
}

/// CRI-O: `$PODSEC_CRIO`, else `/usr/bin/crio`, else `../shared/bin/crio`; pinns beside it
/// (or `$PODSEC_PINNS`).
pub fn crio() -> Result<(PathBuf, PathBuf)> {
    let candidates: Vec<PathBuf> = std::env::var_os("PODSEC_CRIO")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/crio"), shared_bin().join("crio")])
        .collect();
    let crio = candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no CRI-O: set PODSEC_CRIO, install /usr/bin/crio, or provide ../shared/bin/crio (looked at {candidates:?})"
            )
        })?;
    let pinns = std::env::var_os("PODSEC_PINNS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crio.with_file_name("pinns"));
    if !pinns.is_file() {
        bail!("no pinns next to {} (set PODSEC_PINNS)", crio.display());
    }
    Ok((crio, pinns))
}

/// The signed-to-be system images: `scripts/node-images` builds the archive once (cached) and
/// prints its path last.
pub fn images_archive() -> Result<PathBuf> {
    images_archive_of(k8s::VERSION)
}

/// The archive of the system images of Kubernetes `version` (`scripts/node-images VERSION`).
pub fn images_archive_of(version: &str) -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/node-images");
    let out = Command::new(&script)
        .arg(version)
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let path = line
        .strip_prefix("node-images: ")
        .and_then(|rest| rest.split_whitespace().next())
        .map(PathBuf::from)
        .with_context(|| format!("unexpected output of node-images: {stdout}"))?;
    if !path.is_file() {
        bail!("node-images printed {}, which is not there", path.display());
    }
    Ok(path)
}

/// The test sandbox of a node: the node's address and registry.local's.
fn node_sandbox() -> Result<Sandbox> {
    Sandbox::start(&Options {
        name: Some("node".into()),
        addresses: vec![format!("{NODE_IP}/32"), format!("{REGISTRY_IP}/32")],
    })
}

/// The host a node runs on.
pub enum NodeHost {
    /// The test sandbox: no systemd, the runtime starts its units directly.
    Sandbox(Sandbox),
    /// systemd as PID 1: the production launch path.
    Systemd(Machine),
}

impl NodeHost {
    /// A directory shared with the host at the same path.
    pub fn share(&self) -> PathBuf {
        match self {
            NodeHost::Sandbox(sandbox) => sandbox.share(),
            NodeHost::Systemd(machine) => machine.share(),
        }
    }

    /// `sh -c script` as root, or as `user` in a login-like environment (HOME, the user's
    /// runtime directory), with the admin's PATH; `stdin` fed to it.
    pub fn sh(&self, user: Option<&str>, script: &str, stdin: Option<&[u8]>) -> Output {
        match self {
            NodeHost::Sandbox(sandbox) => {
                let mut command = sandbox
                    .command("sh")
                    .args(["-c", script])
                    .env("PATH", ADMIN_PATH);
                if let Some(user) = user {
                    command = command.user(user);
                }
                if let Some(bytes) = stdin {
                    command = command.stdin(bytes);
                }
                command.output()
            }
            NodeHost::Systemd(machine) => {
                let script = format!("export PATH={ADMIN_PATH}\n{script}");
                let mut command = match user {
                    // runuser -l opens a PAM session (pam_systemd), as a login would.
                    Some(user) => {
                        let mut c = machine.command("runuser");
                        c.args(["-l", user, "-s", "/bin/sh", "-c", &script]);
                        c
                    }
                    None => {
                        let mut c = machine.command("sh");
                        c.args(["-c", &script]);
                        c
                    }
                };
                run_with_stdin(&mut command, stdin)
            }
        }
    }

    /// Starts `script` as root in the background; it must write its own output and status.
    fn spawn(&self, label: &str, script: &str) -> Result<()> {
        match self {
            NodeHost::Sandbox(sandbox) => sandbox.spawn_daemon(label, &["sh", "-c", script]),
            NodeHost::Systemd(machine) => {
                let mut child = machine
                    .command("sh")
                    .args(["-c", script])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .with_context(|| format!("cannot start {label}"))?;
                // Reaped in the background; run_long waits on the status file.
                std::thread::spawn(move || child.wait());
                Ok(())
            }
        }
    }
}

fn run_with_stdin(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("cannot run nsenter");
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bytes)
            .expect("write stdin");
    }
    child.wait_with_output().expect("nsenter")
}

/// The offline install's first half, on the archiving host: a mirror of the ALT registry at
/// MIRROR holding the prebuilt images (`share/amd64.tar.xz`), then `podsec-k8s-save-oci` from
/// it with the busybox workload as U7S_ARCHIMAGES; its archive replaces the prebuilt one.
fn save_oci_script(share: &Path) -> String {
    format!(
        r#"set -e
work=$(mktemp -d /root/mirror.XXXXXX)
drop_in=/etc/containers/registries.conf.d/90-podsec-test-mirror.conf
trap 'kill $registry 2>/dev/null || true; rm -rf $work $drop_in' EXIT
mkdir $work/layout
xz -dc {share}/amd64.tar.xz | tar -C $work/layout -xf -
cat > $work/registry.yml <<EOF
version: 0.1
storage: {{filesystem: {{rootdirectory: $work/storage}}}}
http: {{addr: {MIRROR}}}
EOF
docker-registry serve $work/registry.yml >$work/registry.log 2>&1 &
registry=$!
for i in $(seq 100); do curl -sf http://{MIRROR}/v2/ >/dev/null && break; sleep 0.1; done
# Plain HTTP to the mirror, for skopeo and podsec alike: a registries.conf drop-in.
mkdir -p /etc/containers/registries.conf.d
cat > $drop_in <<EOF
[[registry]]
location = "{MIRROR}"
insecure = true
EOF
echo '{{"default":[{{"type":"insecureAcceptAnything"}}]}}' > $work/policy.json
for name in $(jq -r '.manifests[].annotations["org.opencontainers.image.ref.name"]' $work/layout/amd64/index.json); do
  skopeo --policy $work/policy.json copy --quiet oci:$work/layout/amd64:$name docker://{MIRROR}/$name
done
U7S_ALTREGISTRY={MIRROR} U7S_KUBEVERSION=v1.33.13 U7S_ARCHIMAGES={PLATFORM}/busybox:1.35 \
  podsec-k8s-save-oci $work/k8s amd64 {PLATFORM} 2>&1
mv $work/k8s/amd64.tar.xz {share}/amd64.tar.xz
echo "podsec-k8s-save-oci: done"
"#,
        share = share.display()
    )
}

/// A node's part of the trust chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The registry and signature server (REGISTRY_IP), with the image maker and the signed
    /// system images.
    Server,
    /// A client of the server's registry, keys and policy.
    Client,
}

/// Where the system images registry.local is loaded with come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Images {
    /// The archive scripts/node-images builds (in podsec-k8s-save-oci's format).
    Prebuilt,
    /// An archive `podsec-k8s-save-oci` makes on this host from a mirror of the ALT registry
    /// (a docker-registry on 127.0.0.1:5001 fed with the prebuilt images, a stand-in for
    /// registry.altlinux.org, which is not reachable here): the offline install.
    SavedByK8sSaveOci,
}

/// The mirror's address, and what `podsec-k8s-save-oci` is told beside it.
pub const MIRROR: &str = "127.0.0.1:5001";

/// A host with podsec, the real node components and the signed system images.
pub struct RealNode {
    pub host: NodeHost,
    pub uid: u32,
}

impl RealNode {
    /// Everything up to (not including) `kubeadm init`, in the test sandbox.
    pub fn prepare() -> Result<RealNode> {
        RealNode::provision(NodeHost::Sandbox(node_sandbox()?), Trust::Server)
    }

    /// Everything up to (not including) `kubeadm init`, on a machine with systemd as PID 1.
    pub fn prepare_systemd() -> Result<RealNode> {
        let machine = Machine::boot()?;
        machine.add_address(&format!("{NODE_IP}/32"));
        machine.add_address(&format!("{REGISTRY_IP}/32"));
        // As on ALT, where slirp4netns runs as an ordinary user (here the device is 0600).
        machine.sh_ok("chmod 0666 /dev/net/tun");
        RealNode::provision(NodeHost::Systemd(machine), Trust::Server)
    }

    /// The sandbox, when the node runs in one.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        match &self.host {
            NodeHost::Sandbox(sandbox) => Some(sandbox),
            NodeHost::Systemd(_) => None,
        }
    }

    /// The machine, when the node runs under systemd.
    pub fn machine(&self) -> Option<&Machine> {
        match &self.host {
            NodeHost::Systemd(machine) => Some(machine),
            NodeHost::Sandbox(_) => None,
        }
    }

    /// Everything up to `kubeadm init`, in the test sandbox, with registry.local loaded from
    /// the archive `podsec-k8s-save-oci` made (the offline install).
    pub fn prepare_offline() -> Result<RealNode> {
        RealNode::provision_with(
            NodeHost::Sandbox(node_sandbox()?),
            Trust::Server,
            Images::SavedByK8sSaveOci,
        )
    }

    /// The node components and packages on `host`, and its part of the trust chain.
    pub fn provision(host: NodeHost, trust: Trust) -> Result<RealNode> {
        RealNode::provision_with(host, trust, Images::Prebuilt)
    }

    /// Everything up to `kubeadm init` in the test sandbox, with kubeadm, kubelet, kubectl and
    /// the system images of Kubernetes `version` (not the pinned one: the upgrade test's).
    pub fn prepare_at(version: &str) -> Result<RealNode> {
        RealNode::provision_version(
            NodeHost::Sandbox(node_sandbox()?),
            Trust::Server,
            Images::Prebuilt,
            version,
        )
    }

    /// As `provision`, registry.local loaded from `images` on a server.
    pub fn provision_with(host: NodeHost, trust: Trust, images: Images) -> Result<RealNode> {
        RealNode::provision_version(host, trust, images, k8s::VERSION)
    }

    fn provision_version(
        host: NodeHost,
        trust: Trust,
        images: Images,
        version: &str,
    ) -> Result<RealNode> {
        let (crio, pinns) = crio()?;
        let mut bins = Vec::new();
        for name in ["kubeadm", "kubectl", "kubelet"] {
            bins.push((name, std::fs::canonicalize(k8s::binary_of(version, name)?)?));
        }
        let archive = images_archive_of(version)?;
        let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-commands");
        let share = host.share();
        std::fs::copy(&archive, share.join("amd64.tar.xz"))?;
        let reload = match host {
            NodeHost::Systemd(_) => "systemctl daemon-reload",
            NodeHost::Sandbox(_) => "true",
        };
        let mut script = format!(
            r#"set -e
chmod 0755 {share}; chmod 0644 {share}/amd64.tar.xz
{install} {build} "" /usr >/dev/null
{reload}
install -m 0755 {crio} /usr/bin/crio
install -m 0755 {pinns} /usr/bin/pinns
# This machine's crun is too old for CRI-O 1.33: the named test-only shim runs runc in its place.
install -m 0755 {shim} /usr/bin/crun
# As the package's %pre leaves it: the account with its subordinate ids.
useradd -r -m -d /var/lib/{USER} -s /bin/sh {USER}
usermod --add-subuids {SUBIDS} --add-subgids {SUBIDS} {USER}
# This test machine's kernel has no /lib/modules (every ALT host has): kube-proxy mounts it.
mkdir -p /lib/modules
# CRI-O's overlay store cannot sit on the sandbox's own overlayfs: a tmpfs of its own.
mkdir -p {STORE}
mount -t tmpfs -o size=6g,mode=0700,uid=$(id -u {USER}),gid=$(id -g {USER}) tmpfs {STORE}
chown -R {USER}: /var/lib/{USER}/.local
"#,
            share = share.display(),
            install = install.display(),
            build = target_dir().display(),
            crio = crio.display(),
            pinns = pinns.display(),
            shim = crate::u7s::standins().join("oci-runtime-shim").display(),
        );
        for (name, path) in &bins {
            script.push_str(&format!(
                "install -m 0755 {} /usr/bin/{name}\n",
                path.display()
            ));
        }
        script.push_str(&format!("id -u {USER}\n"));
        let uid: u32 = ok(&script, host.sh(None, &script, None)).trim().parse()?;
        let node = RealNode { host, uid };
        if trust == Trust::Client {
            // "On every other node": the keys and policy.json fetched from sigstore.local.
            node.root_ok(&format!("podsec-create-policy {REGISTRY_IP} >/dev/null"));
            return Ok(node);
        }
        if images == Images::SavedByK8sSaveOci {
            let saved = ok("podsec-k8s-save-oci", node.root(&save_oci_script(&share)));
            if !saved.contains("podsec-k8s-save-oci: done") {
                bail!("podsec-k8s-save-oci: {saved}");
            }
        }
        // The trust chain on this host, as the README's first section tells it: the policy,
        // registry.local and sigstore.local, an image maker for the platform's path.
        node.root_ok(&format!(
            "podsec-create-policy {REGISTRY_IP} >/dev/null && podsec-create-services >/dev/null && \
             podsec-create-imagemakeruser --batch --email {EMAIL} {MAKER}@registry.local/{PLATFORM} >/dev/null"
        ));
        let out = node.as_user(
            MAKER,
            &format!(
                "podsec-load-sign-oci {}/amd64.tar.xz amd64 {EMAIL} registry.local/{PLATFORM}",
                share.display()
            ),
        );
        let pushed = ok("podsec-load-sign-oci", out);
        if !pushed.contains("10 of 10 images pushed and signed") {
            bail!("load-sign-oci: {pushed}");
        }
        Ok(node)
    }

    /// `sh -c script` as root with the admin's PATH (the u7s helpers first).
    pub fn root(&self, script: &str) -> Output {
        self.host.sh(None, script, None)
    }

    pub fn root_ok(&self, script: &str) -> String {
        ok(script, self.root(script))
    }

    pub fn as_user(&self, user: &str, script: &str) -> Output {
        self.host.sh(Some(user), script, None)
    }

    /// Runs `script` as root in the background (log `<label>.log`) and waits for its exit
    /// status, at most `timeout`; returns the status and the log.
    pub fn run_long(&self, label: &str, script: &str, timeout: Duration) -> (i32, String) {
        let share = self.host.share();
        let rc = share.join(format!("{label}.rc"));
        let log = share.join(format!("{label}.log"));
        let _ = std::fs::remove_file(&rc);
        let wrapped = format!(
            "export PATH={ADMIN_PATH}; {{ {script}; }} </dev/null >{log} 2>&1; echo $? > {rc}",
            log = log.display(),
            rc = rc.display()
        );
        self.host.spawn(label, &wrapped).expect("spawn");
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + timeout;
        while !rc.exists() {
            if Instant::now() > deadline {
                return (-1, read_log());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        std::thread::sleep(Duration::from_millis(100));
        let status = std::fs::read_to_string(&rc)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(-1);
        (status, read_log())
    }

    /// kubectl as root with the admin kubeconfig the wrapper copied.
    pub fn kubectl(&self, args: &str) -> Output {
        self.root(&format!("kubectl --kubeconfig /root/.kube/config {args}"))
    }

    pub fn kubectl_ok(&self, args: &str) -> String {
        ok(&format!("kubectl {args}"), self.kubectl(args))
    }

    /// Polls `check` every second until it gives `Some`, at most `timeout`; the error names
    /// `what` and carries `diagnose()`'s text.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("{what} within {timeout:?}\n{}", self.diagnose());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// What an administrator would look at when the node misbehaves.
    pub fn diagnose(&self) -> String {
        let script = format!(
            "kubectl --kubeconfig /root/.kube/config get nodes,pods -A -o wide 2>&1 | tail -n 30; \
             kubectl --kubeconfig /root/.kube/config get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 25; \
             for f in /var/log/podsec/u7s-*.log /var/lib/{USER}/.local/share/usernetes/log/*.log; do \
               [ -f \"$f\" ] && {{ echo \"--- $f\"; tail -n 25 \"$f\"; }}; done; \
             [ -d /run/systemd/system ] && {{ systemctl --no-pager --failed; \
               journalctl --no-pager -q -n 60 _UID={uid} + SYSLOG_IDENTIFIER=u7s-start-stop; }}; true",
            uid = self.uid
        );
        String::from_utf8_lossy(&self.root(&script).stdout).into_owned()
    }

    /// `kubeadm init` through the wrapper, as the README tells it (no skipped phase, no ignored
    /// preflight error); its exit status and output. The host is Debian, whose os-release names
    /// no ALT platform: `U7S_PLATFORM` names it, as an administrator of such a host would.
    pub fn init(&self, extra: &str) -> (i32, String) {
        self.run_long(
            "init",
            &format!(
                "U7S_PLATFORM={PLATFORM} kubeadm init --apiserver-advertise-address {NODE_IP} --node-name {NODE_NAME} {extra}"
            ),
            Duration::from_secs(900),
        )
    }

    /// `kubeadm join` through the wrapper with `command` (from `kubeadm token create
    /// --print-join-command`) as node `name`; its exit status and output.
    pub fn join(&self, command: &str, name: &str) -> (i32, String) {
        self.run_long(
            "join",
            &format!("U7S_PLATFORM={PLATFORM} {command} --node-name {name}"),
            Duration::from_secs(900),
        )
    }

    /// Waits until the cluster reports node `name` Ready.
    pub fn wait_node_ready(&self, name: &str, timeout: Duration) -> Result<()> {
        self.wait_for(&format!("{name} Ready"), timeout, || {
            let out = self.kubectl(&format!(
                "get node {name} -o 'jsonpath={{.status.conditions[?(@.type==\"Ready\")].status}}'"
            ));
            (String::from_utf8_lossy(&out.stdout).trim() == "True").then_some(())
        })
    }

    /// Waits until the node is Ready and every system pod (every replica) runs with its
    /// containers ready.
    pub fn wait_cluster_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_node_ready(NODE_NAME, timeout)?;
        self.wait_for("every system pod running and ready", timeout, || {
            let pods = self.pods().ok()?;
            // Every replica: CoreDNS has two, and one ready is not "running".
            let all_there = SYSTEM_PODS.iter().all(|prefix| {
                let matching: Vec<&Pod> =
                    pods.iter().filter(|p| p.name.starts_with(prefix)).collect();
                !matching.is_empty() && matching.iter().all(|p| p.ready())
            });
            all_there.then_some(())
        })
    }

    /// Every pod of the cluster.
    pub fn pods(&self) -> Result<Vec<Pod>> {
        let out = self.kubectl("get pods -A -o json");
        if !out.status.success() {
            bail!("kubectl get pods: {}", String::from_utf8_lossy(&out.stderr));
        }
        let list: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok(list["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(Pod::from_json)
            .collect())
    }

    /// The messages of the events about the object named `name`, space-separated.
    pub fn event_messages(&self, name: &str) -> String {
        let out = self.kubectl(&format!(
            "get events --field-selector involvedObject.name={name} -o jsonpath={{.items[*].message}}"
        ));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until CRI-O has refused the image of [`UNSIGNED_POD`] for its missing signature.
    pub fn wait_unsigned_refused(&self) -> Result<()> {
        let refusal = self.wait_for(
            "the unsigned image refused",
            Duration::from_secs(120),
            || {
                let text = self.event_messages("unsigned");
                text.contains("signature").then_some(text)
            },
        )?;
        if !refusal.contains("A signature was required, but no signature exists") {
            bail!("the unsigned image refused for another reason: {refusal}");
        }
        Ok(())
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn kubectl_apply(&self, yaml: &str) -> String {
        let out = self.host.sh(
            None,
            "kubectl --kubeconfig /root/.kube/config apply -f -",
            Some(yaml.as_bytes()),
        );
        ok(&format!("kubectl apply -f - <<{yaml}"), out)
    }

    /// After `u7s-start-stop stop`: no process of u7s-admin or its subordinate ids, and no
    /// port of the node published on the host.
    pub fn assert_nothing_left(&self) {
        let left: Vec<(String, String)> = self
            .process_owners()
            .into_iter()
            .filter(|(user, _)| user == USER || user.parse::<u32>().is_ok_and(|uid| uid >= 200_000))
            .collect();
        assert!(left.is_empty(), "left running: {left:?}");
        let listening = self.root_ok("ss -Htlnu");
        for port in [":6443 ", ":10250 ", ":2379 ", ":8472 ", ":31080 "] {
            assert!(
                !listening.contains(port),
                "{port} still published: {listening}"
            );
        }
    }

    /// Pushes the busybox workload, unsigned, as registry.local/<platform>/unsigned:1 (anyone
    /// can push to the registry; only signatures decide what runs).
    pub fn push_unsigned(&self) {
        self.root_ok(&format!(
            "set -e; t=$(mktemp -d); tar -C $t -xJf {share}/amd64.tar.xz; \
             echo '{{\"default\":[{{\"type\":\"insecureAcceptAnything\"}}]}}' > $t/accept.json; \
             skopeo --policy $t/accept.json copy -q --dest-tls-verify=false \
               oci:$t/amd64:{PLATFORM}/busybox:1.35 docker://registry.local/{PLATFORM}/unsigned:1; rm -rf $t",
            share = self.host.share().display()
        ));
    }

    /// Pushes the busybox workload as registry.local/<platform>/foreign:1 with a valid
    /// signature, in the signature store where clients look, made by a key nobody trusts.
    pub fn push_foreign_signed(&self) {
        self.root_ok(&format!(
            "set -e; t=$(mktemp -d); tar -C $t -xJf {share}/amd64.tar.xz; \
             echo '{{\"default\":[{{\"type\":\"insecureAcceptAnything\"}}]}}' > $t/accept.json; \
             skopeo --policy $t/accept.json copy -q --dest-tls-verify=false \
               oci:$t/amd64:{PLATFORM}/busybox:1.35 docker://registry.local/{PLATFORM}/foreign:1; \
             skopeo --policy $t/accept.json copy -q --src-tls-verify=false \
               docker://registry.local/{PLATFORM}/foreign:1 dir:$t/pulled; \
             digest=$(skopeo manifest-digest $t/pulled/manifest.json); \
             dir=/var/sigstore/sigstore/{PLATFORM}/foreign@sha256=${{digest#sha256:}}; mkdir -p $dir; \
             export GNUPGHOME=$t/gnupg; mkdir -m 0700 $GNUPGHOME; \
             gpg --batch --passphrase '' --quick-gen-key 'Intruder <intruder@example.com>' rsa3072 sign never 2>/dev/null; \
             skopeo standalone-sign $t/pulled/manifest.json registry.local/{PLATFORM}/foreign:1 \
               intruder@example.com -o $dir/signature-1; \
             chmod -R a+rX $dir; rm -rf $t",
            share = self.host.share().display()
        ));
    }

    /// Every process named one of `names` runs, and as u7s-admin (root inside the namespace)
    /// or one of its subordinate ids: none as root on the host.
    pub fn assert_run_by_u7s_admin(&self, names: &[&str]) {
        let owners = self.process_owners();
        for name in names {
            let found: Vec<&(String, String)> = owners.iter().filter(|(_, c)| c == name).collect();
            assert!(!found.is_empty(), "no {name} process: {owners:?}");
            for (user, _) in found {
                let subordinate = user
                    .parse::<u32>()
                    .is_ok_and(|uid| (200_000..265_536).contains(&uid));
                assert!(user == USER || subordinate, "{name} runs as {user}");
            }
        }
    }

    /// The host owners of the processes named `names` (`ps -eo user,comm`).
    pub fn process_owners(&self) -> Vec<(String, String)> {
        self.root_ok("ps -e -o user:20=,comm=")
            .lines()
            .filter_map(|line| {
                let (user, name) = line.trim().split_once(char::is_whitespace)?;
                Some((user.to_string(), name.trim().to_string()))
            })
            .collect()
    }
}

/// A pod of an image nobody signed (see [`RealNode::push_unsigned`]).
pub const UNSIGNED_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: unsigned
spec:
  containers:
  - name: unsigned
    image: registry.local/c10f/unsigned:1
    command: ["/bin/sleep", "3600"]
"#;

/// A pod of an image signed by a key the node's policy does not trust (see
/// [`RealNode::push_foreign_signed`]).
pub const FOREIGN_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: foreign
spec:
  containers:
  - name: foreign
    image: registry.local/c10f/foreign:1
    command: ["/bin/sleep", "3600"]
"#;

/// The system pods of a one-node cluster, by name prefix.
pub const SYSTEM_PODS: &[&str] = &[
    "etcd-node1",
    "kube-apiserver-node1",
    "kube-controller-manager-node1",
    "kube-scheduler-node1",
    "kube-proxy-",
    "coredns-",
    "kube-flannel-ds-",
];

/// What a test needs of a pod.
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub images: Vec<String>,
    /// Every container's `ready`.
    pub containers_ready: Vec<bool>,
}

impl Pod {
    fn from_json(item: &serde_json::Value) -> Pod {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let statuses = item["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Pod {
            namespace: text(&item["metadata"]["namespace"]),
            name: text(&item["metadata"]["name"]),
            phase: text(&item["status"]["phase"]),
            images: item["spec"]["containers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| text(&c["image"]))
                .collect(),
            containers_ready: statuses
                .iter()
                .map(|s| s["ready"].as_bool() == Some(true))
                .collect(),
        }
    }

    pub fn ready(&self) -> bool {
        self.phase == "Running"
            && !self.containers_ready.is_empty()
            && self.containers_ready.iter().all(|r| *r)
    }
}
