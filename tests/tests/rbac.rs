//! podsec-k8s-rbac against a real control plane (etcd, kube-apiserver, kube-controller-manager
//! built by scripts/k8s-bins) in a sandbox, checked with the real kubectl: issue 5's acceptance
//! and one regression test per upstream defect of spec §10.3 (26 to 30).

use std::process::Output;

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::k8s::{self, ControlPlane, Options as PlaneOptions};
use podsec_tests::sandbox::{Options, Sandbox};
use serde_json::Value;

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

#[test]
fn alice_end_to_end_with_real_kubectl() {
    let (sandbox, plane) = started(true);
    plane
        .kubectl_ok(&sandbox, &["create", "namespace", "ns1"])
        .unwrap();
    plane
        .kubectl_ok(&sandbox, &["create", "namespace", "ns2"])
        .unwrap();
    // reached through alice's group devs (O= of her certificate), not by name
    plane
        .kubectl_ok(
            &sandbox,
            &[
                "-n",
                "ns2",
                "create",
                "rolebinding",
                "rb-devs",
                "--clusterrole=view",
                "--group=devs",
            ],
        )
        .unwrap();
    let admin_before = sandbox.sh_ok("cat /root/.kube/config");

    ok(&sandbox, &["podsec-k8s-rbac-create-user", "alice"]);
    assert_eq!(stat(&sandbox, "/home/alice/.kube"), "700 alice");
    assert!(
        sandbox
            .sh_ok("id -nG alice")
            .split_whitespace()
            .any(|g| g == "k8s")
    );

    let out = ok(
        &sandbox,
        &["podsec-k8s-rbac-create-kubeconfig", "alice", "devs"],
    );
    assert!(out.contains("certificate valid until"), "{out}");
    assert_eq!(stat(&sandbox, "/home/alice/.kube/config"), "600 alice");
    // only the kubeconfig: no key, csr or ca.crt files beside it (§10.3 27)
    assert_eq!(sandbox.sh_ok("ls -A /home/alice/.kube").trim(), "config");
    // the admin's kubeconfig never gets the user's key (§10.3 27)
    assert_eq!(sandbox.sh_ok("cat /root/.kube/config"), admin_before);
    // the CSR was issued by the real signer and approved through the approval subresource
    let csr = kubectl_json(&sandbox, &plane, &["get", "csr", "alice"]);
    assert_eq!(
        csr["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client"
    );
    assert_eq!(csr["spec"]["usages"], serde_json::json!(["client auth"]));
    assert_eq!(csr["status"]["conditions"][0]["type"], "Approved");

    // real kubectl with alice's kubeconfig: alice in group devs
    let whoami = sandbox
        .command(k8s::binary("kubectl").unwrap())
        .args(["auth", "whoami", "-o", "json"])
        .user("alice")
        .output();
    assert!(whoami.status.success(), "{}", text(&whoami));
    let whoami: Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], "alice");
    let groups = whoami["status"]["userInfo"]["groups"].as_array().unwrap();
    assert!(groups.contains(&Value::from("devs")), "{groups:?}");
    assert!(!can_i(&sandbox, "alice", &["get", "pods", "-n", "ns1"]));

    let out = ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "role=clusterrole",
            "view",
            "rb-view",
            "ns1",
        ],
    );
    assert!(out.contains("created"), "{out}");
    assert!(can_i(&sandbox, "alice", &["get", "pods", "-n", "ns1"]));
    assert!(!can_i(&sandbox, "alice", &["get", "pods", "-n", "default"]));
    assert!(!can_i(&sandbox, "alice", &["create", "pods", "-n", "ns1"]));
    // group devs reaches ns2
    assert!(can_i(&sandbox, "alice", &["get", "pods", "-n", "ns2"]));

    let report: Value =
        serde_json::from_str(&ok(&sandbox, &["podsec-k8s-rbac-get-userroles", "alice"])).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"alice": {"clusterRoles": [], "roles": {"namespaces": [
            {"ns1": [{"bindName": "rb-view", "roleType": "ClusterRole", "roleName": "view",
                      "unbindCmd": "podsec-k8s-rbac-unbindrole alice role view rb-view ns1"}]},
            {"ns2": [{"bindName": "rb-devs", "roleType": "ClusterRole", "roleName": "view",
                      "viaGroups": ["devs"]}]}
        ]}}})
    );

    // the printed unbindCmd works as it is
    let unbind = report["alice"]["roles"]["namespaces"][0]["ns1"][0]["unbindCmd"]
        .as_str()
        .unwrap()
        .to_string();
    let words: Vec<&str> = unbind.split_whitespace().collect();
    let out = ok(&sandbox, &words);
    assert!(out.contains("deleted"), "{out}");
    let gone = plane
        .kubectl(&sandbox)
        .unwrap()
        .args(["-n", "ns1", "get", "rolebinding", "rb-view"])
        .output();
    assert!(!gone.status.success(), "the empty binding is still there");
    assert!(!can_i(&sandbox, "alice", &["get", "pods", "-n", "ns1"]));
    let report: Value =
        serde_json::from_str(&ok(&sandbox, &["podsec-k8s-rbac-get-userroles", "alice"])).unwrap();
    assert_eq!(
        report["alice"]["roles"]["namespaces"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // an existing CSR is kept unless --replace-csr (§10.3 27)
    let err = fails(
        &sandbox,
        &[],
        &["podsec-k8s-rbac-create-kubeconfig", "alice", "devs"],
    );
    assert!(err.contains("--replace-csr"), "{err}");
    let out = ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "alice",
            "devs",
            "ops",
            "--replace-csr",
        ],
    );
    assert!(out.contains("devs,ops"), "{out}");
    let whoami = sandbox
        .command(k8s::binary("kubectl").unwrap())
        .args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"])
        .user("alice")
        .output();
    assert!(
        String::from_utf8_lossy(&whoami.stdout).contains("ops"),
        "{}",
        text(&whoami)
    );
}

#[test]
fn bindings_keep_their_role_and_other_subjects() {
    let (sandbox, plane) = started(true);
    let k = |args: &[&str]| plane.kubectl_ok(&sandbox, args).unwrap();
    k(&["create", "namespace", "ns1"]);
    k(&[
        "-n",
        "ns1",
        "create",
        "rolebinding",
        "rb-edit",
        "--clusterrole=edit",
        "--user=bob",
    ]);
    let subjects = |ns: &str, name: &str| {
        kubectl_json(&sandbox, &plane, &["-n", ns, "get", "rolebinding", name])["subjects"].clone()
    };

    // a differing roleRef is an error, not a silent grant (§10.3 26)
    let before = subjects("ns1", "rb-edit");
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "role=clusterrole",
            "view",
            "rb-edit",
            "ns1",
        ],
    );
    assert!(err.contains("refers to ClusterRole 'edit'"), "{err}");
    assert_eq!(subjects("ns1", "rb-edit"), before);

    // unbinding a user who is not bound fails and changes nothing (§10.3 26)
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-unbindrole",
            "alice",
            "role",
            "edit",
            "rb-edit",
            "ns1",
        ],
    );
    assert!(err.contains("is not bound"), "{err}");
    assert_eq!(subjects("ns1", "rb-edit"), before);

    // adding to a binding of the same role keeps the other subjects; twice is harmless
    ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "role=clusterrole",
            "edit",
            "rb-edit",
            "ns1",
        ],
    );
    let out = ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "role=clusterrole",
            "edit",
            "rb-edit",
            "ns1",
        ],
    );
    assert!(out.contains("already bound"), "{out}");
    let names: Vec<String> = subjects("ns1", "rb-edit")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["bob", "alice"]);

    // only the User subject goes; Group and ServiceAccount alice stay (§10.3 26)
    k(&[
        "-n",
        "ns1",
        "create",
        "rolebinding",
        "rb-mixed",
        "--clusterrole=view",
        "--user=alice",
        "--group=alice",
        "--serviceaccount=ns1:alice",
    ]);
    ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-unbindrole",
            "alice",
            "role",
            "view",
            "rb-mixed",
            "ns1",
        ],
    );
    let kinds: Vec<String> = subjects("ns1", "rb-mixed")
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(kinds, ["Group:alice", "ServiceAccount:alice"]);
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-unbindrole",
            "alice",
            "role",
            "view",
            "rb-mixed",
            "ns1",
        ],
    );
    assert!(err.contains("is not bound"), "{err}");

    // unbind checks the role name too, and `role=clusterrole` is accepted
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-unbindrole",
            "alice",
            "role",
            "view",
            "rb-edit",
            "ns1",
        ],
    );
    assert!(err.contains("refers to ClusterRole 'edit'"), "{err}");
    ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-unbindrole",
            "alice",
            "role=clusterrole",
            "edit",
            "rb-edit",
            "ns1",
        ],
    );

    // system: users are bound by their full name (§10.3 26); no local account is needed (§10.3 30)
    ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-bindrole",
            "system:kube-proxy",
            "clusterrole",
            "view",
            "crb-proxy",
        ],
    );
    let crb = kubectl_json(
        &sandbox,
        &plane,
        &["get", "clusterrolebinding", "crb-proxy"],
    );
    assert_eq!(crb["subjects"][0]["name"], "system:kube-proxy");
    ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-bindrole",
            "remote-user",
            "clusterrole",
            "system:auth-delegator",
            "crb-remote",
        ],
    );

    // type and namespace rules exit non-zero (§10.3 26)
    for argv in [
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "Role",
            "view",
            "rb",
            "ns1",
        ][..],
        &[
            "podsec-k8s-rbac-unbindrole",
            "alice",
            "roles",
            "view",
            "rb",
            "ns1",
        ],
        &["podsec-k8s-rbac-unbindrole", "alice", "role", "view", "rb"],
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "clusterrole",
            "view",
            "crb",
            "ns1",
        ],
    ] {
        fails(&sandbox, &[], argv);
    }
    // a missing role or namespace is an error too (upstream exited 0)
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "role",
            "nope",
            "rb",
            "ns1",
        ],
    );
    assert!(
        err.contains("Role 'nope' in namespace 'ns1' does not exist"),
        "{err}"
    );
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "role=clusterrole",
            "view",
            "rb",
            "nons",
        ],
    );
    assert!(err.contains("namespace 'nons' does not exist"), "{err}");

    // get-userroles: no duplicates, rules of a Role from its own namespace, group grants marked
    // (§10.3 29)
    k(&["create", "namespace", "ns2"]);
    k(&[
        "-n",
        "ns2",
        "create",
        "role",
        "pod-reader",
        "--verb=get",
        "--resource=pods",
    ]);
    k(&[
        "-n",
        "default",
        "create",
        "role",
        "pod-reader",
        "--verb=delete",
        "--resource=secrets",
    ]);
    k(&[
        "-n",
        "ns2",
        "create",
        "rolebinding",
        "rb-twice",
        "--role=pod-reader",
        "--user=carol",
        "--user=carol",
    ]);
    k(&[
        "-n",
        "ns2",
        "create",
        "rolebinding",
        "rb-ops",
        "--clusterrole=view",
        "--group=ops",
    ]);
    let report: Value = serde_json::from_str(&ok(
        &sandbox,
        &[
            "podsec-k8s-rbac-get-userroles",
            "carol",
            "showRules",
            "--group",
            "ops",
        ],
    ))
    .unwrap();
    let ns2 = report["carol"]["roles"]["namespaces"][0]["ns2"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(ns2.len(), 2, "{report}");
    assert_eq!(ns2[0]["bindName"], "rb-ops");
    assert_eq!(ns2[0]["viaGroups"], serde_json::json!(["ops"]));
    assert!(ns2[0].get("unbindCmd").is_none());
    assert_eq!(ns2[1]["bindName"], "rb-twice");
    assert_eq!(ns2[1]["rules"][0]["verbs"], serde_json::json!(["get"]));
    assert_eq!(ns2[1]["rules"][0]["resources"], serde_json::json!(["pods"]));
    let err = fails(
        &sandbox,
        &[],
        &["podsec-k8s-rbac-get-userroles", "carol", "showrules"],
    );
    assert!(err.contains("showRules"), "{err}");
    fails(&sandbox, &[], &["podsec-k8s-rbac-get-userroles"]);
}

#[test]
fn failures_are_clear_and_leave_no_files() {
    // No kube-controller-manager: approved CSRs are never signed.
    let (sandbox, plane) = started(false);
    ok(&sandbox, &["podsec-k8s-rbac-create-user", "carol"]);
    let no_config = |sandbox: &Sandbox| {
        assert_eq!(
            sandbox.sh_ok("ls -A /home/carol/.kube").trim(),
            "",
            "files left behind"
        );
    };

    // the wait for the certificate is bounded (§10.3 27: upstream read it at once)
    let err = fails(
        &sandbox,
        &[],
        &["podsec-k8s-rbac-create-kubeconfig", "carol", "--wait", "3"],
    );
    assert!(
        err.contains("no certificate was issued within 3 s"),
        "{err}"
    );
    no_config(&sandbox);
    let err = fails(
        &sandbox,
        &[],
        &["podsec-k8s-rbac-create-kubeconfig", "carol", "--wait", "3"],
    );
    assert!(err.contains("exists already"), "{err}");
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "carol",
            "--wait",
            "2",
            "--replace-csr",
        ],
    );
    assert!(err.contains("no certificate was issued"), "{err}");
    no_config(&sandbox);

    // API down: nothing listens on that port
    let share = sandbox.share();
    let admin = std::fs::read_to_string(plane.admin_kubeconfig()).unwrap();
    let down = share.join("down.conf");
    std::fs::write(
        &down,
        admin.replace(&plane.server, "https://127.0.0.1:6999"),
    )
    .unwrap();
    let down_env = [("KUBECONFIG", down.to_str().unwrap())];
    for argv in [
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "clusterrole",
            "view",
            "crb",
        ][..],
        &[
            "podsec-k8s-rbac-unbindrole",
            "alice",
            "clusterrole",
            "view",
            "crb",
        ],
        &["podsec-k8s-rbac-get-userroles", "alice"],
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "carol",
            "--replace-csr",
        ],
    ] {
        let err = fails(&sandbox, &down_env, argv);
        assert!(
            err.contains("cannot talk to the API server") && err.contains("refused"),
            "{err}"
        );
    }
    no_config(&sandbox);

    // TLS mismatch: the kubeconfig trusts another CA
    k8s::make_ca(&share, "other-ca", "somebody-else").unwrap();
    let other: Value = serde_json::from_str(&admin).unwrap();
    let mut other = other;
    other["clusters"][0]["cluster"]["certificate-authority-data"] = Value::from(
        k8s::base64_encode(&std::fs::read(share.join("other-ca.crt")).unwrap()),
    );
    let mismatch = share.join("mismatch.conf");
    std::fs::write(&mismatch, other.to_string()).unwrap();
    let mismatch_env = [("KUBECONFIG", mismatch.to_str().unwrap())];
    for argv in [
        &[
            "podsec-k8s-rbac-bindrole",
            "alice",
            "clusterrole",
            "view",
            "crb",
        ][..],
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "carol",
            "--replace-csr",
        ],
    ] {
        let err = fails(&sandbox, &mismatch_env, argv);
        assert!(err.to_lowercase().contains("certificate"), "{err}");
    }
    no_config(&sandbox);

    // invalid names are refused before any request (the API is down here: the message is the
    // name's, not the connection's) (§10.3 30)
    for (argv, what) in [
        (
            &["podsec-k8s-rbac-create-user", "Bad Name"][..],
            "invalid user name 'Bad Name'",
        ),
        (
            &[
                "podsec-k8s-rbac-create-kubeconfig",
                "carol",
                "system:masters",
            ],
            "refusing group 'system:masters'",
        ),
        (
            &["podsec-k8s-rbac-create-kubeconfig", "../carol"],
            "invalid user name",
        ),
        (
            &[
                "podsec-k8s-rbac-bindrole",
                "alice",
                "role",
                "view",
                "a/b",
                "ns1",
            ],
            "invalid binding name 'a/b'",
        ),
        (
            &[
                "podsec-k8s-rbac-bindrole",
                "alice",
                "role",
                "view",
                "rb",
                "NS1",
            ],
            "invalid namespace 'NS1'",
        ),
        (
            &[
                "podsec-k8s-rbac-unbindrole",
                "al;ice",
                "role",
                "view",
                "rb",
                "ns1",
            ],
            "invalid user name",
        ),
        (
            &["podsec-k8s-rbac-get-userroles", "alice$(id)"],
            "invalid user name",
        ),
    ] {
        let err = fails(&sandbox, &down_env, argv);
        assert!(err.contains(what), "{argv:?}: {err}");
    }
    no_config(&sandbox);

    // root never follows a symlink planted in the user's home
    sandbox.sh_ok("mkdir -m 700 /root/victim && rmdir /home/carol/.kube && ln -s /root/victim /home/carol/.kube");
    let err = fails(
        &sandbox,
        &[],
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "carol",
            "--replace-csr",
            "--wait",
            "1",
        ],
    );
    assert!(err.contains("refusing to follow"), "{err}");
    assert_eq!(sandbox.sh_ok("ls -A /root/victim").trim(), "");
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

#[test]
fn concurrent_binds_lose_no_subject() {
    // bindrole is read-modify-write: writers racing on one binding get 409s (AlreadyExists on the
    // create, Conflict on the update) and must re-read and retry, so that every user ends up
    // bound. Rounds go on until the API server has answered at least one 409, so the retry path
    // is known to have run.
    const WRITERS: usize = 8;
    const MAX_ROUNDS: usize = 6;
    let (sandbox, plane) = started(false);
    plane
        .kubectl_ok(&sandbox, &["create", "namespace", "ns1"])
        .unwrap();
    let users: Vec<String> = (1..=WRITERS).map(|i| format!("racer{i}")).collect();
    let (mut conflicts, mut rounds) = (0, 0);
    let bind_or_unbind = |command: &str, user: &str, binding: &str| {
        podsec(
            &sandbox,
            None,
            &[],
            &[command, user, "role=clusterrole", "view", binding, "ns1"],
        )
    };
    while rounds < MAX_ROUNDS && (conflicts == 0 || rounds < 2) {
        let binding = format!("rb-race-{rounds}");
        rounds += 1;
        let outputs = concurrently(&users, |user| {
            bind_or_unbind("podsec-k8s-rbac-bindrole", user, &binding)
        });
        for (user, out) in &outputs {
            assert!(
                out.status.success(),
                "bindrole {user} {binding}: {}",
                text(out)
            );
        }
        let object = kubectl_json(
            &sandbox,
            &plane,
            &["-n", "ns1", "get", "rolebinding", &binding],
        );
        let mut bound: Vec<String> = object["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["kind"], "User", "{s}");
                s["name"].as_str().unwrap().to_string()
            })
            .collect();
        bound.sort();
        let mut expected = users.clone();
        expected.sort();
        assert_eq!(bound, expected, "{binding}: a concurrent bind was lost");
        assert_eq!(object["roleRef"]["name"], "view");
        conflicts += conflicts_in_audit_log(&sandbox, "rolebindings", &binding);
    }
    assert!(
        conflicts > 0,
        "{rounds} rounds of {WRITERS} concurrent bindrole never conflicted: the retry path was not exercised"
    );

    // The same race the other way: every unbind succeeds, none takes another user's subject
    // with it, and the binding goes once it is empty (a delete whose preconditions fail because
    // another writer changed the binding meanwhile is retried too).
    let binding = format!("rb-race-{}", rounds - 1);
    let before = conflicts_in_audit_log(&sandbox, "rolebindings", &binding);
    let outputs = concurrently(&users, |user| {
        bind_or_unbind("podsec-k8s-rbac-unbindrole", user, &binding)
    });
    for (user, out) in &outputs {
        assert!(
            out.status.success(),
            "unbindrole {user} {binding}: {}",
            text(out)
        );
    }
    let deleted = outputs
        .iter()
        .filter(|(_, out)| String::from_utf8_lossy(&out.stdout).contains("was deleted"))
        .count();
    assert_eq!(deleted, 1, "exactly the last unbind deletes the binding");
    let gone = plane
        .kubectl(&sandbox)
        .unwrap()
        .args(["-n", "ns1", "get", "rolebinding", &binding])
        .output();
    assert!(!gone.status.success(), "the empty binding is still there");
    eprintln!(
        "bindrole: {rounds} rounds, {conflicts} conflicts retried; unbindrole: {} conflicts retried",
        conflicts_in_audit_log(&sandbox, "rolebindings", &binding) - before
    );
}

/// Runs `run` for every user at once (threads released together); the outputs in order.
fn concurrently<F>(users: &[String], run: F) -> Vec<(String, Output)>
where
    F: Fn(&str) -> Output + Sync,
{
    let barrier = std::sync::Barrier::new(users.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .iter()
            .map(|user| {
                let (barrier, run) = (&barrier, &run);
                scope.spawn(move || {
                    barrier.wait();
                    (user.clone(), run(user))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
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

#[test]
fn the_admin_kubeconfig_is_the_current_context_of_the_first_one_found() {
    let (sandbox, plane) = started(true);
    let share = sandbox.share();
    ok(&sandbox, &["podsec-k8s-rbac-create-user", "bob"]);
    const BOB: &str = "/home/bob/.kube/config";
    let ca = std::fs::read(plane.ca_cert()).unwrap();
    let read = |name: &str| k8s::base64_encode(&std::fs::read(plane.dir.join(name)).unwrap());

    // Several clusters, users and contexts; the current context is not the first one. The first
    // cluster is unreachable and has another CA (upstream took clusters[0]); the current one is
    // the API server under another name (localhost) with its CA in a file beside the kubeconfig
    // (a relative path, as kubectl resolves it).
    k8s::make_ca(&share, "decoy-ca", "decoy").unwrap();
    std::fs::write(share.join("multi-ca.crt"), &ca).unwrap();
    let multi = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [
            {"name": "decoy", "cluster": {"server": "https://127.0.0.1:6999",
                "certificate-authority-data":
                    k8s::base64_encode(&std::fs::read(share.join("decoy-ca.crt")).unwrap())}},
            {"name": "real", "cluster": {"server": "https://localhost:6443",
                "certificate-authority": "multi-ca.crt"}},
        ],
        "users": [
            {"name": "decoy-admin", "user": {"token": "not-a-token"}},
            {"name": "kubernetes-admin", "user": {
                "client-certificate-data": read("admin.crt"),
                "client-key-data": read("admin.key")}},
        ],
        "contexts": [
            {"name": "decoy", "context": {"cluster": "decoy", "user": "decoy-admin"}},
            {"name": "real", "context": {"cluster": "real", "user": "kubernetes-admin"}},
        ],
        "current-context": "real",
    });
    let multi_path = share.join("multi.conf");
    std::fs::write(&multi_path, multi.to_string()).unwrap();
    let multi_env = [("KUBECONFIG", multi_path.to_str().unwrap())];

    // user@remote_user (upstream: the account to scp ca.crt from) is accepted; the remote
    // account need not exist here
    let out = ok_env(
        &sandbox,
        &multi_env,
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "bob@remote-user",
            "devs",
        ],
    );
    assert!(
        out.contains("cluster real at https://localhost:6443"),
        "{out}"
    );
    let remote_form = kubeconfig_json(&sandbox, BOB);
    assert_eq!(
        remote_form["clusters"],
        serde_json::json!([{"name": "real", "cluster": {
            "server": "https://localhost:6443",
            "certificate-authority-data": k8s::base64_encode(&ca)}}]),
        "{remote_form}"
    );
    assert_eq!(remote_form["current-context"], "default");
    assert_eq!(
        remote_form["contexts"],
        serde_json::json!([{"name": "default", "context": {"cluster": "real", "user": "bob"}}])
    );
    assert_eq!(remote_form["users"][0]["name"], "bob");
    let (name, groups) = whoami_with(&sandbox, BOB);
    assert_eq!(name, "bob");
    assert!(groups.contains(&"devs".to_string()), "{groups:?}");
    assert_eq!(sandbox.sh_ok("ls -A /home/bob/.kube").trim(), "config");
    // the CSR is the user's, without the remote part
    let csr = kubectl_json(&sandbox, &plane, &["get", "csr", "bob"]);
    assert_eq!(csr["status"]["conditions"][0]["type"], "Approved");

    // the plain form gives the same kubeconfig (but for the new key and certificate)
    ok_env(
        &sandbox,
        &multi_env,
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "bob",
            "devs",
            "--replace-csr",
        ],
    );
    let plain = kubeconfig_json(&sandbox, BOB);
    assert_eq!(
        without_credentials(&plain),
        without_credentials(&remote_form)
    );
    assert_ne!(plain["users"][0]["user"], remote_form["users"][0]["user"]);
    assert_eq!(whoami_with(&sandbox, BOB).0, "bob");

    // KUBECONFIG is a list, merged as kubectl merges it: files that do not exist are skipped;
    // none at all is an error.
    let missing = share.join("missing.conf").display().to_string();
    let list = format!("{missing}:{}", multi_path.display());
    ok_env(
        &sandbox,
        &[("KUBECONFIG", &list)],
        &["podsec-k8s-rbac-get-userroles", "bob"],
    );
    let err = fails(
        &sandbox,
        &[("KUBECONFIG", &missing)],
        &["podsec-k8s-rbac-get-userroles", "bob"],
    );
    assert!(
        err.contains(&format!("KUBECONFIG={missing}: no kubeconfig")),
        "{err}"
    );

    // An empty remote part is refused before any request.
    let err = fails(
        &sandbox,
        &multi_env,
        &["podsec-k8s-rbac-create-kubeconfig", "bob@", "--replace-csr"],
    );
    assert!(err.contains("invalid remote user '' in 'bob@'"), "{err}");

    // Without KUBECONFIG: ~/.kube/config (here the API server as localhost), found through
    // HOME or, without HOME, root's home in passwd.
    let home_conf = share.join("home.conf");
    let admin = std::fs::read_to_string(plane.admin_kubeconfig()).unwrap();
    std::fs::write(
        &home_conf,
        admin.replace(&plane.server, "https://localhost:6443"),
    )
    .unwrap();
    sandbox.sh_ok(&format!(
        "install -m 0600 {} /root/.kube/config",
        home_conf.display()
    ));
    for unset in [&["KUBECONFIG"][..], &["KUBECONFIG", "HOME"]] {
        let out = ok_unset(
            &sandbox,
            unset,
            &["podsec-k8s-rbac-create-kubeconfig", "bob", "--replace-csr"],
        );
        assert!(
            out.contains("cluster kubernetes at https://localhost:6443"),
            "{unset:?}: {out}"
        );
    }

    // Neither KUBECONFIG nor ~/.kube/config: /etc/kubernetes/admin.conf.
    sandbox.sh_ok("rm /root/.kube/config");
    let out = ok_unset(
        &sandbox,
        &["KUBECONFIG"],
        &[
            "podsec-k8s-rbac-create-kubeconfig",
            "bob",
            "ops",
            "--replace-csr",
        ],
    );
    assert!(
        out.contains(&format!("cluster kubernetes at {}", plane.server)),
        "{out}"
    );
    let fallback = kubeconfig_json(&sandbox, BOB);
    assert_eq!(fallback["clusters"][0]["cluster"]["server"], plane.server);
    let (name, groups) = whoami_with(&sandbox, BOB);
    assert_eq!(name, "bob");
    assert!(groups.contains(&"ops".to_string()), "{groups:?}");
    ok_unset(
        &sandbox,
        &["KUBECONFIG"],
        &[
            "podsec-k8s-rbac-bindrole",
            "bob",
            "role=clusterrole",
            "view",
            "rb-bob",
            "default",
        ],
    );
    assert!(can_i(&sandbox, "bob", &["get", "pods", "-n", "default"]));
    let report: Value = serde_json::from_str(&ok_unset(
        &sandbox,
        &["KUBECONFIG"],
        &["podsec-k8s-rbac-get-userroles", "bob"],
    ))
    .unwrap();
    assert_eq!(
        report["bob"]["roles"]["namespaces"][0]["default"][0]["bindName"],
        "rb-bob"
    );

    // None at all: a clear error naming what was tried.
    sandbox.sh_ok("mv /etc/kubernetes/admin.conf /etc/kubernetes/admin.conf.away");
    let out = podsec_unset(
        &sandbox,
        &["KUBECONFIG"],
        &["podsec-k8s-rbac-get-userroles", "bob"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no kubeconfig: set KUBECONFIG or provide /root/.kube/config (tried /root/.kube/config, /etc/kubernetes/admin.conf)"
        ),
        "{err}"
    );
    sandbox.sh_ok("mv /etc/kubernetes/admin.conf.away /etc/kubernetes/admin.conf");
}

#[test]
fn an_admin_kubeconfig_is_replaced_only_with_force_and_backed_up() {
    let (sandbox, plane) = started(true);
    let admin_before = sandbox.sh_ok("cat /root/.kube/config");
    let err = fails(
        &sandbox,
        &[],
        &["podsec-k8s-rbac-create-kubeconfig", "root"],
    );
    assert_eq!(
        err,
        "podsec-k8s-rbac-create-kubeconfig: /root/.kube/config exists and may be an administrator's kubeconfig: add --force to replace it (it is kept as config.podsec-backup.<time>)"
    );
    assert_eq!(sandbox.sh_ok("cat /root/.kube/config"), admin_before);
    let csrs = plane
        .kubectl_ok(&sandbox, &["get", "csr", "-o", "name"])
        .unwrap();
    assert!(
        !csrs.contains("/root"),
        "a CSR was made before the refusal: {csrs}"
    );
    let out = ok(
        &sandbox,
        &["podsec-k8s-rbac-create-kubeconfig", "root", "--force"],
    );
    assert!(
        out.contains("the previous /root/.kube/config is kept as config.podsec-backup."),
        "{out}"
    );
    assert_eq!(
        sandbox.sh_ok("cat /root/.kube/config.podsec-backup.*"),
        admin_before
    );
    assert_eq!(stat(&sandbox, "/root/.kube/config"), "600 root");
    assert_ne!(sandbox.sh_ok("cat /root/.kube/config"), admin_before);
}
