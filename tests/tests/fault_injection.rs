//! Fault injection (issue 12): each mutating command killed with SIGKILL at each of its
//! failpoints leaves every path it touches old or new, never a mix, and a re-run completes
//! (tests/src/faults.rs; docs/testing.md, "Fault injection").

use podsec_tests::faults::Scenario;
use podsec_tests::fixtures::PACKAGE_BINARIES;
use podsec_tests::k8s::{self, ControlPlane};
use podsec_tests::sandbox::{Options, Sandbox, target_dir};

const SERVER_IP: &str = "192.0.2.10";

fn server_options() -> Options {
    Options {
        name: None,
        addresses: vec![format!("{SERVER_IP}/32")],
    }
}

fn report(name: &str, report: &podsec_tests::faults::Report) {
    eprintln!(
        "{name}: {} steps, killed at {} of them, {:.1}s",
        report.steps.len(),
        report.killed_at.len(),
        report.elapsed.as_secs_f64()
    );
}

fn fault_injection_reaches(packages: &[&str]) -> bool {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["tree", "--offline", "-e", "features", "-i", "podsec-common"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command.output().expect("cargo tree");
    assert!(output.status.success(), "cargo tree: {output:?}");
    String::from_utf8_lossy(&output.stdout).contains("podsec-common feature \"fault-injection\"")
}

/// The tests' build of the commands has failpoints, a release build of the packages has not
/// (cargo unifies features per invocation: only one that builds podsec-tests turns it on).
#[test]
fn failpoints_are_in_the_test_build_only() {
    let mut with_tests = PACKAGE_BINARIES.to_vec();
    with_tests.push("podsec-tests");
    assert!(fault_injection_reaches(&with_tests));
    assert!(!fault_injection_reaches(PACKAGE_BINARIES));
    for package in PACKAGE_BINARIES {
        let binary = std::fs::read(target_dir().join(package)).expect("built binary");
        assert!(
            memchr_contains(&binary, b"PODSEC_FAILPOINT_TRACE"),
            "{package} of this build has no failpoints: run `cargo build --workspace`"
        );
    }
}

fn memchr_contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn create_policy_on_the_server_survives_a_kill_at_every_step() {
    let scenario = Scenario {
        options: server_options(),
        watched: &[
            "/etc/hosts",
            "/etc/group",
            "/etc/gshadow",
            "/etc/containers",
            "/etc/sysctl.d",
            "/var/sigstore",
        ],
        line_sets: &["/etc/group", "/etc/gshadow"],
        ..Scenario::new(
            "podsec-create-policy (server)",
            &["podsec-create-policy", SERVER_IP],
        )
    };
    report(scenario.name, &scenario.run());
}

fn path() -> String {
    podsec_tests::fixtures::path_with_commands()
}

/// A server with create-policy done (what create-services and create-imagemakeruser need).
fn policy_done(sandbox: &Sandbox) {
    let out = sandbox
        .command("podsec-create-policy")
        .arg(SERVER_IP)
        .env("PATH", &path())
        .output();
    assert!(out.status.success(), "create-policy: {out:?}");
}

fn services_done(sandbox: &Sandbox) {
    policy_done(sandbox);
    let out = sandbox
        .command("podsec-create-services")
        .env("PATH", &path())
        .output();
    assert!(out.status.success(), "create-services: {out:?}");
}

/// The account databases take one line per account or group: compared as sets of lines.
const ACCOUNT_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/subuid",
    "/etc/subgid",
];

#[test]
fn create_services_survives_a_kill_at_every_step() {
    let scenario = Scenario {
        options: server_options(),
        setup: &policy_done,
        watched: &[
            "/etc/podsec",
            "/etc/nginx/conf.d",
            "/etc/nginx/sites-enabled",
            "/var/lib/podsec",
            "/run/podsec",
        ],
        // The PIDs and start times of the daemons differ from run to run.
        volatile: &["/run/podsec/"],
        ..Scenario::new("podsec-create-services", &["podsec-create-services"])
    };
    report(scenario.name, &scenario.run());
}

#[test]
fn create_imagemakeruser_survives_a_kill_at_every_step() {
    let mut watched = ACCOUNT_FILES.to_vec();
    watched.extend([
        "/etc/containers",
        "/var/sigstore",
        "/home/imagemaker/.config",
    ]);
    let scenario = Scenario {
        options: server_options(),
        setup: &services_done,
        watched: &watched,
        line_sets: ACCOUNT_FILES,
        // A fresh key each run; the policy names it, not its bytes.
        volatile: &["/var/sigstore/keys/imagemaker.pgp"],
        ..Scenario::new(
            "podsec-create-imagemakeruser",
            &[
                "podsec-create-imagemakeruser",
                "--batch",
                "--email",
                "imagemaker@registry.local",
                "imagemaker@registry.local/demo",
            ],
        )
    };
    report(scenario.name, &scenario.run());
}

#[test]
fn create_podmanusers_survives_a_kill_at_every_step() {
    let mut watched = ACCOUNT_FILES.to_vec();
    watched.extend(["/home/alice", "/home/bob"]);
    let scenario = Scenario {
        options: server_options(),
        setup: &policy_done,
        watched: &watched,
        line_sets: ACCOUNT_FILES,
        ..Scenario::new(
            "podsec-create-podmanusers",
            &["podsec-create-podmanusers", "--batch", "alice", "bob"],
        )
    };
    report(scenario.name, &scenario.run());
}

/// A client fetches the keys and the policy from a server (one for all runs, set up once: the
/// policy, the services and an image maker); each fresh client is plugged into the server's
/// bridge with an address of its own.
#[test]
fn create_policy_on_a_client_survives_a_kill_at_every_step() {
    let server = Sandbox::start(&server_options()).unwrap();
    services_done(&server);
    let out = server
        .command("podsec-create-imagemakeruser")
        .args([
            "--batch",
            "--email",
            "imagemaker@registry.local",
            "imagemaker@registry.local/demo",
        ])
        .env("PATH", &path())
        .output();
    assert!(out.status.success(), "create-imagemakeruser: {out:?}");
    let next = std::cell::Cell::new(20u8);
    let plug_in = |client: &Sandbox| {
        let n = next.get();
        next.set(n + 1);
        Sandbox::attach(
            &server,
            client,
            "192.0.2.254/24",
            &format!("192.0.2.{n}/24"),
        )
        .expect("attach the client");
    };
    let scenario = Scenario {
        setup: &plug_in,
        watched: &[
            "/etc/hosts",
            "/etc/group",
            "/etc/gshadow",
            "/etc/containers",
            "/etc/sysctl.d",
            "/var/sigstore",
        ],
        line_sets: &["/etc/group", "/etc/gshadow"],
        ..Scenario::new(
            "podsec-create-policy (client)",
            &["podsec-create-policy", SERVER_IP],
        )
    };
    report(scenario.name, &scenario.run());
}

/// Audit events `range`, every third refused.
fn audit_log(range: std::ops::Range<usize>) -> String {
    let mut text = String::new();
    for i in range {
        let refused = i % 3 == 0;
        let mut event = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": format!("{i:08}-aaaa-bbbb"), "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/ns/pods", "verb": "list",
            "user": {"username": format!("u{i}"), "groups": ["system:authenticated"]},
            "sourceIPs": [format!("10.0.0.{i}")], "objectRef": {"resource": "pods"},
            "responseStatus": {"metadata": {}, "code": if refused { 403 } else { 200 }},
            "requestReceivedTimestamp": format!("2024-05-01T00:00:{i:02}.000000Z"),
            "stageTimestamp": format!("2024-05-01T00:00:{i:02}.000000Z"),
        });
        if refused {
            event["responseStatus"]["status"] = "Failure".into();
            event["responseStatus"]["message"] = format!("pods is forbidden: u{i}").into();
        }
        text.push_str(&event.to_string());
        text.push('\n');
    }
    text
}

/// A node whose check-kubeapi recorded the refusals among 12 events (the OLD state has a
/// forbidden.log and a position) and whose audit log has 12 more since; a journald for the
/// syslog lines.
fn audit_node(sandbox: &Sandbox) {
    audit_log_only(sandbox, 0..12);
    let out = sandbox
        .command("podsec-inotify-check-kubeapi")
        .arg("--once")
        .env("PATH", &path())
        .output();
    assert!(out.status.success(), "the first check-kubeapi: {out:?}");
    let staged = sandbox.share().join("audit.log");
    std::fs::write(&staged, audit_log(12..24)).unwrap();
    sandbox.sh_ok(&format!(
        "cat {} >> /etc/kubernetes/audit/audit.log",
        staged.display()
    ));
}

/// Audit events `range` at the apiserver's path and a journald for the syslog lines.
fn audit_log_only(sandbox: &Sandbox, range: std::ops::Range<usize>) {
    let staged = sandbox.share().join("audit.log");
    std::fs::write(&staged, audit_log(range)).unwrap();
    sandbox.sh_ok(&format!(
        "mkdir -p /etc/kubernetes/audit /run/systemd/journal && chmod 0700 /etc/kubernetes/audit \
         && cp {} /etc/kubernetes/audit/audit.log",
        staged.display()
    ));
    sandbox
        .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
        .unwrap();
    sandbox.sh_ok(
        "for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && exit 0; sleep 0.05; done; exit 1",
    );
}

/// check-kubeapi's first run on a node: no state directory before. A run killed between
/// appending its first batch and writing its first position had its records appended again by
/// the re-run (fixed: the first run records forbidden.log's size before reading). An empty
/// forbidden.log, made at start, holds the same records as none.
#[test]
fn check_kubeapi_first_run_survives_a_kill_at_every_step() {
    let first_run = |sandbox: &Sandbox| audit_log_only(sandbox, 0..12);
    let scenario = Scenario {
        setup: &first_run,
        watched: &["/var/lib/podsec/u7s/log/kubeapi"],
        volatile: &[
            "/var/lib/podsec/u7s/log/kubeapi/journaled",
            "/var/lib/podsec/u7s/log/kubeapi/position",
        ],
        empty_is_absent: &["/var/lib/podsec/u7s/log/kubeapi/forbidden.log"],
        ..Scenario::new(
            "podsec-inotify-check-kubeapi --once, first run",
            &["podsec-inotify-check-kubeapi", "--once"],
        )
    };
    report(scenario.name, &scenario.run());
}

/// check-kubeapi's state (docs of check_kubeapi/state.rs): forbidden.log exactly once after a
/// kill anywhere, the position replaced atomically. `journaled` is the at-least-once journal of
/// the syslog lines (a kill leaves IDs in it that the commit empties) and `position` names the
/// audit log's inode, which differs between sandboxes: only their type, mode and owner are
/// compared; forbidden.log, byte for byte, says whether the re-run read from the right place.
#[test]
fn check_kubeapi_state_survives_a_kill_at_every_step() {
    let scenario = Scenario {
        setup: &audit_node,
        watched: &["/var/lib/podsec/u7s/log/kubeapi"],
        volatile: &[
            "/var/lib/podsec/u7s/log/kubeapi/journaled",
            "/var/lib/podsec/u7s/log/kubeapi/position",
        ],
        ..Scenario::new(
            "podsec-inotify-check-kubeapi --once",
            &["podsec-inotify-check-kubeapi", "--once"],
        )
    };
    report(scenario.name, &scenario.run());
}

/// A server with the policy, the services and an image maker.
fn maker_done(sandbox: &Sandbox) {
    services_done(sandbox);
    let out = sandbox
        .command("podsec-create-imagemakeruser")
        .args([
            "--batch",
            "--email",
            "imagemaker@registry.local",
            "imagemaker@registry.local/demo",
        ])
        .env("PATH", &path())
        .output();
    assert!(out.status.success(), "create-imagemakeruser: {out:?}");
}

/// The image maker loads an archive of one image, pushes it and signs it. The archive is built
/// once (busybox) in a sandbox of its own and read by every run through its share directory.
/// Watched: the signature store (the signature is made fresh each run: its content is not
/// compared, its name, mode and owner are) and the registry's repositories of the image.
#[test]
fn load_sign_oci_survives_a_kill_at_every_step() {
    let builder = Sandbox::start(&Options::default()).unwrap();
    podsec_tests::fixtures::busybox_image(&builder, "bb");
    let layout = builder.share().join("layout");
    let archive = builder.share().join("app.tar.xz");
    let policy = builder.share().join("accept-anything.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    builder.sh_ok(&format!(
        "set -e; mkdir -p {layout}; skopeo --policy {policy} copy -q containers-storage:localhost/bb \
         oci:{layout}/amd64:demo/app:1; tar -C {layout} -cJf {archive} amd64; chmod 0644 {archive}; \
         chmod 0755 {share}",
        layout = layout.display(),
        policy = policy.display(),
        archive = archive.display(),
        share = builder.share().display(),
    ));
    let archive = archive.display().to_string();
    let argv = [
        "podsec-load-sign-oci",
        &archive,
        "amd64",
        "imagemaker@registry.local",
        "registry.local/demo",
    ];
    let scenario = Scenario {
        options: server_options(),
        setup: &maker_done,
        user: Some("imagemaker"),
        watched: &[
            "/var/sigstore/sigstore",
            "/var/lib/podsec/registry/docker/registry/v2/repositories/demo/app/_manifests",
        ],
        volatile: &["/var/sigstore/sigstore/demo/app@sha256="],
        // A run killed after its signature was stored, and run again, signs again: a second
        // valid signature of the same maker, as any second run makes (signatures are only ever
        // added, never replaced; docs/testing.md, "Fault injection").
        rerun_may_add: &["/var/sigstore/sigstore/demo/app@sha256="],
        max_kills: 30,
        ..Scenario::new("podsec-load-sign-oci", &argv)
    };
    report(scenario.name, &scenario.run());
}

/// A control plane in the sandbox (the admin kubeconfig where podsec's commands look as root)
/// with `bound` bound to the ClusterRole edit by the RoleBinding rb-edit in ns1.
fn cluster_with(sandbox: &Sandbox, bound: &[&str]) {
    for name in ["etcd", "kube-apiserver", "kubectl"] {
        if let Err(e) = k8s::binary(name) {
            panic!("{e:#}");
        }
    }
    let plane = ControlPlane::start(sandbox, &k8s::Options::default())
        .unwrap_or_else(|e| panic!("control plane: {e:#}"));
    plane
        .kubectl_ok(sandbox, &["create", "namespace", "ns1"])
        .unwrap();
    for user in bound {
        let out = sandbox
            .command("podsec-k8s-rbac-bindrole")
            .args([user, "role=clusterrole", "edit", "rb-edit", "ns1"])
            .env("PATH", &path())
            .output();
        assert!(out.status.success(), "bindrole {user}: {out:?}");
    }
}

/// The RoleBindings of ns1: name, role and subjects, one line each.
fn bindings(sandbox: &Sandbox) -> String {
    let out = sandbox
        .command(k8s::binary("kubectl").unwrap())
        .env("KUBECONFIG", "/etc/kubernetes/admin.conf")
        .args([
            "get",
            "rolebindings",
            "-n",
            "ns1",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.roleRef.kind}/{.roleRef.name} {.subjects[*].name}{\"\\n\"}{end}",
        ])
        .output();
    assert!(out.status.success(), "kubectl get rolebindings: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// bindrole's one write (the RoleBinding created, or replaced with one more subject) killed
/// before and after: the binding is there or not, and the re-run completes ("already bound").
#[test]
fn bindrole_survives_a_kill_at_every_step() {
    let setup = |sandbox: &Sandbox| cluster_with(sandbox, &["bob"]);
    let scenario = Scenario {
        setup: &setup,
        probe: Some(&bindings),
        max_kills: 10,
        ..Scenario::new(
            "podsec-k8s-rbac-bindrole",
            &[
                "podsec-k8s-rbac-bindrole",
                "alice",
                "role=clusterrole",
                "edit",
                "rb-edit",
                "ns1",
            ],
        )
    };
    report(scenario.name, &scenario.run());
}

/// unbindrole killed after its write: the re-run finds alice unbound and, by its contract
/// (spec §10.3 26, tests/tests/rbac.rs), says so with exit 1, changing nothing.
#[test]
fn unbindrole_survives_a_kill_at_every_step() {
    let setup = |sandbox: &Sandbox| cluster_with(sandbox, &["bob", "alice"]);
    let scenario = Scenario {
        setup: &setup,
        probe: Some(&bindings),
        rerun_codes: &[0, 1],
        max_kills: 10,
        ..Scenario::new(
            "podsec-k8s-rbac-unbindrole",
            &[
                "podsec-k8s-rbac-unbindrole",
                "alice",
                "role=clusterrole",
                "edit",
                "rb-edit",
                "ns1",
            ],
        )
    };
    report(scenario.name, &scenario.run());
}

/// The CertificateSigningRequests: name and conditions, one line each.
fn csrs(sandbox: &Sandbox) -> String {
    let out = sandbox
        .command(k8s::binary("kubectl").unwrap())
        .env("KUBECONFIG", "/etc/kubernetes/admin.conf")
        .args([
            "get",
            "csr",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[*].type}{\"\\n\"}{end}",
        ])
        .output();
    assert!(out.status.success(), "kubectl get csr: {out:?}");
    // A CSR created and not yet approved when the kill came grants nothing (its key died with
    // the process) and the re-run replaces it: only decided ones are state.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.split_whitespace().nth(1).is_some())
        .map(|line| format!("{line}\n"))
        .collect()
}

/// create-kubeconfig for a user podsec-k8s-rbac-create-user made, with a real signer
/// (kube-controller-manager). Run as the message of a refused re-run says, with
/// `--replace-csr`: a run killed after creating its CSR leaves it behind (pending: creating and
/// approving are two API calls; the probe shows decided CSRs only). The kubeconfig holds a
/// fresh key each run: compared by type, mode and owner.
#[test]
fn create_kubeconfig_survives_a_kill_at_every_step() {
    let setup = |sandbox: &Sandbox| {
        k8s::require_control_plane_binaries();
        ControlPlane::start(
            sandbox,
            &k8s::Options {
                controller_manager: true,
                ..k8s::Options::default()
            },
        )
        .unwrap_or_else(|e| panic!("control plane: {e:#}"));
        let out = sandbox
            .command("podsec-k8s-rbac-create-user")
            .arg("alice")
            .env("PATH", &path())
            .output();
        assert!(out.status.success(), "create-user: {out:?}");
    };
    let scenario = Scenario {
        setup: &setup,
        watched: &["/home/alice/.kube"],
        volatile: &["/home/alice/.kube/config"],
        probe: Some(&csrs),
        max_kills: 10,
        ..Scenario::new(
            "podsec-k8s-rbac-create-kubeconfig",
            &[
                "podsec-k8s-rbac-create-kubeconfig",
                "--replace-csr",
                "alice",
                "devs",
            ],
        )
    };
    report(scenario.name, &scenario.run());
}

const KUBEADM_ADDRESS: &str = "192.0.2.20";

/// The stand-in node of tests/tests/u7s_kubeadm.rs (`Node::start(&["c10f"])`): ALT's
/// os-release, the real kubeadm, version stand-ins of kubelet and CRI-O, apt-cache's stand-in, a
/// registry on registry.local with the c10f images' tags, an existing user alice.
fn kubeadm_node(sandbox: &Sandbox) {
    let share = sandbox.share();
    std::fs::write(
        share.join("registry.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:80\n",
            share.join("registry-data").display()
        ),
    )
    .unwrap();
    let kubeadm = k8s::binary("kubeadm").unwrap_or_else(|e| panic!("{e:#}"));
    sandbox.sh_ok(&format!(
        r#"set -e
rm -f /etc/os-release
printf '%s\n' 'NAME="ALT SP Server"' 'ID=altlinux' 'VERSION_ID=10.2' 'CPE_NAME="cpe:/o:alt:spserver:10.2"' 'ALT_BRANCH_ID="c10f2"' > /etc/os-release
ln -sf {kubeadm} /usr/bin/kubeadm
printf '#!/bin/sh\necho "Kubernetes v1.33.13"\n' > /usr/bin/kubelet
printf '#!/bin/sh\necho "crio version 1.33.2"\n' > /usr/bin/crio
cat > /usr/local/bin/apt-cache <<'EOS'
#!/bin/sh
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
    sandbox
        .spawn_daemon(
            "registry",
            &[
                "docker-registry",
                "serve",
                share.join("registry.yml").to_str().unwrap(),
            ],
        )
        .unwrap();
    sandbox.sh_ok(
        "for i in $(seq 100); do curl -sf -o /dev/null http://registry.local/v2/ && exit 0; sleep 0.1; done; exit 1",
    );
    let tags = [
        "c10f/kube-apiserver:v1.26.3,v1.26.9,v1.26.11,v1.33.2,v1.33.9,v1.33.13,latest",
        "c10f/kube-controller-manager:v1.33.13",
        "c10f/kube-scheduler:v1.33.13",
        "c10f/kube-proxy:v1.33.13",
        "c10f/coredns:v1.12.0",
        "c10f/flannel:v0.9.1,v0.25.1,v0.26.7,v0.27.0,latest",
        "c10f/flannel-cni-plugin:v1.5.1-flannel2,v1.7.1-flannel1",
        "c10f/pause:3.10",
        "c10f/etcd:3.5.16-0,3.5.24-0",
    ];
    let out = sandbox
        .command("sh")
        .args(["-c", podsec_tests::fixtures::PUSH_TAGS, "push"])
        .args(tags)
        .output();
    assert!(out.status.success(), "pushing tags: {out:?}");
}

/// The kubeadm wrapper's host preparation (`init --prepare-only`): the account u7s-admin, its
/// subordinate ranges, the configuration files, directories, sysctls and modules. Steps are
/// sampled evenly when there are more than `max_kills`.
#[test]
fn kubeadm_host_preparation_survives_a_kill_at_every_step() {
    let mut watched = ACCOUNT_FILES.to_vec();
    watched.extend([
        "/etc/podsec/u7s",
        "/etc/kubernetes",
        "/var/lib/podsec/u7s",
        "/etc/cni/net.d",
        "/etc/sysctl.d",
        "/etc/modules-load.d",
    ]);
    let scenario = Scenario {
        options: Options {
            name: None,
            addresses: vec![format!("{KUBEADM_ADDRESS}/32")],
        },
        setup: &kubeadm_node,
        watched: &watched,
        line_sets: ACCOUNT_FILES,
        max_kills: 16,
        ..Scenario::new(
            "podsec-u7s-kubeadm init --prepare-only",
            &[
                "podsec-u7s-kubeadm",
                "init",
                "--prepare-only",
                "--apiserver-advertise-address",
                KUBEADM_ADDRESS,
                "--node-name",
                "node1",
                "--token",
                "abcdef.0123456789abcdef",
            ],
        )
    };
    report(scenario.name, &scenario.run());
}
