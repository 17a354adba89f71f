//! A real Kubernetes control plane inside a [`Sandbox`]: etcd, kube-apiserver and
//! kube-controller-manager of the version `scripts/k8s-bins` builds from the Go module proxy,
//! on loopback, with certificates made by openssl here. No kubelet: what runs is what podsec's
//! RBAC commands, the audit-log monitor and kubeadm's file-writing phases need.
//!
//! - kube-apiserver: `--authorization-mode=Node,RBAC`, client certificates from the test CA,
//!   service-account keys, a serving certificate for 127.0.0.1, and an audit policy writing
//!   [`AUDIT_LOG`] (the path podsec-inotify-check-kubeapi reads);
//! - kube-controller-manager: the CSR approving/signing/cleaning controllers signing with the
//!   cluster CA (so approved `kubernetes.io/kube-apiserver-client` CSRs get certificates) and
//!   the aggregation controller (the `view`/`edit`/`admin` roles get their rules);
//! - an admin kubeconfig (client certificate in group `system:masters`) at
//!   /etc/kubernetes/admin.conf and /root/.kube/config inside the sandbox.
//!
//! Daemons are started with [`Sandbox::spawn_daemon`]: they die with the sandbox.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::sandbox::{Sandbox, SandboxCommand};

/// The pinned Kubernetes version (keep in step with `scripts/k8s-bins`).
pub const VERSION: &str = "v1.33.13";
/// Where kube-apiserver writes its audit log inside the sandbox.
pub const AUDIT_LOG: &str = "/etc/kubernetes/audit/audit.log";
/// Where its audit policy is inside the sandbox.
pub const AUDIT_POLICY: &str = "/etc/kubernetes/audit/policy.yaml";
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
pub const APISERVER_PORT: u16 = 6443;

/// Audit everything but health probes at Metadata level (tests may pass podsec's own policy).
pub const DEFAULT_AUDIT_POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ['/healthz*', '/readyz*', '/livez*', '/version', '/metrics']
- level: Metadata
";

/// `${PODSEC_K8S_CACHE:-$HOME/.cache/podsec/k8s}/<VERSION>/bin`.
pub fn bin_dir() -> PathBuf {
    bin_dir_of(VERSION)
}

/// The same for another version `scripts/k8s-bins VERSION ...` built (the upgrade test's).
pub fn bin_dir_of(version: &str) -> PathBuf {
    let base = std::env::var_os("PODSEC_K8S_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/podsec/k8s")
        });
    base.join(version).join("bin")
}

/// A built component (`kube-apiserver`, `kube-controller-manager`, `kubeadm`, `kubectl`,
/// `etcd`); an error telling to run scripts/k8s-bins when it is missing.
pub fn binary(name: &str) -> Result<PathBuf> {
    binary_of(VERSION, name)
}

/// A built component of `version`.
pub fn binary_of(version: &str, name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = bin_dir_of(version).join(name);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(path),
        _ => bail!(
            "{} is missing: run scripts/k8s-bins first (it builds Kubernetes {version} once and caches it; `make test` does)",
            path.display()
        ),
    }
}

/// Panics naming the first control-plane binary that is missing: a test fails, never skips,
/// when `scripts/k8s-bins` has not run.
pub fn require_control_plane_binaries() {
    for name in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kubectl",
    ] {
        if let Err(e) = binary(name) {
            panic!("{e:#}");
        }
    }
}

/// How to start a control plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// Start kube-controller-manager (without it CSRs are never signed).
    pub controller_manager: bool,
    /// The audit policy (YAML); [`DEFAULT_AUDIT_POLICY`] when None.
    pub audit_policy: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            controller_manager: true,
            audit_policy: None,
        }
    }
}

/// A running control plane; its files are in the sandbox's share directory (same path inside
/// and outside).
pub struct ControlPlane {
    /// PKI, kubeconfigs and logs of the control plane.
    pub dir: PathBuf,
    /// `https://127.0.0.1:6443`
    pub server: String,
}

/// Runs a host-side tool with arguments as arguments; fails with its stderr.
fn run(program: &str, args: &[&str], dir: &Path) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

const EC_KEY: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// A self-signed CA `<name>.crt`/`<name>.key` in `dir`.
pub fn make_ca(dir: &Path, name: &str, cn: &str) -> Result<()> {
    let (crt, key, subj) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("/CN={cn}"),
    );
    let mut args = vec!["req", "-x509", "-nodes", "-days", "7"];
    args.extend(EC_KEY);
    args.extend([
        "-keyout",
        &key,
        "-out",
        &crt,
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
    run("openssl", &args, dir)
}

/// A certificate `<name>.crt`/`<name>.key` signed by the CA `<ca>.crt`/`<ca>.key` in `dir`;
/// `subject` like `/CN=kubernetes-admin/O=system:masters`, `extensions` in openssl's
/// extension-file syntax.
pub fn make_cert(dir: &Path, ca: &str, name: &str, subject: &str, extensions: &str) -> Result<()> {
    let (crt, key, csr, ext) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), extensions)?;
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    run("openssl", &args, dir)?;
    let (ca_crt, ca_key, serial) = (
        format!("{ca}.crt"),
        format!("{ca}.key"),
        format!("{ca}.srl"),
    );
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAserial",
            &serial,
            "-CAcreateserial",
            "-days",
            "7",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
        dir,
    )
}

const CLIENT_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
const SERVER_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n\
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,\
DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n";

/// A kubeconfig (JSON, which every kubeconfig reader takes) with embedded PEM data.
pub fn kubeconfig(
    server: &str,
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
    user: &str,
) -> String {
    let b64 = |data: &[u8]| base64_encode(data);
    serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {
            "server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": format!("{user}@kubernetes"),
            "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": format!("{user}@kubernetes"),
    }))
    .expect("kubeconfig JSON")
}

/// Standard base64 (the test crate needs no codec crate for this).
pub fn base64_encode(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Waits inside the sandbox until `url` answers (curl with the given extra arguments), up to
/// `seconds`; the loop is a fixed script, the URL and files are its arguments.
fn wait_for_url(sandbox: &Sandbox, what: &str, seconds: u32, curl_args: &[&str]) -> Result<bool> {
    let tries = (seconds * 4).to_string();
    let out = sandbox
        .command("sh")
        .args([
            "-c",
            "n=$1; shift; i=0; while [ $i -lt $n ]; do \
             curl -sf -o /dev/null --max-time 5 \"$@\" && exit 0; i=$((i+1)); sleep 0.25; done; exit 1",
            what,
            &tries,
        ])
        .args(curl_args)
        .output();
    Ok(out.status.success())
}

impl ControlPlane {
    /// Generates the PKI, starts etcd, kube-apiserver and (optionally) kube-controller-manager,
    /// waits until the API server is ready, and installs the admin kubeconfig.
    pub fn start(sandbox: &Sandbox, options: &Options) -> Result<ControlPlane> {
        let etcd = binary("etcd")?;
        let apiserver = binary("kube-apiserver")?;
        let kcm = binary("kube-controller-manager")?;
        let dir = sandbox.share().join("k8s");
        std::fs::create_dir_all(&dir)?;
        let server = format!("https://127.0.0.1:{APISERVER_PORT}");

        make_ca(&dir, "ca", "podsec-test-kubernetes-ca")?;
        make_cert(&dir, "ca", "apiserver", "/CN=kube-apiserver", SERVER_EXT)?;
        make_cert(
            &dir,
            "ca",
            "admin",
            "/CN=kubernetes-admin/O=system:masters",
            CLIENT_EXT,
        )?;
        make_cert(
            &dir,
            "ca",
            "controller-manager",
            "/CN=system:kube-controller-manager",
            CLIENT_EXT,
        )?;
        run(
            "openssl",
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "sa.key",
            ],
            &dir,
        )?;
        run(
            "openssl",
            &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
            &dir,
        )?;
        let read = |name: &str| std::fs::read(dir.join(name));
        let ca = read("ca.crt")?;
        let admin = kubeconfig(
            &server,
            &ca,
            &read("admin.crt")?,
            &read("admin.key")?,
            "kubernetes-admin",
        );
        std::fs::write(dir.join("admin.conf"), &admin)?;
        let kcm_conf = kubeconfig(
            &server,
            &ca,
            &read("controller-manager.crt")?,
            &read("controller-manager.key")?,
            "system:kube-controller-manager",
        );
        std::fs::write(dir.join("controller-manager.conf"), kcm_conf)?;
        let policy = options
            .audit_policy
            .as_deref()
            .unwrap_or(DEFAULT_AUDIT_POLICY);
        std::fs::write(dir.join("audit-policy.yaml"), policy)?;

        // Inside: the audit policy and the admin kubeconfig where podsec and kubectl look.
        let d = |name: &str| dir.join(name).display().to_string();
        let install = sandbox
            .command("sh")
            .args([
                "-c",
                "set -e; install -D -m 0600 \"$1\" \"$2\"; install -D -m 0600 \"$3\" \"$4\"; \
                 install -D -m 0600 \"$3\" /root/.kube/config; mkdir -p \"$(dirname \"$5\")\"",
                "install",
                &d("audit-policy.yaml"),
                AUDIT_POLICY,
                &d("admin.conf"),
                ADMIN_CONF,
                AUDIT_LOG,
            ])
            .output();
        if !install.status.success() {
            bail!(
                "installing the control plane files: {}",
                String::from_utf8_lossy(&install.stderr)
            );
        }

        sandbox.spawn_daemon(
            "etcd",
            &[
                &etcd.display().to_string(),
                "--name=podsec-test",
                "--data-dir=/var/lib/podsec-test-etcd",
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=podsec-test=http://127.0.0.1:2380",
                "--unsafe-no-fsync",
            ],
        )?;
        if !wait_for_url(sandbox, "etcd", 60, &["http://127.0.0.1:2379/health"])? {
            bail!("etcd did not start:\n{}", tail(&sandbox.daemon_log("etcd")));
        }

        sandbox.spawn_daemon(
            "kube-apiserver",
            &[
                &apiserver.display().to_string(),
                "--advertise-address=127.0.0.1",
                "--bind-address=127.0.0.1",
                &format!("--secure-port={APISERVER_PORT}"),
                "--etcd-servers=http://127.0.0.1:2379",
                &format!("--tls-cert-file={}", d("apiserver.crt")),
                &format!("--tls-private-key-file={}", d("apiserver.key")),
                &format!("--client-ca-file={}", d("ca.crt")),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                &format!("--service-account-key-file={}", d("sa.pub")),
                &format!("--service-account-signing-key-file={}", d("sa.key")),
                "--service-cluster-ip-range=10.96.0.0/12",
                "--authorization-mode=Node,RBAC",
                &format!("--audit-policy-file={AUDIT_POLICY}"),
                &format!("--audit-log-path={AUDIT_LOG}"),
                "--audit-log-maxsize=500",
                "--audit-log-maxbackup=3",
                "--enable-priority-and-fairness=false",
                "--endpoint-reconciler-type=none",
            ],
        )?;
        let ready = wait_for_url(
            sandbox,
            "kube-apiserver",
            180,
            &[
                "--cacert",
                &d("ca.crt"),
                "--cert",
                &d("admin.crt"),
                "--key",
                &d("admin.key"),
                &format!("{server}/readyz"),
            ],
        )?;
        if !ready {
            bail!(
                "kube-apiserver did not become ready:\n{}",
                tail(&sandbox.daemon_log("kube-apiserver"))
            );
        }

        let plane = ControlPlane {
            dir: dir.clone(),
            server,
        };
        if options.controller_manager {
            let conf = plane
                .dir
                .join("controller-manager.conf")
                .display()
                .to_string();
            sandbox.spawn_daemon(
                "kube-controller-manager",
                &[
                    &kcm.display().to_string(),
                    &format!("--kubeconfig={conf}"),
                    &format!("--authentication-kubeconfig={conf}"),
                    &format!("--authorization-kubeconfig={conf}"),
                    "--bind-address=127.0.0.1",
                    &format!("--cert-dir={}", d("controller-manager-serving")),
                    "--leader-elect=false",
                    "--use-service-account-credentials=true",
                    "--controllers=csrapproving,csrsigning,csrcleaner,clusterrole-aggregation,serviceaccount,serviceaccount-token,root-ca-cert-publisher,namespace",
                    &format!("--cluster-signing-cert-file={}", d("ca.crt")),
                    &format!("--cluster-signing-key-file={}", d("ca.key")),
                    &format!("--root-ca-file={}", d("ca.crt")),
                    &format!("--service-account-private-key-file={}", d("sa.key")),
                ],
            )?;
            // The aggregated `view` role gets its rules from the controller: a sign that the
            // controllers run.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            loop {
                let out = plane
                    .kubectl(sandbox)?
                    .args([
                        "get",
                        "clusterrole",
                        "view",
                        "-o",
                        "jsonpath={.rules[*].verbs}",
                    ])
                    .output();
                if out.status.success() && !out.stdout.is_empty() {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    bail!(
                        "kube-controller-manager did not aggregate the view role:\n{}",
                        tail(&sandbox.daemon_log("kube-controller-manager"))
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
        Ok(plane)
    }

    /// The real kubectl of the pinned version inside the sandbox, as the cluster admin.
    pub fn kubectl(&self, sandbox: &Sandbox) -> Result<SandboxCommand> {
        Ok(sandbox
            .command(binary("kubectl")?)
            .env("KUBECONFIG", ADMIN_CONF))
    }

    /// `kubectl ...` as admin; fails with its stderr; returns stdout.
    pub fn kubectl_ok(&self, sandbox: &Sandbox, args: &[&str]) -> Result<String> {
        let out = self.kubectl(sandbox)?.args(args).output();
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The admin kubeconfig (also at [`ADMIN_CONF`] and /root/.kube/config inside).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.conf")
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(super::base64_encode(b""), "");
        assert_eq!(super::base64_encode(b"f"), "Zg==");
        assert_eq!(super::base64_encode(b"fo"), "Zm8=");
        assert_eq!(super::base64_encode(b"foo"), "Zm9v");
        assert_eq!(super::base64_encode(b"foobar!"), "Zm9vYmFyIQ==");
    }
}
