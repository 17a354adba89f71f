//! podsec-create-services under a real systemd as PID 1 (systemd-nspawn, `podsec_tests::systemd`):
//! the distribution's docker-registry and nginx units are enabled and started once, a run with
//! nothing changed touches no unit, a changed configuration reloads or restarts exactly the unit
//! concerned, and nothing fails.

use podsec_tests::systemd::Machine;

const SERVER_IP: &str = "192.0.2.10";
const REGISTRY: &str = "docker-registry.service";
const NGINX: &str = "nginx.service";

/// What tells whether systemd started a unit again: when it last became active, when its main
/// process started, and that process.
fn started(machine: &Machine, unit: &str) -> [String; 3] {
    [
        "ActiveEnterTimestampMonotonic",
        "ExecMainStartTimestampMonotonic",
        "MainPID",
    ]
    .map(|property| machine.property(unit, property))
}

/// The PIDs of nginx's worker processes (the children of its main process).
fn nginx_workers(machine: &Machine) -> Vec<String> {
    let master = machine.property(NGINX, "MainPID");
    machine
        .sh_ok(&format!("pgrep -P {master}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The HTTP status of `curl` inside the machine (names resolved through its /etc/hosts).
fn status(machine: &Machine, args: &str) -> String {
    machine
        .sh_ok(&format!(
            "curl -s -o /dev/null -m 5 -w '%{{http_code}}' {args}"
        ))
        .trim()
        .to_string()
}

#[test]
fn create_services_enables_and_starts_units_once_and_restarts_only_what_changed() {
    let machine = Machine::boot().unwrap();
    machine.install_packages();
    machine.add_address(&format!("{SERVER_IP}/32"));
    // A fresh server: the distribution's units are installed but neither enabled nor running.
    machine.systemctl_ok(&["disable", "--now", REGISTRY, NGINX]);
    machine.sh_ok(&format!("podsec-create-policy {SERVER_IP}"));

    let out = machine.sh_ok("podsec-create-services");
    assert!(
        out.contains("docker-registry.service: enabled and started (systemd)")
            && out.contains("nginx.service: enabled and started (systemd)"),
        "{out}"
    );
    for unit in [REGISTRY, NGINX] {
        assert_eq!(machine.state(unit), "active", "{unit}");
        assert_eq!(
            machine.systemctl_ok(&["is-enabled", unit]).trim(),
            "enabled"
        );
    }
    // The registry runs from podsec's drop-in, as the unit's own account.
    assert_eq!(
        machine.property(REGISTRY, "DropInPaths"),
        "/etc/systemd/system/docker-registry.service.d/podsec.conf"
    );
    let pid = machine.property(REGISTRY, "MainPID");
    assert_eq!(
        machine.sh_ok(&format!(
            "stat -c %U /proc/{pid}; tr '\\0' ' ' < /proc/{pid}/cmdline"
        )),
        "docker-registry\n/usr/bin/docker-registry serve /etc/podsec/registry/config.yml "
    );
    // Both answer by the names the clients use.
    assert_eq!(status(&machine, "http://registry.local/v2/"), "200");
    assert_eq!(status(&machine, "http://sigstore.local:81/keys/"), "200");
    let registry = started(&machine, REGISTRY);
    let nginx = started(&machine, NGINX);

    // Nothing changed: no unit is started, restarted or reloaded.
    let out = machine.sh_ok("podsec-create-services");
    assert!(
        out.contains("docker-registry.service: already running (systemd)")
            && out.contains("nginx.service: already running (systemd)"),
        "{out}"
    );
    assert_eq!(started(&machine, REGISTRY), registry);
    assert_eq!(started(&machine, NGINX), nginx);
    let reloads = machine.property(NGINX, "ExecReload");
    let workers = nginx_workers(&machine);

    // Push credentials change nginx's site only: nginx is reloaded (same master process, the
    // new rule in force), the registry is left alone.
    let htpasswd = machine.share().join("push.htpasswd");
    machine.sh_ok(&format!(
        "echo \"imagemaker:$(openssl passwd -apr1 s3cret)\" > {}",
        htpasswd.display()
    ));
    let out = machine.sh_ok(&format!(
        "podsec-create-services --push-htpasswd {}",
        htpasswd.display()
    ));
    assert!(
        out.contains("nginx.service: configuration changed, reloaded or restarted (systemd)")
            && out.contains("docker-registry.service: already running (systemd)"),
        "{out}"
    );
    assert_eq!(started(&machine, NGINX), nginx, "nginx was restarted");
    // The command returned once the reload was in force: the workers are new ones, none of the
    // old ones (with the old rules) is left to answer the next request.
    let renewed = nginx_workers(&machine);
    assert!(
        !renewed.is_empty() && renewed.iter().all(|pid| !workers.contains(pid)),
        "old {workers:?}, now {renewed:?}"
    );
    assert_ne!(
        machine.property(NGINX, "ExecReload"),
        reloads,
        "nginx was not reloaded"
    );
    assert_eq!(started(&machine, REGISTRY), registry);
    assert_eq!(
        status(
            &machine,
            "-X POST http://registry.local/v2/demo/x/blobs/uploads/"
        ),
        "401",
        "the reloaded nginx does not ask for credentials"
    );
    assert_eq!(status(&machine, "http://registry.local/v2/"), "200");

    // A changed registry configuration restarts the registry (it has no reload), not nginx.
    machine.sh_ok("echo '# changed by hand' >> /etc/podsec/registry/config.yml");
    let out = machine.sh_ok("podsec-create-services");
    assert!(
        out.contains("docker-registry.service: configuration changed, reloaded or restarted")
            && out.contains("nginx.service: already running (systemd)"),
        "{out}"
    );
    let restarted = started(&machine, REGISTRY);
    assert_ne!(restarted[0], registry[0], "registry not restarted");
    assert_ne!(restarted[1], registry[1], "registry not restarted");
    assert_eq!(started(&machine, NGINX), nginx);
    assert_eq!(status(&machine, "http://registry.local/v2/"), "200");

    assert_eq!(machine.failed_units(), Vec::<String>::new());
}

/// Issue 13 item 2: ALT's httpd2 on port 80 is stopped and disabled, with a message, as upstream
/// did; then nginx serves. Debian has no httpd2: the unit here is a stand-in of that name (a
/// python3 web server on port 80), which is what create-services recognises (the unit of the
/// process holding the port).
#[test]
fn create_services_stops_and_disables_httpd2_on_port_80() {
    let machine = Machine::boot().unwrap();
    machine.install_packages();
    machine.add_address(&format!("{SERVER_IP}/32"));
    machine.systemctl_ok(&["disable", "--now", REGISTRY, NGINX]);
    machine.sh_ok(
        "printf '[Unit]\\nDescription=stand-in of ALT httpd2\\n[Service]\\n\
         ExecStart=/usr/bin/python3 -m http.server --bind 0.0.0.0 80\\n\
         [Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/httpd2.service",
    );
    machine.systemctl_ok(&["daemon-reload"]);
    machine.systemctl_ok(&["enable", "--now", "httpd2.service"]);
    machine.sh_ok(
        "for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:80/ && exit 0; sleep 0.1; done; exit 1",
    );
    machine.sh_ok(&format!("podsec-create-policy {SERVER_IP}"));

    let out = machine.sh_ok("podsec-create-services");
    assert!(
        out.contains(
            "httpd2.service listened on port 80 or 81, which nginx needs: stopped and disabled"
        ) && out.contains("nginx.service: enabled and started (systemd)"),
        "{out}"
    );
    assert_eq!(machine.state("httpd2.service"), "inactive");
    assert_eq!(
        machine
            .systemctl(&["is-enabled", "httpd2.service"])
            .stdout
            .as_slice(),
        b"disabled\n"
    );
    assert_eq!(status(&machine, "http://registry.local/v2/"), "200");
    assert_eq!(status(&machine, "http://sigstore.local:81/keys/"), "200");
    // A second run finds nginx on its port and says nothing of httpd2.
    let again = machine.sh_ok("podsec-create-services");
    assert!(!again.contains("httpd2"), "{again}");
    assert_eq!(machine.failed_units(), Vec::<String>::new());
}

/// Issue 13 item 1 under systemd: upstream's registry unit served port 80 from root podman's
/// volume; create-services stops it, moves the data (one rename) and starts it again from its
/// own configuration behind nginx; the image is still there. (Upstream's unit is imitated with a
/// drop-in: the distribution's own unit, its configuration edited as upstream's create-services
/// did, run as root as upstream's was: root podman's storage is closed to other accounts.)
#[test]
fn create_services_moves_upstreams_registry_data_under_systemd() {
    const OLD: &str = "/var/lib/containers/storage/volumes/registry/_data";
    let machine = Machine::boot().unwrap();
    machine.install_packages();
    machine.add_address(&format!("{SERVER_IP}/32"));
    machine.systemctl_ok(&["disable", "--now", REGISTRY, NGINX]);
    machine.sh_ok(&format!("podsec-create-policy {SERVER_IP}"));
    machine.sh_ok(&format!(
        "set -e; mkdir -p {OLD}
         printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: {OLD}\\nhttp:\\n  addr: :80\\n' \
             > /etc/docker/registry/config.yml
         mkdir -p /etc/systemd/system/{REGISTRY}.d
         printf '[Service]\\nUser=root\\n' \
             > /etc/systemd/system/{REGISTRY}.d/upstream.conf
         systemctl daemon-reload; systemctl enable --now {REGISTRY}"
    ));
    // An image pushed to upstream's registry (a config blob and its manifest).
    let pushed = machine.sh(
        "set -e
         for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:80/v2/ && break; sleep 0.1; done
         cfg='{\"architecture\":\"amd64\",\"os\":\"linux\"}'
         digest=sha256:$(printf %s \"$cfg\" | sha256sum | cut -d' ' -f1)
         loc=$(curl -fsS -D - -o /dev/null -X POST http://127.0.0.1:80/v2/demo/app/blobs/uploads/ \
             | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
         case $loc in http*) ;; *) loc=http://127.0.0.1:80$loc ;; esac
         curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
             --data-binary \"$cfg\" \"$loc&digest=$digest\"
         m='{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",'
         m=\"$m\\\"config\\\":{\\\"mediaType\\\":\\\"application/vnd.oci.image.config.v1+json\\\",\\\"digest\\\":\\\"$digest\\\",\\\"size\\\":${#cfg}},\\\"layers\\\":[]}\"
         curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
             --data-binary \"$m\" http://127.0.0.1:80/v2/demo/app/manifests/1
         printf %s \"$m\" | sha256sum | cut -d' ' -f1",
    );
    assert!(
        pushed.status.success(),
        "push: {}\n{}",
        String::from_utf8_lossy(&pushed.stderr),
        machine.sh_ok("journalctl -u docker-registry --no-pager | tail -5")
    );
    let manifest = String::from_utf8_lossy(&pushed.stdout).into_owned();

    let out = machine.sh_ok("podsec-create-services");
    assert!(
        out.contains(&format!(
            "Registry data of upstream podsec moved (one rename, nothing copied): {OLD}/docker -> /var/lib/podsec/registry/docker (1 repositories: demo/app)"
        )) && out.contains("docker-registry.service: enabled and started (systemd)"),
        "{out}"
    );
    // Served by nginx on port 80 from the new place, as the same manifest.
    let digest = machine.sh_ok(
        "curl -fsS -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
         http://registry.local/v2/demo/app/manifests/1 | tr -d '\\r' \
         | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: sha256://p'",
    );
    assert_eq!(digest.trim(), manifest.trim());
    machine.sh_ok(&format!(
        "test -z \"$(ls -A {OLD})\" && test -d /var/lib/podsec/registry/docker/registry/v2/repositories/demo/app"
    ));
    let again = machine.sh_ok("podsec-create-services");
    assert!(!again.contains("upstream"), "{again}");
    assert_eq!(machine.failed_units(), Vec::<String>::new());
}
