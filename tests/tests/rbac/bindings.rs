//! Role bindings: a binding keeps its role and its other subjects, and concurrent binds lose none.

use super::*;

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
