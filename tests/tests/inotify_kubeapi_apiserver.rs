//! podsec-inotify-check-kubeapi against the audit log of a real kube-apiserver (built by
//! scripts/k8s-bins) running the podsec audit policy (podsec-k8s/data/audit/policy.yaml, the
//! k8s package's file): an RBAC user made by podsec-k8s-rbac-create-user/-create-kubeconfig is
//! refused by the real RBAC authorizer, a client with a bogus token by the real authenticator,
//! and `--once` must record exactly the refused requests, as upstream's jq filter selects them
//! from the same log.

use podsec_tests::fixtures::path_with_commands;
use podsec_tests::k8s::{self, AUDIT_LOG, ControlPlane, Options as PlaneOptions};
use podsec_tests::sandbox::{Options, Sandbox};

const COMMAND: &str = "podsec-inotify-check-kubeapi";
const FORBIDDEN: &str = "/var/lib/podsec/u7s/log/kubeapi/forbidden.log";
/// Upstream's filter (podsec-inotify-check-kubeapi -d), the oracle.
const JQ_FILTER: &str = "select(.responseStatus.code >= 400) | [.requestReceivedTimestamp, .sourceIPs[0], .responseStatus.message]";

fn ok(sandbox: &Sandbox, user: Option<&str>, argv: &[&str]) -> String {
    let mut command = sandbox
        .command(argv[0])
        .args(&argv[1..])
        .env("PATH", &path_with_commands());
    if let Some(user) = user {
        command = command.user(user);
    }
    let out = command.output();
    assert!(
        out.status.success(),
        "{argv:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn once_records_exactly_the_requests_a_real_apiserver_refused() {
    k8s::require_control_plane_binaries();
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    sandbox.sh_ok("mkdir -p /run/systemd/journal");
    sandbox
        .spawn_daemon("journald", &["/lib/systemd/systemd-journald"])
        .unwrap();
    let policy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../podsec-k8s/data/audit/policy.yaml"),
    )
    .unwrap();
    let plane = ControlPlane::start(
        &sandbox,
        &PlaneOptions {
            controller_manager: true,
            audit_policy: Some(policy),
        },
    )
    .unwrap_or_else(|e| panic!("control plane: {e:#}"));

    // An RBAC user with a client certificate signed through the CSR API, and no role.
    ok(&sandbox, None, &["podsec-k8s-rbac-create-user", "alice"]);
    ok(
        &sandbox,
        None,
        &["podsec-k8s-rbac-create-kubeconfig", "alice"],
    );
    let kubectl = k8s::binary("kubectl").unwrap().display().to_string();
    let whoami = ok(
        &sandbox,
        Some("alice"),
        &[
            &kubectl,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(whoami, "alice");
    // Four requests RBAC refuses (403), one the authenticator refuses (401).
    let refused = [
        (
            &["get", "pods", "-n", "default"][..],
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
        ),
        (
            &["get", "secrets", "-n", "kube-system"][..],
            "secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"kube-system\"",
        ),
        (
            &["get", "nodes"][..],
            "nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope",
        ),
        (
            &["create", "namespace", "alices-own"][..],
            "namespaces is forbidden: User \"alice\" cannot create resource \"namespaces\" in API group \"\" at the cluster scope",
        ),
    ];
    for (args, _) in &refused {
        let out = sandbox.command(&kubectl).args(*args).user("alice").output();
        assert!(!out.status.success(), "{args:?} was allowed");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("forbidden"),
            "{args:?}: {out:?}"
        );
    }
    let status = sandbox.sh_ok(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' --cacert {} -H 'Authorization: Bearer not-a-token' {}/api/v1/namespaces",
        plane.ca_cert().display(),
        plane.server
    ));
    assert_eq!(status, "401");

    // The apiserver writes an event when the response is complete: wait for the last one.
    sandbox.sh_ok(&format!(
        "for i in $(seq 100); do \
           [ $(jq -c 'select(.responseStatus.code == 403 and .user.username == \"alice\")' {AUDIT_LOG} | wc -l) -ge 4 ] && \
           [ $(jq -c 'select(.responseStatus.code == 401)' {AUDIT_LOG} | wc -l) -ge 1 ] && exit 0; sleep 0.1; done; exit 1"
    ));
    ok(&sandbox, None, &[COMMAND, "--once"]);
    let recorded = sandbox.sh_ok(&format!("cat {FORBIDDEN}"));
    let expected = sandbox.sh_ok(&format!("jq -c '{JQ_FILTER}' {AUDIT_LOG}"));
    // The log holds more than this test's requests (the RBAC commands' own lookups, answered
    // 404); what counts is that both readers agree on the same real log, line for line, and the
    // refusals of alice are there once each.
    assert!(!expected.is_empty());
    let records: Vec<serde_json::Value> = recorded
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let jq: Vec<serde_json::Value> = expected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records, jq, "forbidden.log differs from upstream's filter");
    assert_eq!(recorded, expected, "not byte-identical to jq -c");
    let alice: Vec<&str> = records
        .iter()
        .filter_map(|r| r[2].as_str())
        .filter(|m| m.contains("User \"alice\""))
        .collect();
    let wanted: Vec<&str> = refused.iter().map(|(_, message)| *message).collect();
    assert_eq!(alice, wanted);
    for record in &records {
        assert_eq!(record[1], "127.0.0.1", "{record}");
    }
    // the 401 is there too, and journald has each refusal as a Critical line naming it
    let journal = sandbox.sh_ok(&format!(
        "for i in $(seq 50); do journalctl -t {COMMAND} --no-pager -o cat | grep -q '(401)' && break; sleep 0.1; done; journalctl -t {COMMAND} --no-pager -o cat"
    ));
    for message in &wanted {
        let escaped = message.replace('"', "\\\"");
        assert_eq!(
            journal
                .lines()
                .filter(|l| l.starts_with("Critical: [")
                    && l.contains(&escaped)
                    && l.ends_with("access denied (403)"))
                .count(),
            1,
            "{message} in\n{journal}"
        );
    }
    assert_eq!(
        journal
            .lines()
            .filter(|l| l.ends_with("access denied (401)"))
            .count(),
        1,
        "{journal}"
    );

    // Exactly once: a second run adds nothing.
    ok(&sandbox, None, &[COMMAND, "--once"]);
    assert_eq!(sandbox.sh_ok(&format!("cat {FORBIDDEN}")), recorded);

    // An audit directory others may write: the policy of the running API server could be
    // replaced. The run fails and journald has the Critical line; made safe, it passes again.
    sandbox.sh_ok("chmod 0777 /etc/kubernetes/audit");
    let out = sandbox
        .command(COMMAND)
        .arg("--once")
        .env("PATH", &path_with_commands())
        .output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let journal = sandbox.sh_ok(&format!(
        "for i in $(seq 50); do journalctl -t {COMMAND} --no-pager -o cat | grep -q 'not as podsec' && break; sleep 0.1; done; journalctl -t {COMMAND} --no-pager -o cat"
    ));
    assert!(
        journal.lines().any(|line| line.starts_with(
            "Critical: the API server's audit is not as podsec set it up: /etc/kubernetes/audit is not root's protected directory"
        )),
        "{journal}"
    );
    sandbox.sh_ok("chmod 0755 /etc/kubernetes/audit");
    ok(&sandbox, None, &[COMMAND, "--once"]);
}
