//! u7s.service under a real systemd as PID 1 (systemd-nspawn, `podsec_tests::systemd`) with real
//! logind, u7s-admin's real user manager, rootlesskit, slirp4netns and newuidmap; CRI-O and the
//! kubelet are the recording stand-ins of tests/standins (the real node is tested elsewhere).

use std::time::Duration;

use podsec_tests::systemd::Machine;
use podsec_tests::u7s::{ADMIN_PATH, NODE_IP, NodeSpec, USER, config_text, standins};

/// u7s-admin with subordinate ids, the stand-ins, the node configuration, the kubelet
/// configuration kubeadm would have written; /dev/net/tun open to
/// everyone as on a host where slirp4netns runs rootless (here it is 0600).
fn node(machine: &Machine) -> u32 {
    machine.install_packages();
    machine.add_address(&format!("{NODE_IP}/32"));
    let uid: u32 = machine
        .sh_ok(&format!(
            "set -e
install -m 0755 {standins}/crio /usr/bin/crio
install -m 0755 {standins}/kubelet /usr/bin/kubelet
chmod 0666 /dev/net/tun
useradd -r -m -d /var/lib/{USER} -s /bin/sh {USER}
usermod --add-subuids 200000-265535 --add-subgids 200000-265535 {USER}
d=/var/lib/{USER}/.local/share/usernetes/_var_lib_kubelet
mkdir -p $d
printf 'apiVersion: kubelet.config.k8s.io/v1beta1\\nkind: KubeletConfiguration\\n' > $d/config.yaml
chown -R {USER}: /var/lib/{USER}/.local
id -u {USER}",
            standins = standins().display()
        ))
        .trim()
        .parse()
        .unwrap();
    let staged = machine.share().join("node.toml");
    std::fs::write(&staged, config_text(&NodeSpec::default(), uid)).unwrap();
    machine.sh_ok(&format!(
        "install -d -m 0755 /etc/podsec/u7s && install -m 0644 {} /etc/podsec/u7s/node.toml",
        staged.display()
    ));
    uid
}

/// `systemctl --user -M u7s-admin@ ARGS` from root.
fn user_manager(machine: &Machine, args: &[&str]) -> String {
    let mut argv = vec!["--user", "-M", "u7s-admin@"];
    argv.extend(args);
    podsec_tests::systemd::text(&machine.systemctl(&argv).stdout)
        .trim()
        .to_string()
}

/// The processes of `uid` inside the machine.
fn processes_of(machine: &Machine, uid: u32) -> Vec<String> {
    machine
        .sh_ok(&format!("ps -u {uid} -o pid=,comm= || true"))
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn u7s_service_lingers_starts_the_user_units_and_stops_everything() {
    let machine = Machine::boot().unwrap();
    let uid = node(&machine);

    machine.systemctl_ok(&["start", "u7s.service"]);
    assert_eq!(machine.state("u7s.service"), "active");
    // Lingering keeps the user manager without any login session (upstream defect 25).
    assert_eq!(
        machine
            .sh_ok(&format!("loginctl show-user {USER} -p Linger --value"))
            .trim(),
        "yes"
    );
    assert_eq!(machine.state(&format!("user@{uid}.service")), "active");
    assert_eq!(
        user_manager(
            &machine,
            &["is-active", "rootlesskit.service", "kubelet.service"]
        ),
        "active\nactive"
    );
    // The kubelet stand-in runs as root of the namespace, u7s-admin on the host.
    let kubelet_pid = user_manager(&machine, &["show", "-p", "MainPID", "--value", "kubelet"]);
    assert_eq!(
        machine
            .sh_ok(&format!("stat -c %u /proc/{kubelet_pid}"))
            .trim(),
        uid.to_string()
    );
    let ready = machine.sh_ok(&format!("PATH={ADMIN_PATH} u7s-start-stop status"));
    assert!(ready.starts_with("running: RootlessKit child"), "{ready}");

    // The u7s systemctl wrapper reaches u7s-admin's manager from inside the namespace (as
    // kubeadm's `systemctl restart kubelet` does) and as u7s-admin on the host.
    let inside = machine.user_sh(
        USER,
        &format!("cd; PATH={ADMIN_PATH} nsenter_u7s sh -c 'id -u; systemctl restart kubelet && systemctl is-active kubelet'"),
    );
    assert!(
        inside.status.success(),
        "{}{}",
        podsec_tests::systemd::text(&inside.stdout),
        podsec_tests::systemd::text(&inside.stderr)
    );
    assert_eq!(podsec_tests::systemd::text(&inside.stdout), "0\nactive\n");
    let restarted = user_manager(&machine, &["show", "-p", "MainPID", "--value", "kubelet"]);
    assert_ne!(restarted, kubelet_pid, "the kubelet was not restarted");
    let outside = machine.user_sh(
        USER,
        &format!("cd; PATH={ADMIN_PATH} systemctl is-active rootlesskit"),
    );
    assert_eq!(
        podsec_tests::systemd::text(&outside.stdout),
        "active\n",
        "{}",
        podsec_tests::systemd::text(&outside.stderr)
    );
    // Root's systemctl through the wrapper is the system manager's.
    assert_eq!(
        machine
            .sh_ok(&format!(
                "PATH={ADMIN_PATH} systemctl is-active u7s.service"
            ))
            .trim(),
        "active"
    );

    machine.systemctl_ok(&["stop", "u7s.service"]);
    assert_eq!(machine.state("u7s.service"), "inactive");
    machine.wait_state(
        &format!("user@{uid}.service"),
        "inactive",
        Duration::from_secs(30),
    );
    assert_eq!(processes_of(&machine, uid), Vec::<String>::new());
    assert_eq!(machine.failed_units(), Vec::<String>::new());

    // And it starts again.
    machine.systemctl_ok(&["start", "u7s.service"]);
    assert_eq!(
        user_manager(
            &machine,
            &["is-active", "rootlesskit.service", "kubelet.service"]
        ),
        "active\nactive"
    );
}
