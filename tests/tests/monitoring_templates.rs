//! The monitoring templates of podsec-icinga and podsec-nagios against the real programs that
//! read them: Icinga 2 validates podsec.conf, then runs the plugin checks it defines through
//! the real sudo with the sudoers file of podsec-nagios (exact arguments), and the check
//! results carry the plugins' status lines; NRPE's command lines run as the monitoring account
//! the same way; the Director JSON describes the same commands; every nagwad bucket of every
//! template is a podsec-inotify command. The real Nagios 4 verifies podsec-services.cfg and
//! resolves which services each kind of host gets (upstream's hosts keep upstream's).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use podsec_tests::rpm::project_root;
use podsec_tests::sandbox::{Options, Sandbox, target_dir};

fn monitoring() -> PathBuf {
    project_root().join("rpm/monitoring")
}

/// The podsec-inotify commands (the nagwad buckets are named after them).
fn inotify_commands() -> BTreeSet<String> {
    let out = Command::new(target_dir().join("podsec-inotify"))
        .arg("--list")
        .output()
        .unwrap();
    let commands: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(commands.len(), 6, "{commands:?}");
    commands
}

/// `command[name]=command line` of the NRPE file.
fn nrpe_commands() -> Vec<(String, String)> {
    std::fs::read_to_string(monitoring().join("nagios/podsec-commands.cfg"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("command["))
        .filter_map(|l| l.split_once("]="))
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect()
}

/// The plugin command lines as the sudoers file allows them.
const PLUGIN_LINES: [&str; 2] = [
    "/usr/bin/sudo -n /usr/bin/podsec-inotify-check-policy -v -w 0 -c 100",
    "/usr/bin/sudo -n /usr/bin/podsec-inotify-check-images -v -w 0 -c 100",
];

#[test]
fn nagwad_buckets_and_plugin_commands_agree_across_the_templates() {
    let commands = inotify_commands();
    let nrpe = nrpe_commands();
    let buckets: BTreeSet<String> = nrpe
        .iter()
        .filter_map(|(_, c)| c.strip_prefix("/usr/lib/nagios/plugins/check_nagwad "))
        .map(str::to_string)
        .collect();
    assert_eq!(buckets, commands, "NRPE nagwad buckets");
    let plugins: Vec<&str> = nrpe
        .iter()
        .filter(|(_, c)| c.starts_with("/usr/bin/sudo"))
        .map(|(_, c)| c.as_str())
        .collect();
    assert_eq!(plugins, PLUGIN_LINES);

    // Every service of the Nagios server calls an NRPE command that exists.
    let names: BTreeSet<&str> = nrpe.iter().map(|(n, _)| n.as_str()).collect();
    let services =
        std::fs::read_to_string(monitoring().join("nagios/podsec-services.cfg")).unwrap();
    let called: Vec<&str> = services
        .lines()
        .filter_map(|l| l.trim().strip_prefix("check_command"))
        .filter_map(|c| c.trim().strip_prefix("check_nrpe!"))
        .collect();
    // Ours (6 nagwad, 2 plugins) and upstream 1.1.x's 6 for its hosts.
    assert_eq!(called.len(), 14, "{called:?}");
    for name in called {
        assert!(
            names.contains(name),
            "check_nrpe!{name} is not an NRPE command"
        );
    }

    // The Director import: the same buckets and, with its arguments in their order, the same
    // plugin command lines as NRPE and sudoers.
    let director: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring().join("icinga2/podsec-icinga2.json")).unwrap(),
    )
    .unwrap();
    let filters: BTreeSet<String> = director["ServiceSet"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|set| set["services"].as_array().unwrap().iter())
        .filter_map(|s| s["vars"]["nagwad_filter"].as_str())
        .map(str::to_string)
        .collect();
    assert_eq!(filters, commands, "Director nagwad filters");
    let mut lines = Vec::new();
    for command in director["Command"].as_object().unwrap().values() {
        let mut arguments: Vec<(&String, &serde_json::Value)> =
            command["arguments"].as_object().unwrap().iter().collect();
        arguments.sort_by_key(|(_, a)| a["order"].as_i64().unwrap());
        let mut line = command["command"].as_str().unwrap().to_string();
        for (name, argument) in arguments {
            line.push(' ');
            line.push_str(name);
            if let Some(var) = argument["value"].as_str() {
                let var = var.trim_matches('$');
                line.push(' ');
                line.push_str(command["vars"][var].as_str().unwrap());
            }
        }
        lines.push(line);
    }
    lines.sort();
    let mut expected = PLUGIN_LINES.to_vec();
    expected.sort();
    assert_eq!(lines, expected);
}

#[test]
fn icinga_runs_the_plugins_through_sudo_and_nrpe_lines_work_as_written() {
    let sandbox = Sandbox::start(&Options::default()).unwrap();
    let inotify = target_dir().join("podsec-inotify");
    let conf = monitoring().join("icinga2/podsec.conf");
    let sudoers = monitoring().join("nagios/sudoers.podsec-nrpe");
    // The plugins where the package puts them, the sudoers file as its documentation says,
    // Icinga's runtime directories and an API certificate (a check with a command endpoint
    // needs the API listener, as on every Icinga master).
    sandbox.sh_ok(&format!(
        "set -e
         echo \"127.0.0.1 $(hostname)\" >> /etc/hosts
         ln -s {inotify} /usr/bin/podsec-inotify-check-policy
         ln -s {inotify} /usr/bin/podsec-inotify-check-images
         install -m 0440 {sudoers} /etc/sudoers.d/podsec-nrpe
         visudo -c
         install -d -o nagios -g nagios /run/icinga2 /run/icinga2/cmd
         c=/var/lib/icinga2/certs; install -d -o nagios -g nagios $c
         icinga2 pki new-ca
         icinga2 pki new-cert --cn master --key $c/master.key --csr $c/master.csr
         icinga2 pki sign-csr --csr $c/master.csr --cert $c/master.crt
         cp /var/lib/icinga2/ca/ca.crt $c/ca.crt
         chown -R nagios:nagios $c /var/lib/icinga2/ca",
        inotify = inotify.display(),
        sudoers = sudoers.display()
    ));
    // A master whose own host joins podsec-nodes and wants the plugin checks; the nagwad
    // templates of nagwad-icinga-templates are stood in by minimal ones.
    let main = format!(
        "include <itl>
const PluginDir = \"/usr/lib/nagios/plugins\"
const NodeName = \"master\"
const ZoneName = \"master\"
object IcingaApplication \"app\" {{ }}
object CheckerComponent \"checker\" {{ }}
object ExternalCommandListener \"command\" {{ }}
object ApiListener \"api\" {{ bind_host = \"127.0.0.1\" }}
object ApiUser \"podsec-test\" {{ password = \"podsec-test\"; permissions = [ \"objects/query/Service\" ] }}
object Endpoint \"master\" {{ }}
object Zone \"master\" {{ endpoints = [ \"master\" ] }}
template Service \"generic-service\" {{ max_check_attempts = 1 }}
template Service \"nagwad-service\" {{ check_command = \"dummy\" }}
object HostGroup \"nagwad-nodes\" {{ }}
object Host \"master\" {{
  check_command = \"dummy\"
  import \"podsec-host\"
  groups += [ \"nagwad-nodes\" ]
  vars.podsec_plugins = true
}}
include \"{}\"
",
        conf.display()
    );
    sandbox.sh_ok(&format!(
        "cat > /etc/icinga2/podsec-test.conf <<'EOF'\n{main}EOF\nchmod 0644 /etc/icinga2/podsec-test.conf"
    ));
    let validate = sandbox.sh("icinga2 daemon -C -c /etc/icinga2/podsec-test.conf");
    assert!(
        validate.status.success(),
        "icinga2 daemon -C: {}",
        String::from_utf8_lossy(&validate.stdout)
    );
    let services = sandbox.sh_ok("icinga2 object list --type Service");
    // Upstream 1.1.x's display names stay (issue 13 item 7).
    for title in [
        "Containers policy misconfiguration detected",
        "Alerts detected via Kubernetes API audit",
        "Vulnerability detected in a builded Docker image",
    ] {
        assert!(
            services.contains(&format!("display_name = \"{title}\"")),
            "{title}: {services}"
        );
    }
    for command in inotify_commands() {
        assert!(
            services.contains(&format!("Object 'master!{command}' of type 'Service'"))
                && services.contains(&format!("nagwad_filter = \"{command}\"")),
            "{command}: {services}"
        );
    }

    // Icinga runs both plugin checks (forced now; their interval is an hour); the results
    // are read back through its API.
    sandbox
        .spawn_daemon(
            "icinga2",
            &["icinga2", "daemon", "-c", "/etc/icinga2/podsec-test.conf"],
        )
        .unwrap();
    sandbox.sh_ok(
        "for i in $(seq 300); do [ -p /run/icinga2/cmd/icinga2.cmd ] && exit 0; sleep 0.1; done; exit 1",
    );
    sandbox.sh_ok(
        "now=$(date +%s)
         for s in podsec-policy podsec-images; do
           echo \"[$now] SCHEDULE_FORCED_SVC_CHECK;master;$s;$now\" > /run/icinga2/cmd/icinga2.cmd
         done",
    );
    for (service, plugin, state, status) in [
        // root's own policy accepts anything here: 102 is a critical finding.
        ("podsec-policy", "check-policy", 2, "POLICY CRITICAL - "),
        ("podsec-images", "check-images", 0, "POLICY OK - "),
    ] {
        let query = format!(
            "for i in $(seq 600); do
               r=$(curl -sk -u podsec-test:podsec-test 'https://127.0.0.1:5665/v1/objects/services/master!{service}?attrs=last_check_result')
               case $r in *'\"command\"'*) printf %s \"$r\"; exit 0;; esac
               sleep 0.1
             done; printf %s \"$r\"; exit 1"
        );
        let answer: serde_json::Value = serde_json::from_str(&sandbox.sh_ok(&query)).unwrap();
        let result = &answer["results"][0]["attrs"]["last_check_result"];
        let command: Vec<&str> = result["command"]
            .as_array()
            .unwrap_or_else(|| panic!("{service} never ran: {answer}"))
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            command.join(" "),
            format!("/usr/bin/sudo -n /usr/bin/podsec-inotify-{plugin} -v -w 0 -c 100"),
            "{service}"
        );
        let output = result["output"].as_str().unwrap();
        assert_eq!(result["exit_status"], state, "{service}: {output}");
        assert!(
            output.lines().any(|l| l.starts_with(status)),
            "{service}: {output}"
        );
    }

    // NRPE runs its command lines as the monitoring account: the plugins answer (sudo lets
    // exactly these arguments through), and anything else is refused by sudo.
    for (name, line) in nrpe_commands()
        .into_iter()
        .filter(|(_, c)| c.starts_with("/usr/bin/sudo"))
    {
        let argv: Vec<&str> = line.split_whitespace().collect();
        let out = sandbox
            .command(argv[0])
            .args(&argv[1..])
            .user("nagios")
            .output();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            matches!(out.status.code(), Some(0..=2)) && stdout.starts_with("POLICY "),
            "{name}: {out:?}"
        );
        let out = sandbox
            .command(argv[0])
            .args(&argv[1..argv.len() - 1])
            .arg("101")
            .user("nagios")
            .output();
        assert!(
            !out.status.success(),
            "{name} with other arguments: {out:?}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("sudo"),
            "{out:?}"
        );
    }
}

/// Upstream podsec 1.1.x's Nagios services: description and NRPE command.
const UPSTREAM_SERVICES: [(&str, &str); 6] = [
    (
        "Vulnerability detected in a registered Docker image",
        "podsec_inotify_check_vuln",
    ),
    (
        "Vulnerability detected in a building Docker image",
        "podsec_inotify_build_invulnerable_image",
    ),
    (
        "Containering policy error detected",
        "podsec_inotify_check_policy",
    ),
    (
        "Docker image violates containering policy",
        "podsec_inotify_check_images",
    ),
    (
        "Modified files detected in a running container",
        "podsec_inotify_check_containers",
    ),
    (
        "Alerts detected via Kubernetes audit API",
        "podsec_inotify_check_kubeapi",
    ),
];

/// The objects nagwad-nagios-templates and a site provide (stand-ins, named as such): a
/// generic-service template, check_nrpe, the nagwad-nodes host group, and three hosts.
const NAGIOS_SITE: &str = "
define timeperiod {
    timeperiod_name 24x7
    alias           always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}
define command {
    command_name    notify-none
    command_line    /bin/true
}
define command {
    command_name    check_nrpe
    command_line    /bin/true $ARG1$
}
define contact {
    contact_name                    admin
    host_notifications_enabled      0
    service_notifications_enabled   0
    host_notification_period        24x7
    service_notification_period     24x7
    host_notification_options       n
    service_notification_options    n
    host_notification_commands      notify-none
    service_notification_commands   notify-none
}
define service {
    name                    generic-service
    register                0
    max_check_attempts      3
    check_interval          5
    retry_interval          1
    check_period            24x7
    notification_interval   0
    notification_period     24x7
    contacts                admin
}
define hostgroup {
    hostgroup_name  nagwad-nodes
    alias           nagwad (stand-in of nagwad-nagios-templates)
}
define host {
    name                    site-host
    register                0
    max_check_attempts      3
    check_period            24x7
    contacts                admin
    notification_period     24x7
}
define host {
    use         site-host
    host_name   upstream-node
    address     192.0.2.21
    hostgroups  nagwad-nodes
}
define host {
    use         site-host
    host_name   both-node
    address     192.0.2.22
    hostgroups  nagwad-nodes,podsec-nodes
}
define host {
    use         site-host
    host_name   podsec-node
    address     192.0.2.23
    hostgroups  podsec-nodes
}
";

#[test]
fn nagios_verifies_the_services_and_upstream_hosts_keep_upstream_services() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.cfg");
    std::fs::write(&site, NAGIOS_SITE).unwrap();
    // Nagios runs as its own account: check results and the object cache go where it may write.
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let precache = results.join("objects.precache");
    std::fs::set_permissions(
        &results,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let main = dir.path().join("nagios.cfg");
    std::fs::write(
        &main,
        format!(
            "cfg_file={}\ncfg_file={}\nprecached_object_file={}\ncheck_result_path={}\n\
             illegal_macro_output_chars=`~$&|'\"<>\n",
            site.display(),
            monitoring().join("nagios/podsec-services.cfg").display(),
            precache.display(),
            results.display()
        ),
    )
    .unwrap();
    // -v verifies, -p writes the objects as Nagios resolved them.
    let out = Command::new("nagios4")
        .arg("-vp")
        .arg(&main)
        .output()
        .expect("nagios4 (scripts/deps installs nagios4-core)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("Total Warnings: 0") && report.contains("Total Errors:   0"),
        "{report}"
    );
    // host -> [(description, command)]
    let mut services: std::collections::BTreeMap<String, BTreeSet<(String, String)>> =
        Default::default();
    let objects = std::fs::read_to_string(&precache).unwrap();
    for block in objects.split("define service {").skip(1) {
        let block = block.split('}').next().unwrap();
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        services.entry(field("host_name")).or_default().insert((
            field("service_description"),
            field("check_command")
                .trim_start_matches("check_nrpe!")
                .to_string(),
        ));
    }
    let upstream: BTreeSet<(String, String)> = UPSTREAM_SERVICES
        .iter()
        .map(|(d, c)| (d.to_string(), c.to_string()))
        .collect();
    assert_eq!(services["upstream-node"], upstream);
    for host in ["both-node", "podsec-node"] {
        let ours = &services[host];
        assert_eq!(ours.len(), 8, "{host}: {ours:?}");
        assert!(ours.is_disjoint(&upstream), "{host}: {ours:?}");
        assert!(ours.contains(&(
            "podsec-inotify-check-policy".to_string(),
            "podsec_inotify_check_policy".to_string()
        )));
    }
}
