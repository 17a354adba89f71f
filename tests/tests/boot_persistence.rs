//! Issue 13 item 3: a node's kernel modules come back at every boot. podsec-k8s installs
//! /usr/lib/modules-load.d/podsec-u7s.conf (upstream: /lib/modules-load.d/u7s.conf), and the
//! real systemd of a booted machine with the packages installed finds it where
//! systemd-modules-load reads its configuration. (Loading the modules is not tried: they are
//! the host kernel's, and this kernel has none.) Host preparation's part (the /etc file when the
//! packaged one is missing, the sysctl.d file applied by systemd-sysctl in a fresh sandbox):
//! tests/tests/u7s_kubeadm.rs.

use podsec_k8s::u7s_kubeadm::host_prep;
use podsec_tests::systemd::Machine;

#[test]
fn the_installed_modules_load_file_is_read_by_systemd() {
    let machine = Machine::boot().unwrap();
    machine.install_packages();
    let seen = machine.sh_ok("systemd-analyze cat-config modules-load.d/podsec-u7s.conf");
    assert_eq!(
        seen,
        format!(
            "# {}\n{}",
            host_prep::MODULES_LOAD_PACKAGED,
            host_prep::modules_load_conf()
        )
    );
    for module in [
        "br_netfilter",
        "overlay",
        "vxlan",
        "ip_tables",
        "iptable_nat",
    ] {
        assert!(seen.lines().any(|l| l == module), "{module}: {seen}");
    }
}
