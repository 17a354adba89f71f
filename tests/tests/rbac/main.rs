//! podsec-k8s-rbac against a real control plane (etcd, kube-apiserver, kube-controller-manager
//! built by scripts/k8s-bins) in a sandbox, checked with the real kubectl: issue 5's acceptance
//! and one regression test per upstream defect of spec §10.3 (26 to 30).

use std::process::Output;

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::k8s::{self, ControlPlane, Options as PlaneOptions};
use podsec_tests::sandbox::{Options, Sandbox};
use serde_json::Value;

mod admin_kubeconfig;
mod bindings;
mod users;

fn started(controller_manager: bool) -> (Sandbox, ControlPlane) {
    // Fail (never skip) when the components are not built.
    k8s::require_control_plane_binaries();
    let sandbox = Sandbox::start(&Options::default()).expect("sandbox start (needs root)");
    let plane = ControlPlane::start(
        &sandbox,
        &PlaneOptions {
            controller_manager,
            ..PlaneOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("control plane: {e:#}"));
    (sandbox, plane)
}

/// A podsec command (through the link farm) as root, or as `user`, with extra environment.
fn podsec(sandbox: &Sandbox, user: Option<&str>, env: &[(&str, &str)], argv: &[&str]) -> Output {
    let mut command = sandbox
        .command(argv[0])
        .args(&argv[1..])
        .env("PATH", &path_with_commands());
    if let Some(user) = user {
        command = command.user(user);
    }
    for (key, value) in env {
        command = command.env(key, value);
    }
    command.output()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(sandbox: &Sandbox, argv: &[&str]) -> String {
    let out = podsec(sandbox, None, &[], argv);
    assert!(out.status.success(), "{argv:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its one-line stderr.
fn fails(sandbox: &Sandbox, env: &[(&str, &str)], argv: &[&str]) -> String {
    let out = podsec(sandbox, None, env, argv);
    assert!(
        !out.status.success(),
        "{argv:?} should have failed: {}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(
        stderr.starts_with(&format!("{}: ", argv[0])) && !stderr.contains('\n'),
        "{argv:?}: not a one-line error: {stderr}"
    );
    stderr
}

fn kubectl_json(sandbox: &Sandbox, plane: &ControlPlane, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&plane.kubectl_ok(sandbox, &all).unwrap()).unwrap()
}

/// `kubectl auth can-i` with the user's own kubeconfig (as that user, ~/.kube/config).
fn can_i(sandbox: &Sandbox, user: &str, args: &[&str]) -> bool {
    let out = sandbox
        .command(k8s::binary("kubectl").unwrap())
        .args(["auth", "can-i"])
        .args(args)
        .user(user)
        .output();
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl auth can-i {args:?} as {user}: {}",
        text(&out)
    );
    answer == "yes"
}

fn stat(sandbox: &Sandbox, path: &str) -> String {
    sandbox
        .sh_ok(&format!("stat -c '%a %U' {path}"))
        .trim()
        .to_string()
}

/// How many requests the API server answered 409 for `resource` `name` (its audit log).
fn conflicts_in_audit_log(sandbox: &Sandbox, resource: &str, name: &str) -> usize {
    sandbox
        .sh_ok(&format!("cat {}", k8s::AUDIT_LOG))
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| {
            event["stage"] == "ResponseComplete"
                && event["objectRef"]["resource"] == resource
                && event["objectRef"]["name"] == name
                && event["responseStatus"]["code"] == 409
        })
        .count()
}

/// A podsec command as root with the variables `unset` removed from its environment (`env -u`),
/// not just emptied.
fn podsec_unset(sandbox: &Sandbox, unset: &[&str], argv: &[&str]) -> Output {
    let mut command = sandbox.command("env").env("PATH", &path_with_commands());
    for name in unset {
        command = command.args(["-u", name]);
    }
    command.args(argv).output()
}

fn ok_unset(sandbox: &Sandbox, unset: &[&str], argv: &[&str]) -> String {
    let out = podsec_unset(sandbox, unset, argv);
    assert!(out.status.success(), "{unset:?} {argv:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok_env(sandbox: &Sandbox, env: &[(&str, &str)], argv: &[&str]) -> String {
    let out = podsec(sandbox, None, env, argv);
    assert!(out.status.success(), "{env:?} {argv:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kubeconfig as kubectl reads it (JSON, data kept).
fn kubeconfig_json(sandbox: &Sandbox, path: &str) -> Value {
    let out = sandbox
        .command(k8s::binary("kubectl").unwrap())
        .args([
            "config",
            "view",
            "--raw",
            "-o",
            "json",
            "--kubeconfig",
            path,
        ])
        .output();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The user's kubeconfig without their credentials (a new key and certificate every time).
fn without_credentials(config: &Value) -> Value {
    let mut config = config.clone();
    for user in config["users"].as_array_mut().unwrap() {
        user["user"] = Value::Null;
    }
    config
}

/// `kubectl --kubeconfig <path> auth whoami` as root: the user name and groups it logs in as.
fn whoami_with(sandbox: &Sandbox, path: &str) -> (String, Vec<String>) {
    let out = sandbox
        .command(k8s::binary("kubectl").unwrap())
        .args(["--kubeconfig", path, "auth", "whoami", "-o", "json"])
        .output();
    assert!(
        out.status.success(),
        "kubectl --kubeconfig {path}: {}",
        text(&out)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let info = &info["status"]["userInfo"];
    let groups = info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    (info["username"].as_str().unwrap().to_string(), groups)
}
