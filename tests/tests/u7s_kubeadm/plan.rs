//! Dry runs: the whole plan printed, nothing on the host changed.

use super::*;

#[test]
fn dry_runs_print_the_whole_plan_and_change_nothing() {
    let node = Node::start(&["c10f"]);
    let before = node.changes();
    let init = node.kubeadm_ok(
        &[
            "init",
            "--dry-run",
            "--apiserver-advertise-address",
            ADDRESS,
        ],
        &[],
    );
    let join = node.kubeadm_ok(
        &[
            "join",
            "192.0.2.10:6443",
            "--token",
            TOKEN,
            "--discovery-token-ca-cert-hash",
            HASH,
            "--control-plane",
            "--certificate-key",
            KEY,
            "--apiserver-advertise-address",
            ADDRESS,
            "--dry-run",
        ],
        &[],
    );
    // The installed name `kubeadm` (in /usr/libexec/podsec/u7s/bin) is the same wrapper.
    let links = podsec_tests::fixtures::command_links();
    let wrapper = std::fs::read_link(links.join("podsec-u7s-kubeadm")).unwrap();
    let alias = node.root_ok(&format!(
        "d=$(mktemp -d); ln -s {} $d/kubeadm; $d/kubeadm init --dry-run --apiserver-advertise-address {ADDRESS}; rm -r $d",
        wrapper.display()
    ));
    // Nothing changed anywhere in the sandbox: files, users, temporary files (acceptance 1).
    assert!(before == node.changes(), "a dry run changed the sandbox");
    assert_eq!(alias.lines().next(), init.lines().next());

    for expected in [
        "podsec-u7s-kubeadm init: the plan (dry run: nothing was changed)",
        "v1.33.13 (the minor of the installed kubeadm v1.33.13, newest v1.33 patch in the registry)",
        "registry.local/c10f (registry.local bound in /etc/hosts; platform c10f from /etc/os-release)",
        "create system user u7s-admin",
        // the real kubeadm's image list, each tag found in the real registry
        "registry.local/c10f/etcd:3.5.24-0",
        "registry.local/c10f/coredns:v1.12.0",
        "registry.local/c10f/pause:3.10",
        "registry.local/c10f/flannel:v0.26.7",
        "file /etc/podsec/u7s/kubeadm/init.yaml (root:u7s-admin 0640)",
        "      | kind: InitConfiguration",
        "      |     dataDir: /var/lib/podsec/u7s/etcd",
        "file /etc/kubernetes/audit/policy.yaml (root:root 0644)",
        "file /etc/podsec/u7s/kube-flannel.yml (root:root 0644)",
        "skopeo copy --override-arch amd64 docker://registry.local/c10f/kube-apiserver:v1.33.13",
        "run inside the namespace: /usr/bin/kubeadm init --config /etc/podsec/u7s/kubeadm/init.yaml --upload-certs",
        "Processes:",
        "rootlesskit as u7s-admin",
        "Published ports (host -> u7s namespace):",
        "0.0.0.0:6443:6443/tcp",
        "enable and start u7s.service",
    ] {
        assert!(
            init.contains(expected),
            "init plan lacks {expected:?}:\n{init}"
        );
    }
    for expected in [
        "control-plane node (kubeadm join --control-plane)",
        "      | kind: JoinConfiguration",
        "      |     apiServerEndpoint: 192.0.2.10:6443",
        "      |   certificateKey: 00112233",
        "/usr/bin/kubeadm join --config /etc/podsec/u7s/kubeadm/join.yaml",
        "add the audit flags, mount and volume to /etc/kubernetes/manifests/kube-apiserver.yaml",
    ] {
        assert!(
            join.contains(expected),
            "join plan lacks {expected:?}:\n{join}"
        );
    }
    // §10.2 defect 11: --dry-run never ran anything that mutates; no native kubeadm --dry-run.
    assert!(!init.contains("--dry-run"), "{init}");

    // §10.2 defect 10: no subcommand is the usage, never the deployment, and changes nothing.
    let out = node.kubeadm(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("Usage: kubeadm"));
    let out = node.kubeadm(&["-v", "5"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // §10.2 defect 9: an unknown flag is an error, not part of a command line
    let err = node.kubeadm_fails(&["init", "--ttl", "1h", "--dry-run"], &[]);
    assert!(err.contains("unknown flag --ttl for kubeadm init"), "{err}");
    // §10.2 defect 17: bad input exits non-zero (upstream: exit 0)
    let err = node.kubeadm_fails(&["init", "--dry-run"], &[("U7S_KUBEVERSION", "1.x")]);
    assert!(err.contains("U7S_KUBEVERSION='1.x'"), "{err}");
    // other subcommands need the running namespace, and say so (no 10 blind retries)
    let err = node.kubeadm_fails(&["token", "list"], &[]);
    assert!(err.contains("u7s namespace is not running"), "{err}");
    assert!(
        before == node.changes(),
        "a failed command changed the sandbox"
    );
}
