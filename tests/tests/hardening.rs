//! Issue 12's defects that need root and a host of their own, each fixed and kept fixed: a
//! stale PID file never makes create-services signal another process, the trivy server started
//! without systemd is not root and listens where trivy.local is bound, create-podmanusers takes
//! an existing account's ~/.config/containers back entirely and checks --password-stdin before
//! making anyone, save-oci refuses an output directory another user controls.

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::sandbox::{Options, Sandbox};

const ADDRESS: &str = "192.0.2.10";

fn started() -> Sandbox {
    Sandbox::start(&Options {
        name: None,
        addresses: vec![format!("{ADDRESS}/32")],
    })
    .expect("sandbox start (needs root)")
}

fn root(sandbox: &Sandbox, script: &str) -> std::process::Output {
    sandbox
        .command("sh")
        .args(["-c", script])
        .env("PATH", &path_with_commands())
        .output()
}

fn root_ok(sandbox: &Sandbox, script: &str) -> String {
    let out = root(sandbox, script);
    assert!(
        out.status.success(),
        "{script}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn create_services_spares_stale_pids_and_runs_trivy_unprivileged_on_its_address() {
    let sandbox = started();
    root_ok(
        &sandbox,
        &format!("podsec-create-policy {ADDRESS} >/dev/null"),
    );
    // A stand-in trivy server: stays up and shows what it was given.
    root_ok(
        &sandbox,
        "printf '#!/bin/sh\\nsleep 1000\\n' > /usr/local/bin/trivy && chmod 0755 /usr/local/bin/trivy",
    );
    // A PID file left from an earlier boot now names somebody else's process.
    sandbox
        .spawn_daemon("decoy", &["sleep", "31337"])
        .expect("decoy");
    let decoy = root_ok(
        &sandbox,
        "for i in $(seq 50); do p=$(pgrep -x -f 'sleep 31337') && echo $p && exit 0; sleep 0.1; done; exit 1",
    );
    let decoy = decoy.trim();
    root_ok(
        &sandbox,
        &format!("mkdir -p /run/podsec && echo {decoy} > /run/podsec/registry.pid"),
    );

    let out = root_ok(&sandbox, "podsec-create-services");
    assert!(out.contains("registry: started"), "{out}");
    assert!(
        root(&sandbox, &format!("kill -0 {decoy}")).status.success(),
        "create-services signalled the process a stale PID file named"
    );
    let registry = root_ok(
        &sandbox,
        "p=$(cat /run/podsec/registry.pid); test -s /run/podsec/registry.start && cat /proc/$p/comm",
    );
    assert_ne!(
        registry.trim(),
        "sleep",
        "the decoy was taken for the registry"
    );

    // trivy: its own account, on trivy.local's address, never 0.0.0.0.
    assert!(
        out.contains(&format!("trivy: started as _trivy on {ADDRESS}:4954, pid")),
        "{out}"
    );
    let trivy = root_ok(
        &sandbox,
        "p=$(cat /run/podsec/trivy.pid); stat -c %U /proc/$p; tr '\\0' ' ' < /proc/$p/cmdline; echo; stat -c '%U %a' /var/lib/podsec/trivy",
    );
    let lines: Vec<&str> = trivy.lines().collect();
    assert_eq!(lines[0], "_trivy", "{trivy}");
    assert!(
        lines[1].ends_with(&format!(
            "/usr/local/bin/trivy server --listen {ADDRESS}:4954 --cache-dir /var/lib/podsec/trivy "
        )),
        "{trivy}"
    );
    assert_eq!(lines[2], "_trivy 700", "{trivy}");
    // A second run finds both daemons as they are.
    let again = root_ok(&sandbox, "podsec-create-services");
    assert!(again.contains("registry: already running"), "{again}");
    assert!(!again.contains("trivy: started"), "{again}");
}

#[test]
fn existing_accounts_keep_nothing_of_their_own_in_the_locked_configuration() {
    let sandbox = started();
    // An account that already had a configuration of its own, with a policy that accepts anything.
    root_ok(&sandbox, "useradd -m alice");
    let prepare = sandbox
        .command("sh")
        .args([
            "-c",
            "mkdir -p ~/.config/containers/registries.d && \
             echo '{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}' > ~/.config/containers/policy.json && \
             echo 'default-docker: {}' > ~/.config/containers/registries.d/mine.yaml && \
             ln -s /etc/shadow ~/.config/containers/containers.conf",
        ])
        .user("alice")
        .output();
    assert!(prepare.status.success(), "{}", text(&prepare.stderr));

    let out = root(&sandbox, "podsec-create-podmanusers --batch alice");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("moved to /home/alice/.config/containers.podsec-saved."));
    assert_eq!(
        root_ok(&sandbox, "ls -A ~alice/.config/containers"),
        "storage.conf\n",
        "the user's own files still apply"
    );
    let saved = root_ok(
        &sandbox,
        "cd ~alice/.config/containers.podsec-saved.* && stat -c '%U %n' . policy.json registries.d registries.d/mine.yaml && readlink containers.conf",
    );
    assert_eq!(
        saved,
        "alice .\nalice policy.json\nalice registries.d\nalice registries.d/mine.yaml\n/etc/shadow\n"
    );
    assert_eq!(
        root_ok(&sandbox, "stat -c '%U %a' /etc/shadow"),
        "root 640\n",
        "a link was followed"
    );
    let write = sandbox
        .command("sh")
        .args(["-c", "echo x > ~/.config/containers/policy.json"])
        .user("alice")
        .output();
    assert!(!write.status.success());

    // --password-stdin without a password: refused before any account exists.
    let out = sandbox
        .command("podsec-create-podmanusers")
        .args(["--password-stdin", "bob"])
        .env("PATH", &path_with_commands())
        .stdin(b"")
        .output();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "podsec-create-podmanusers: --password-stdin: the password is empty"
    );
    assert!(
        !root_ok(&sandbox, "getent passwd bob || true").contains("bob"),
        "bob was created before the password was checked"
    );
}

#[test]
fn save_oci_refuses_output_directories_others_control() {
    let sandbox = started();
    root_ok(
        &sandbox,
        "useradd -m alice && install -d -o alice /srv/alice",
    );
    for dir in ["/srv/alice/k8s", "/home/alice/out"] {
        let out = root(
            &sandbox,
            &format!("podsec-save-oci {dir} amd64 containers-storage: localhost/none:1"),
        );
        assert_eq!(out.status.code(), Some(1), "{dir}");
        assert!(
            text(&out.stderr).contains("not root"),
            "{dir}: {}",
            text(&out.stderr)
        );
        assert!(
            !root(&sandbox, &format!("test -e {dir}")).status.success(),
            "{dir} was made"
        );
    }
}
