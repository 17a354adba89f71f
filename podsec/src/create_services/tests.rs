//! create-services on a machine in memory: which files it writes, which daemons it starts or
//! reloads (directly, or through systemd), and that a refusal changes nothing. The real
//! registry, nginx and systemd run in the sandbox tests.

use std::cell::RefCell;

use podsec_common::host::fake::{Effect, FakeHost, Node};
use podsec_common::host::services::UnitAction;

use super::*;

const SERVER: &str = "192.0.2.10";
const SITE: &str = "/etc/nginx/conf.d/podsec.conf";

/// The signature server after create-policy: its address bound in /etc/hosts, /var/sigstore;
/// a docker-registry account as Debian's package makes it.
fn server() -> FakeHost {
    FakeHost::new()
        .with_local_address(SERVER.parse().unwrap())
        .with_file(
            "/etc/hosts",
            format!("{SERVER} registry.local sigstore.local trivy.local\n").as_bytes(),
        )
        .with_dir("/var/sigstore", 0o755, (0, 0))
        .with_dir("/var/lib", 0o755, (0, 0))
        .with_group("www-data", 33)
        .with_user("docker-registry", 120)
}

fn no_migration() -> Result<Plan, MigrationError> {
    Ok(Plan::Nothing)
}

fn serving(_: &str, _: &str) -> Result<u16, String> {
    Ok(200)
}

fn args() -> Args {
    Args {
        push_htpasswd: None,
    }
}

fn text(host: &FakeHost, path: &str) -> String {
    String::from_utf8(host.file(path).unwrap_or_else(|| panic!("{path} missing"))).unwrap()
}

fn started(host: &FakeHost) -> Vec<(String, String, Vec<String>)> {
    host.effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::StartDaemon {
                name,
                program,
                args,
            } => Some((name, program, args)),
            _ => None,
        })
        .collect()
}

#[test]
fn without_systemd_the_daemons_start_directly_and_are_probed() {
    let host = server();
    let probed = RefCell::new(Vec::new());
    create(&host, &args(), no_migration, |url, name| {
        probed
            .borrow_mut()
            .push((url.to_string(), name.to_string()));
        Ok(200)
    })
    .unwrap();

    assert_eq!(
        text(&host, REGISTRY_CONFIG),
        registry_config(REGISTRY_STORAGE)
    );
    assert_eq!(text(&host, SITE), nginx_site(false));
    match host.node(REGISTRY_STORAGE) {
        Some(Node::Dir { owner, .. }) => assert_eq!(owner, (120, 120), "the registry's own"),
        other => panic!("{other:?}"),
    }
    let started = started(&host);
    assert_eq!(started.len(), 2, "{started:?}");
    // The registry drops root.
    assert_eq!(started[0].0, "registry");
    assert_eq!(started[0].1, "setpriv");
    assert_eq!(started[0].2[..2], ["--reuid=120", "--regid=120"]);
    assert_eq!(
        started[1],
        (
            "nginx".to_string(),
            "nginx".to_string(),
            vec!["-g".to_string(), "daemon off;".to_string()]
        )
    );
    assert!(host.effects().contains(&Effect::Run {
        program: "nginx".into(),
        args: vec!["-t".into(), "-q".into()]
    }));
    assert_eq!(
        *probed.borrow(),
        [
            (
                "http://127.0.0.1:80/v2/".to_string(),
                "registry.local".to_string()
            ),
            (
                "http://127.0.0.1:81/keys/".to_string(),
                "sigstore.local".to_string()
            )
        ]
    );
}

#[test]
fn a_rerun_restarts_nothing_and_a_new_site_reloads_nginx() {
    let host = server();
    create(&host, &args(), no_migration, serving).unwrap();
    let daemons = host.daemons();
    let before = host.effects().len();
    create(&host, &args(), no_migration, serving).unwrap();
    assert!(
        !host.effects()[before..].iter().any(|e| matches!(
            e,
            Effect::StartDaemon { .. } | Effect::StopDaemon { .. } | Effect::ReloadDaemon { .. }
        )),
        "{:?}",
        &host.effects()[before..]
    );
    assert_eq!(host.daemons(), daemons);

    // Push credentials change the site: nginx reloads, the registry keeps running.
    let host = host
        .with_dir("/root", 0o700, (0, 0))
        .with_file("/root/push.htpasswd", b"maker:$2y$05$abcdefghijk\n");
    let before = host.effects().len();
    create(
        &host,
        &Args {
            push_htpasswd: Some("/root/push.htpasswd".into()),
        },
        no_migration,
        serving,
    )
    .unwrap();
    let again = &host.effects()[before..];
    assert!(again.contains(&Effect::ReloadDaemon {
        name: "nginx".into()
    }));
    assert!(
        !again
            .iter()
            .any(|e| matches!(e, Effect::StartDaemon { .. }))
    );
    assert_eq!(text(&host, SITE), nginx_site(true));
    match host.node(PUSH_HTPASSWD) {
        Some(Node::File { mode, owner, .. }) => assert_eq!((mode, owner), (0o640, (0, 33))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn under_systemd_the_units_are_ensured_with_the_registry_drop_in() {
    let host = server().with_systemd(&[]).with_program("trivy");
    create(&host, &args(), no_migration, serving).unwrap();
    let drop_in = "/etc/systemd/system/docker-registry.service.d/podsec.conf";
    assert!(text(&host, drop_in).contains(&format!(
        "ExecStart=/usr/bin/docker-registry serve {REGISTRY_CONFIG}"
    )));
    let effects = host.effects();
    let reload = effects
        .iter()
        .position(|e| {
            *e == Effect::Run {
                program: "systemctl".into(),
                args: vec!["daemon-reload".into()],
            }
        })
        .expect("daemon-reload");
    let units: Vec<(usize, &str, UnitAction)> = effects
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Effect::Unit { unit, action, .. } => Some((i, unit.as_str(), *action)),
            _ => None,
        })
        .collect();
    assert_eq!(
        units.iter().map(|u| (u.1, u.2)).collect::<Vec<_>>(),
        [
            ("docker-registry.service", UnitAction::Started),
            ("nginx.service", UnitAction::Started),
            ("trivy.service", UnitAction::Started)
        ]
    );
    assert!(reload < units[0].0, "the unit files are reloaded first");
    assert!(started(&host).is_empty(), "systemd starts the daemons");
}

#[test]
fn trivy_without_systemd_runs_as_its_own_account_on_trivy_local() {
    let host = server().with_program("trivy");
    create(&host, &args(), no_migration, serving).unwrap();
    let trivy = host.account(TRIVY_USER).expect("account made");
    match host.node(TRIVY_CACHE) {
        Some(Node::Dir { mode, owner, .. }) => {
            assert_eq!((mode, owner), (0o700, (trivy.uid, trivy.gid)))
        }
        other => panic!("{other:?}"),
    }
    let started = started(&host);
    let (_, program, args) = started
        .iter()
        .find(|(name, ..)| name == "trivy")
        .expect("trivy started");
    assert_eq!(program, "setpriv");
    let listen = args.iter().position(|a| a == "--listen").unwrap();
    assert_eq!(args[listen + 1], format!("{SERVER}:{TRIVY_PORT}"));
}

#[test]
fn an_invalid_nginx_configuration_is_taken_back() {
    let host = server()
        .with_dir("/etc/nginx/conf.d", 0o755, (0, 0))
        .with_file(SITE, b"# the site before\n")
        .with_programs(|program, args, _| match (program, args) {
            ("nginx", ["-t", "-q"]) => Err("unknown directive".into()),
            _ => Ok(String::new()),
        });
    let err = create(&host, &args(), no_migration, serving).unwrap_err();
    assert!(matches!(err, Error::NginxConfig { .. }), "{err}");
    assert_eq!(text(&host, SITE), "# the site before\n");
    assert!(started(&host).is_empty());
}

#[test]
fn refusals_change_nothing() {
    let cases: Vec<(&str, FakeHost)> = vec![
        (
            "another program on port 80",
            server().with_listener(80, "apache2", Some("apache2.service")),
        ),
        (
            "registry.local bound elsewhere",
            server().with_file("/etc/hosts", b"198.51.100.1 registry.local\n"),
        ),
        (
            "no /var/sigstore",
            FakeHost::new()
                .with_local_address(SERVER.parse().unwrap())
                .with_file(
                    "/etc/hosts",
                    format!("{SERVER} registry.local\n").as_bytes(),
                ),
        ),
    ];
    for (case, host) in cases {
        let tree = host.tree();
        assert!(
            create(&host, &args(), no_migration, serving).is_err(),
            "{case}"
        );
        assert_eq!(host.effects(), [], "{case}");
        assert_eq!(host.tree(), tree, "{case}");
    }
}

#[test]
fn httpd2_on_port_80_is_stopped_and_disabled_under_systemd() {
    let host = server().with_systemd(&["httpd2.service"]).with_listener(
        80,
        "httpd2",
        Some("httpd2.service"),
    );
    create(&host, &args(), no_migration, serving).unwrap();
    assert!(host.effects().contains(&Effect::Run {
        program: "systemctl".into(),
        args: vec!["disable".into(), "--now".into(), "httpd2.service".into()]
    }));
}
