//! Issue 13, items 1 and 2: create-services on a registry server upgraded from upstream podsec
//! 1.1.x. Upstream's registry (the real docker-registry, as upstream configured it: port 80,
//! storage in root podman's volume `registry`) holds images signed by an image maker; our
//! create-services refuses while that registry still holds port 80 (nothing started, nothing
//! moved), then moves the data with one rename and serves every image, signed, and a second run
//! changes nothing. Another program on port 80 is named in a one-line refusal, and nginx does
//! not start.

use std::path::PathBuf;

use podsec_tests::fixtures::{busybox_image, path_with_commands};
use podsec_tests::sandbox::{Options, Sandbox};
use podsec_tests::u7s::text;

const ADDRESS: &str = "192.0.2.10";
const EMAIL: &str = "imagemaker@registry.local";
const OLD: &str = "/var/lib/containers/storage/volumes/registry/_data";
const NEW: &str = "/var/lib/podsec/registry";

fn started() -> Sandbox {
    Sandbox::start(&Options {
        name: None,
        addresses: vec![format!("{ADDRESS}/32")],
    })
    .expect("sandbox start (needs root)")
}

fn run(sandbox: &Sandbox, user: Option<&str>, script: &str) -> std::process::Output {
    let mut command = sandbox
        .command("sh")
        .args(["-c", script])
        .env("PATH", &path_with_commands());
    if let Some(user) = user {
        command = command.user(user);
    }
    command.output()
}

fn ok(sandbox: &Sandbox, user: Option<&str>, script: &str) -> String {
    podsec_tests::u7s::ok(script, run(sandbox, user, script))
}

/// An archive as podsec-save-oci writes it: `amd64/` OCI layout with `demo/<name>:<tag>`.
fn archive(sandbox: &Sandbox, refs: &[&str]) -> PathBuf {
    busybox_image(sandbox, "bb");
    let share = sandbox.share();
    let policy = share.join("accept-anything.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let layout = share.join("layout");
    let mut script = format!("set -e; rm -rf {0}; mkdir -p {0}; ", layout.display());
    for reference in refs {
        script.push_str(&format!(
            "skopeo --policy {} copy -q containers-storage:localhost/bb oci:{}/amd64:{reference}; ",
            policy.display(),
            layout.display()
        ));
    }
    let file = share.join("images.tar.xz");
    script.push_str(&format!(
        "tar -C {} -cJf {1} amd64; chmod 0644 {1}",
        layout.display(),
        file.display()
    ));
    ok(sandbox, None, &script);
    file
}

/// Waits (bounded) until something answers on registry.local:80's /v2/.
fn wait_for_port_80(sandbox: &Sandbox) {
    ok(
        sandbox,
        None,
        "for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:80/v2/ && exit 0; sleep 0.1; done; exit 1",
    );
}

fn pull(sandbox: &Sandbox, image: &str) -> std::process::Output {
    run(
        sandbox,
        None,
        &format!("skopeo copy -q docker://{image} dir:$(mktemp -d)"),
    )
}

/// A registry server as upstream podsec 1.1.x leaves it: policy and an image maker, upstream's
/// registry (port 80, storage in the podman volume) running, two images pushed and signed.
/// `on_var`: the volume lies on /var's file system (the sandbox gives root's container storage a
/// mount of its own, as some hosts do; `false` keeps that, with podman's 0700 directories).
/// Returns the listing of the old storage.
fn upstream_server(sandbox: &Sandbox, on_var: bool) -> String {
    ok(sandbox, None, &format!("podsec-create-policy {ADDRESS}"));
    ok(
        sandbox,
        None,
        &format!(
            "podsec-create-imagemakeruser --batch --email {EMAIL} imagemaker@registry.local/demo"
        ),
    );
    let archive = archive(sandbox, &["demo/app:1", "demo/tool:2"]);
    if on_var {
        ok(sandbox, None, "umount -l /var/lib/containers");
    }
    ok(
        sandbox,
        None,
        &format!(
            "mkdir -p {OLD} && chmod 0700 /var/lib/containers/storage /var/lib/containers/storage/volumes"
        ),
    );
    // Upstream's registry: its configuration edited as upstream's create-services did.
    let config = sandbox.share().join("upstream-registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {OLD}\nhttp:\n  addr: :80\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    sandbox
        .spawn_daemon(
            "upstream-registry",
            &[
                "sh",
                "-c",
                &format!(
                    "echo $$ > /run/upstream-registry.pid; exec docker-registry serve {config}"
                ),
            ],
        )
        .unwrap();
    wait_for_port_80(sandbox);
    let pushed = ok(
        sandbox,
        Some("imagemaker"),
        &format!(
            "podsec-load-sign-oci {} amd64 {EMAIL} registry.local/demo",
            archive.display()
        ),
    );
    assert!(
        pushed.contains("2 of 2 images pushed and signed"),
        "{pushed}"
    );
    let before = ok(sandbox, None, &format!("cd {OLD} && find . | sort"));
    assert!(
        before.contains("./docker/registry/v2/repositories/demo/app"),
        "{before}"
    );
    before
}

/// Stops upstream's registry, as the administrator does after the refusal.
fn stop_upstream_registry(sandbox: &Sandbox) {
    ok(
        sandbox,
        None,
        "kill $(cat /run/upstream-registry.pid); for i in $(seq 50); do \
         curl -s -o /dev/null http://127.0.0.1:80/ || exit 0; sleep 0.1; done; exit 1",
    );
}

fn assert_served_signed(sandbox: &Sandbox) {
    for image in ["registry.local/demo/app:1", "registry.local/demo/tool:2"] {
        let out = pull(sandbox, image);
        assert!(out.status.success(), "{image}: {}", text(&out.stderr));
    }
    // The registry runs as its own account, not root.
    assert_eq!(
        ok(
            sandbox,
            None,
            "for p in $(pgrep -x docker-registry); do \
             grep -q '^State:.*Z' /proc/$p/status || stat -c %U /proc/$p; done"
        )
        .trim(),
        "docker-registry"
    );
}

#[test]
fn upstream_registry_data_is_moved_once_and_served_signed() {
    let sandbox = started();
    let before = upstream_server(&sandbox, true);

    // Upstream's registry still holds port 80: refused in one line, nothing started or moved.
    let refused = run(&sandbox, None, "podsec-create-services");
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success(), "{}", text(&refused.stdout));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("port 80 is taken by docker-registry (pid ")
            && stderr.contains("nothing was started"),
        "{stderr}"
    );
    ok(
        &sandbox,
        None,
        "! pgrep -x nginx && test ! -e /etc/nginx/conf.d/podsec.conf \
         && test ! -e /etc/podsec/registry/config.yml && test ! -e /var/lib/podsec/registry",
    );
    assert_eq!(
        ok(&sandbox, None, &format!("cd {OLD} && find . | sort")),
        before
    );

    stop_upstream_registry(&sandbox);
    let first = ok(&sandbox, None, "podsec-create-services");
    assert!(
        first.contains(&format!(
            "Registry data of upstream podsec moved (one rename, nothing copied): {OLD}/docker -> {NEW}/docker (2 repositories: demo/app demo/tool)"
        )),
        "{first}"
    );
    // The same files, now the registry account's; upstream's volume directory stays, empty.
    assert_eq!(
        ok(&sandbox, None, &format!("cd {NEW} && find . | sort")),
        before
    );
    ok(
        &sandbox,
        None,
        &format!(
            "test -d {OLD} && test -z \"$(ls -A {OLD})\" \
             && test -z \"$(find {NEW}/docker ! -user docker-registry)\" \
             && grep -qx '    rootdirectory: {NEW}' /etc/podsec/registry/config.yml"
        ),
    );
    assert_served_signed(&sandbox);
    // podman (root's storage back in place) pulls it too.
    ok(
        &sandbox,
        None,
        &format!(
            "mount --bind {} /var/lib/containers && podman pull -q registry.local/demo/app:1",
            sandbox.state().join("containers").display()
        ),
    );

    // A second run moves nothing and changes nothing.
    let second = ok(&sandbox, None, "podsec-create-services");
    assert!(!second.contains("upstream"), "{second}");
    assert_eq!(
        ok(&sandbox, None, &format!("cd {NEW} && find . | sort")),
        before
    );
    assert_served_signed(&sandbox);
}

#[test]
fn upstream_registry_data_on_another_mount_is_served_where_it_is() {
    let sandbox = started();
    let before = upstream_server(&sandbox, false);
    stop_upstream_registry(&sandbox);
    let note = format!(
        "Registry data of upstream podsec stays in {OLD} and is served from there (2 repositories): \
         it is on another mount than {NEW} (no rename can move it), and a copy is not made"
    );
    let first = ok(&sandbox, None, "podsec-create-services");
    assert!(first.contains(&note), "{first}");
    // Nothing moved or copied; the registry's account owns the data and may search the
    // directories above it (an ACL entry: the group bits show the mask).
    assert_eq!(
        ok(&sandbox, None, &format!("cd {OLD} && find . | sort")),
        before
    );
    ok(
        &sandbox,
        None,
        &format!(
            "test -z \"$(ls -A {NEW})\" && test -z \"$(find {OLD}/docker ! -user docker-registry)\" \
             && grep -qx '    rootdirectory: {OLD}' /etc/podsec/registry/config.yml"
        ),
    );
    assert_eq!(
        ok(
            &sandbox,
            None,
            "stat -c '%a %U' /var/lib/containers/storage /var/lib/containers/storage/volumes"
        ),
        "710 root\n710 root\n"
    );
    assert_served_signed(&sandbox);
    let second = ok(&sandbox, None, "podsec-create-services");
    assert!(second.contains(&note), "{second}");
    assert!(second.contains("registry: already running"), "{second}");
    assert_served_signed(&sandbox);
}

#[test]
fn another_program_on_port_80_is_named_and_nginx_does_not_start() {
    let sandbox = started();
    ok(&sandbox, None, &format!("podsec-create-policy {ADDRESS}"));
    sandbox
        .spawn_daemon(
            "web",
            &["python3", "-m", "http.server", "--bind", "0.0.0.0", "80"],
        )
        .unwrap();
    ok(
        &sandbox,
        None,
        "for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:80/ && exit 0; sleep 0.1; done; exit 1",
    );
    let pid = ok(&sandbox, None, "pgrep -x python3").trim().to_string();
    let out = run(&sandbox, None, "podsec-create-services");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "podsec-create-services: port 80 is taken by python3 (pid {pid}), and nginx needs it for \
             registry.local: stop it or move it to another port, then run again; nothing was started"
        )
    );
    ok(
        &sandbox,
        None,
        "! pgrep -x nginx && ! pgrep -x docker-registry && test ! -e /run/podsec/nginx.pid \
         && test ! -e /etc/nginx/conf.d/podsec.conf",
    );
    // The program keeps running; once it is gone, create-services serves.
    ok(&sandbox, None, &format!("kill -0 {pid} && kill {pid}"));
    ok(&sandbox, None, "sleep 0.5; podsec-create-services");
}

/// Issue 13 item 7: nodes still on upstream's naming (U7S_PLATFORM=k8s-c10f2) pull
/// `registry.local/k8s-c10f2/<image>`; load-sign-oci pushes and signs those names too when
/// asked (--legacy-names or PODSEC_LEGACY_NAMES=yes), and only then.
#[test]
fn legacy_k8s_c10f2_names_are_pushed_and_signed_when_asked() {
    let sandbox = started();
    ok(&sandbox, None, &format!("podsec-create-policy {ADDRESS}"));
    ok(&sandbox, None, "podsec-create-services");
    // Upstream's default image maker: the whole registry.
    ok(
        &sandbox,
        None,
        &format!("podsec-create-imagemakeruser --batch --email {EMAIL} imagemaker@registry.local"),
    );
    let archive = archive(&sandbox, &["c10f/pause:3.9", "c10f/etcd:3.5.24"]);
    let load = |extra: &str| {
        ok(
            &sandbox,
            Some("imagemaker"),
            &format!(
                "{extra} podsec-load-sign-oci {} amd64 {EMAIL} registry.local/c10f",
                archive.display()
            ),
        )
    };
    let plain = load("");
    assert!(plain.contains("2 of 2 images pushed and signed"), "{plain}");
    assert!(
        !pull(&sandbox, "registry.local/k8s-c10f2/pause:3.9")
            .status
            .success()
    );

    let flagged = ok(
        &sandbox,
        Some("imagemaker"),
        &format!(
            "podsec-load-sign-oci --legacy-names {} amd64 {EMAIL} registry.local/c10f",
            archive.display()
        ),
    );
    assert!(
        flagged.contains("4 of 4 images pushed and signed"),
        "{flagged}"
    );
    let by_env = load("PODSEC_LEGACY_NAMES=yes");
    assert!(
        by_env.contains("4 of 4 images pushed and signed"),
        "{by_env}"
    );
    // Every name passes the node's signature policy: each has its own signature.
    for image in [
        "registry.local/c10f/pause:3.9",
        "registry.local/k8s-c10f2/pause:3.9",
        "registry.local/k8s-c10f2/etcd:3.5.24",
    ] {
        let out = pull(&sandbox, image);
        assert!(out.status.success(), "{image}: {}", text(&out.stderr));
    }
    ok(
        &sandbox,
        None,
        "ls -d /var/sigstore/sigstore/k8s-c10f2/pause@sha256=*/signature-1",
    );

    // Asked for another platform: refused before anything is pushed.
    let out = run(
        &sandbox,
        Some("imagemaker"),
        &format!(
            "podsec-load-sign-oci --legacy-names {} amd64 {EMAIL} registry.local/p10",
            archive.display()
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exist only for the c10f platform"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !pull(&sandbox, "registry.local/p10/pause:3.9")
            .status
            .success()
    );
}
