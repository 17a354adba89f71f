//! The sandbox keeps the host untouched while commands change "the host" inside it, and it can
//! carry the heavy users: podman as root and rootless, rootlesskit with slirp4netns.

use std::net::TcpStream;
use std::path::Path;

use podsec_tests::fixtures::{busybox_image, tree_digest};
use podsec_tests::sandbox::{Options, Sandbox};

fn started(addresses: &[&str]) -> Sandbox {
    Sandbox::start(&Options {
        name: None,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    })
    .expect("sandbox start (needs root)")
}

#[test]
fn changes_inside_leave_the_host_byte_identical() {
    let watched = [
        "/etc/passwd",
        "/etc/group",
        "/etc/shadow",
        "/etc/hosts",
        "/etc/containers",
        "/home",
    ];
    let before: Vec<_> = watched.iter().map(|p| tree_digest(Path::new(p))).collect();
    let sandbox = started(&["192.0.2.10/32"]);
    sandbox.sh_ok(
        "groupadd podsec-iso-group && useradd -m -G podsec-iso-group podsec-iso-user && \
         echo '192.0.2.10 registry.local sigstore.local' >> /etc/hosts && \
         mkdir -p /etc/containers && echo '{\"default\":[{\"type\":\"reject\"}]}' > /etc/containers/policy.json",
    );
    sandbox
        .spawn_daemon(
            "http",
            &[
                "python3",
                "-m",
                "http.server",
                "80",
                "--bind",
                "127.0.0.1",
                "--directory",
                "/etc",
            ],
        )
        .unwrap();
    // Inside: the user exists, the name resolves, the daemon answers.
    let inside = sandbox.sh_ok(
        "id -nG podsec-iso-user; getent hosts registry.local; \
         for i in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:80/hosts && echo served && break; sleep 0.1; done",
    );
    assert!(
        inside.contains("podsec-iso-user podsec-iso-group"),
        "{inside}"
    );
    assert!(inside.contains("192.0.2.10"), "{inside}");
    assert!(
        inside.contains("served"),
        "{inside}\n{}",
        sandbox.daemon_log("http")
    );
    // Outside, meanwhile: nothing listens on port 80, the user does not exist.
    assert!(
        TcpStream::connect("127.0.0.1:80").is_err(),
        "port 80 reachable on the host"
    );
    assert!(
        !std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .contains("podsec-iso-user")
    );
    let state = sandbox.state().to_path_buf();
    sandbox.stop().unwrap();

    let after: Vec<_> = watched.iter().map(|p| tree_digest(Path::new(p))).collect();
    for ((path, before), after) in watched.iter().zip(&before).zip(&after) {
        assert!(before == after, "{path} changed on the host");
    }
    assert!(
        TcpStream::connect("127.0.0.1:80").is_err(),
        "port 80 still taken after stop"
    );
    assert!(!state.exists(), "state directory left behind");
}

#[test]
fn extra_address_and_private_tun_device() {
    let sandbox = started(&["192.0.2.20/32"]);
    let out = sandbox.sh_ok("ip -br addr show lo; stat -c '%a %t:%T' /dev/net/tun; hostname");
    assert!(out.contains("192.0.2.20/32"), "{out}");
    assert!(
        out.contains("666 a:c8"),
        "tun node not private and usable: {out}"
    );
    // The host's own node keeps its mode.
    let host_mode = std::fs::metadata("/dev/net/tun")
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    if let Ok(mode) = host_mode {
        assert_ne!(mode, 0o666, "the host's /dev/net/tun was opened up");
    }
}

#[test]
fn two_sandboxes_talk_over_a_veth_pair() {
    let server = started(&[]);
    let client = started(&[]);
    Sandbox::link(&server, &client, "192.0.2.1/24", "192.0.2.2/24").unwrap();
    server
        .spawn_daemon(
            "http",
            &[
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                "192.0.2.1",
                "--directory",
                "/etc",
            ],
        )
        .unwrap();
    let out = client.sh_ok(
        "for i in $(seq 50); do curl -sf http://192.0.2.1:8080/hostname >/dev/null && echo reached && break; sleep 0.1; done",
    );
    assert!(
        out.contains("reached"),
        "{out}\n{}",
        server.daemon_log("http")
    );
    // The server's address is not on the host.
    assert!(TcpStream::connect("192.0.2.1:8080").is_err());
}

#[test]
fn podman_runs_as_root_and_rootless_and_rootlesskit_starts() {
    let sandbox = started(&[]);
    let archive = busybox_image(&sandbox, "bb");
    let root = sandbox.sh_ok("podman run --rm localhost/bb id -u");
    assert_eq!(root.trim(), "0");

    sandbox.sh_ok("useradd -m podsec-rootless");
    let rootless = sandbox
        .command("sh")
        .args([
            "-c",
            &format!(
                "podman load -q -i {} >/dev/null && podman run --rm localhost/bb id -u && id -u",
                archive.display()
            ),
        ])
        .user("podsec-rootless")
        .output();
    let text = String::from_utf8_lossy(&rootless.stdout);
    assert!(
        rootless.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&rootless.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "uid inside the rootless container");
    assert_ne!(lines[1], "0", "podman ran as root instead of the user");

    let kit = sandbox
        .command("sh")
        .args([
            "-c",
            "rootlesskit --net=slirp4netns --mtu=65520 --copy-up=/etc --state-dir=$XDG_RUNTIME_DIR/rk \
             sh -c 'id -u; ip -4 -br addr show tap0'",
        ])
        .user("podsec-rootless")
        .output();
    let text = String::from_utf8_lossy(&kit.stdout);
    assert!(
        kit.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&kit.stderr)
    );
    assert!(text.starts_with("0\n"), "{text}");
    assert!(
        text.contains("10.0.2.100"),
        "slirp4netns gave no address: {text}"
    );
}
