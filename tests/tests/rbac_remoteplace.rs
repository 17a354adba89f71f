//! podsec-k8s-rbac-create-remoteplace against a real OpenSSH server: the user's kubeconfig goes
//! from the node where the security administrator made it to the same account on a workstation
//! (a second sandbox joined by a veth pair). Upstream copied from a literal host `clusterIP`
//! into a `.kube` of the current directory and never worked (spec §10.3 28).

use std::process::Output;

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::k8s;
use podsec_tests::sandbox::{Options, Sandbox};

const NODE_IP: &str = "192.0.2.21";
const WORKSTATION_IP: &str = "192.0.2.22";

fn as_bob(sandbox: &Sandbox, argv: &[&str]) -> Output {
    sandbox
        .command(argv[0])
        .args(&argv[1..])
        .user("bob")
        .env("PATH", &path_with_commands())
        .output()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A one-line `<command>: ...` error and a non-zero exit.
fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success(), "should have failed: {}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(
        stderr.starts_with("podsec-k8s-rbac-create-remoteplace: ") && !stderr.contains('\n'),
        "not a one-line error: {stderr}"
    );
    stderr
}

/// A kubeconfig as create-kubeconfig writes it (a client certificate by a test CA, embedded).
fn kubeconfig(dir: &std::path::Path, server: &str) -> String {
    k8s::make_ca(dir, "ca", "remoteplace-test-ca").unwrap();
    k8s::make_cert(
        dir,
        "ca",
        "bob",
        "/CN=bob/O=k8s",
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    k8s::kubeconfig(
        server,
        &read("ca.crt"),
        &read("bob.crt"),
        &read("bob.key"),
        "bob",
    )
}

#[test]
fn kubeconfig_reaches_the_workstation_over_ssh() {
    let node = Sandbox::start(&Options::default()).expect("sandbox start (needs root)");
    let workstation = Sandbox::start(&Options::default()).expect("sandbox start");
    Sandbox::link(
        &node,
        &workstation,
        &format!("{NODE_IP}/24"),
        &format!("{WORKSTATION_IP}/24"),
    )
    .unwrap();
    for sandbox in [&node, &workstation] {
        sandbox.sh_ok("useradd -m -s /bin/sh bob");
    }

    // The workstation: a real sshd with its own host keys, bob logs in with his key.
    workstation.sh_ok("mkdir -p -m 0755 /run/sshd && ssh-keygen -A -q");
    workstation
        .spawn_daemon(
            "sshd",
            &[
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-o",
                &format!("ListenAddress={WORKSTATION_IP}"),
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "KbdInteractiveAuthentication=no",
            ],
        )
        .unwrap();
    let host_key = workstation.sh_ok("cat /etc/ssh/ssh_host_ed25519_key.pub");
    let share = node.share();
    let known_hosts = share.join("known_hosts");
    std::fs::write(&known_hosts, format!("{WORKSTATION_IP} {host_key}")).unwrap();
    node.command("sh")
        .args([
            "-c",
            "set -e; mkdir -p -m 0700 ~/.ssh; ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519; \
             install -m 0600 \"$1\" ~/.ssh/known_hosts",
            "setup",
            &known_hosts.display().to_string(),
        ])
        .user("bob")
        .output();
    let public = node.sh_ok("cat ~bob/.ssh/id_ed25519.pub");
    let authorized = workstation.share().join("authorized_keys");
    std::fs::write(&authorized, &public).unwrap();
    workstation.sh_ok(&format!(
        "set -e; install -d -m 0700 -o bob -g bob ~bob/.ssh; \
         install -m 0600 -o bob -g bob {} ~bob/.ssh/authorized_keys",
        authorized.display()
    ));
    // sshd is up once it answers with its banner
    let ready = workstation.sh(&format!(
        "for i in $(seq 1 40); do ssh-keyscan -T 2 {WORKSTATION_IP} >/dev/null 2>&1 && exit 0; sleep 0.25; done; exit 1"
    ));
    assert!(
        ready.status.success(),
        "sshd: {}",
        workstation.daemon_log("sshd")
    );

    // No kubeconfig yet on the node: a clear error, nothing sent.
    let err = one_line_failure(&as_bob(
        &node,
        &["podsec-k8s-rbac-create-remoteplace", WORKSTATION_IP],
    ));
    assert!(err.contains(".kube/config"), "{err}");
    assert!(
        !workstation.sh("test -e ~bob/.kube").status.success(),
        "nothing may appear on the workstation"
    );

    // The kubeconfig the administrator made for bob.
    let certs = share.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let first = kubeconfig(&certs, "https://192.0.2.10:6443");
    let config_file = share.join("bob.kubeconfig");
    std::fs::write(&config_file, &first).unwrap();
    node.sh_ok(&format!(
        "install -d -m 0700 -o bob -g bob ~bob/.kube && install -m 0600 -o bob -g bob {} ~bob/.kube/config",
        config_file.display()
    ));
    // A ~/.kube the workstation already has with loose modes gets tightened.
    workstation.sh_ok("install -d -m 0755 -o bob -g bob ~bob/.kube");

    let out = as_bob(
        &node,
        &["podsec-k8s-rbac-create-remoteplace", WORKSTATION_IP],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        workstation.sh_ok("stat -c '%a %U' ~bob/.kube ~bob/.kube/config"),
        "700 bob\n600 bob\n"
    );
    assert_eq!(workstation.sh_ok("cat ~bob/.kube/config"), first);
    // No temporary file is left beside it.
    assert_eq!(workstation.sh_ok("ls -A ~bob/.kube"), "config\n");
    // Nothing landed in the caller's working directory (upstream made ./.kube there).
    assert!(!node.sh("test -e /.kube").status.success());

    // Re-running with a new kubeconfig replaces the old one.
    let second = first.replace("192.0.2.10", "192.0.2.11");
    std::fs::write(&config_file, &second).unwrap();
    node.sh_ok(&format!(
        "install -m 0600 -o bob -g bob {} ~bob/.kube/config",
        config_file.display()
    ));
    let out = as_bob(
        &node,
        &["podsec-k8s-rbac-create-remoteplace", WORKSTATION_IP],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(workstation.sh_ok("cat ~bob/.kube/config"), second);

    // An address that ssh would read as an option is refused before ssh runs.
    let err = one_line_failure(&as_bob(
        &node,
        &[
            "podsec-k8s-rbac-create-remoteplace",
            "-oProxyCommand=touch /tmp/pwned-remoteplace",
        ],
    ));
    assert!(err.contains("invalid address"), "{err}");
    assert!(!node.sh("test -e /tmp/pwned-remoteplace").status.success());

    // A workstation that does not answer: a non-zero exit that names the address.
    let out = node
        .command("podsec-k8s-rbac-create-remoteplace")
        .arg("192.0.2.99")
        .user("bob")
        .env("PATH", &path_with_commands())
        .output();
    // ssh says why on its own lines first; ours is the last line
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let err = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        err.starts_with("podsec-k8s-rbac-create-remoteplace: ") && err.contains("192.0.2.99"),
        "{stderr}"
    );
    assert_eq!(workstation.sh_ok("cat ~bob/.kube/config"), second);
}
