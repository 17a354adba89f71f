//! The administrator's kubeconfig: which one is current, and replacing it only with --force,
//! backed up.

use super::*;

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
