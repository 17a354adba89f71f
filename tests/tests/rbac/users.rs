//! A user end to end (certificate, kubeconfig, bindings, checked with kubectl), and failures that
//! are clear and leave no files behind.

use super::*;

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
