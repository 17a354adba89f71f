//! The disposition of every flag of the table, through the parser.

use super::*;

/// What a flag of FLAGS must do, written down independently of the table: the test fails
/// when the table and this list disagree, and when the parser does not do what they say.
enum Expect {
    /// Honoured: with the flag, `probe` reads `want` from the parsed flags; it reads `None`
    /// from flags parsed without it. Nothing of the flag reaches the native kubeadm.
    Lands(fn(&Invocation) -> Option<String>, &'static str),
    /// Honoured as a check: only the node's own value (the row's) is accepted, `bad` is
    /// refused as invalid. Nothing reaches the native kubeadm.
    Only { bad: &'static str },
    /// Passed to the native kubeadm as this argument, which is not there without the flag.
    Native(&'static str),
    /// Passed to the native kubeadm always, with the flag or without.
    NativeAlways(&'static str),
    /// Refused with the table's reason.
    Refused,
}

struct Row {
    /// The flag as given, with its value: `--name`, `--name VALUE` or `--name=VALUE`.
    args: &'static [&'static str],
    expect: Expect,
}

const TOKEN2: &str = "123456.abcdefabcdefabcd";

fn common(i: &Invocation) -> Option<&CommonFlags> {
    match i {
        Invocation::Init(f) => Some(&f.common),
        Invocation::Join(f) => Some(&f.common),
        _ => None,
    }
}

fn init_of(i: &Invocation) -> Option<&InitFlags> {
    match i {
        Invocation::Init(f) => Some(f),
        _ => None,
    }
}

fn join_of(i: &Invocation) -> Option<&JoinFlags> {
    match i {
        Invocation::Join(f) => Some(f),
        _ => None,
    }
}

fn yes(b: bool) -> Option<String> {
    b.then(|| "true".to_string())
}

fn items(v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| v.join(","))
}

fn native_of(i: &Invocation) -> Vec<String> {
    match i {
        Invocation::Init(f) => f.native_args(),
        Invocation::Join(f) => f.common.native_args(),
        _ => Vec::new(),
    }
}

/// One row per flag of FLAGS.
fn expected() -> Vec<Row> {
    use Expect::*;
    fn row(args: &'static [&'static str], expect: Expect) -> Row {
        Row { args, expect }
    }
    vec![
        // global
        row(
            &["--help"],
            Lands(
                |i| yes(matches!(i, Invocation::SubcommandHelp { .. })),
                "true",
            ),
        ),
        row(&["--v", "5"], Native("--v=5")),
        row(&["--skip-headers"], Native("--skip-headers")),
        row(&["--add-dir-header"], Refused),
        row(&["--rootfs", "/mnt"], Refused),
        row(&["--log-file", "/tmp/x"], Refused),
        row(&["--log-file-max-size=10"], Refused),
        row(&["--one-output"], Refused),
        row(&["--skip-log-headers"], Refused),
        // init and join
        row(
            &["--apiserver-advertise-address", "192.0.2.20"],
            Lands(
                |i| common(i)?.advertise_address.map(|a| a.to_string()),
                "192.0.2.20",
            ),
        ),
        row(
            &["--apiserver-bind-port=7443"],
            Lands(|i| common(i)?.bind_port.map(|p| p.to_string()), "7443"),
        ),
        row(
            &["--certificate-key", KEY],
            Lands(|i| common(i)?.certificate_key.clone(), KEY),
        ),
        row(&["--config", "/root/init.yaml"], Refused),
        row(
            &["--cri-socket", CRI_SOCKET],
            Only {
                bad: "unix:///run/containerd/containerd.sock",
            },
        ),
        row(&["--dry-run"], Lands(|i| yes(common(i)?.dry_run), "true")),
        row(
            &["--ignore-preflight-errors", "Swap,NumCPU"],
            Native("--ignore-preflight-errors=Swap,NumCPU"),
        ),
        row(
            &["--node-name", "node-1"],
            Lands(|i| common(i)?.node_name.clone(), "node-1"),
        ),
        row(
            &["--patches", "/etc/kubeadm-patches"],
            Lands(|i| common(i)?.patches.clone(), "/etc/kubeadm-patches"),
        ),
        row(
            &["--skip-phases", "addon/kube-proxy,preflight"],
            Lands(
                |i| items(&common(i)?.skip_phases),
                "addon/kube-proxy,preflight",
            ),
        ),
        row(
            &["--token", TOKEN2],
            Lands(|i| common(i)?.token.clone(), TOKEN2),
        ),
        row(&["--reset"], Lands(|i| yes(common(i)?.reset), "true")),
        row(
            &["--prepare-only"],
            Lands(|i| yes(common(i)?.prepare_only), "true"),
        ),
        // init only
        row(
            &["--apiserver-cert-extra-sans", "10.0.0.5,api.example.org"],
            Lands(
                |i| items(&init_of(i)?.cert_extra_sans),
                "10.0.0.5,api.example.org",
            ),
        ),
        row(&["--cert-dir", CERT_DIR], Only { bad: "/srv/pki" }),
        row(
            &["--control-plane-endpoint", "192.0.2.100:8443"],
            Lands(
                |i| init_of(i)?.control_plane_endpoint.clone(),
                "192.0.2.100:8443",
            ),
        ),
        row(
            &["--feature-gates", "PublicKeysECDSA=true"],
            Lands(
                |i| {
                    let gates = &init_of(i)?.feature_gates;
                    (!gates.is_empty()).then(|| format!("{gates:?}"))
                },
                r#"[("PublicKeysECDSA", true)]"#,
            ),
        ),
        row(
            &["--image-repository", "registry.local/c10f"],
            Lands(
                |i| init_of(i)?.image_repository.clone(),
                "registry.local/c10f",
            ),
        ),
        row(
            &["--kubernetes-version", "v1.30.4"],
            Lands(
                |i| match init_of(i)?.kubernetes_version? {
                    VersionRequest::Exact(v) => Some(v.to_string()),
                    VersionRequest::Minor(m) => Some(m.to_string()),
                },
                "v1.30.4",
            ),
        ),
        row(
            &["--pod-network-cidr", "10.200.0.0/16"],
            Lands(
                |i| init_of(i)?.pod_network_cidr.map(|n| n.to_string()),
                "10.200.0.0/16",
            ),
        ),
        row(
            &["--service-cidr", "10.112.0.0/12"],
            Lands(
                |i| init_of(i)?.service_cidr.map(|n| n.to_string()),
                "10.112.0.0/12",
            ),
        ),
        row(
            &["--service-dns-domain", "corp.internal"],
            Lands(|i| init_of(i)?.service_dns_domain.clone(), "corp.internal"),
        ),
        row(
            &["--skip-certificate-key-print"],
            Native("--skip-certificate-key-print"),
        ),
        row(&["--skip-token-print"], Native("--skip-token-print")),
        row(
            &["--token-ttl", "1h30m"],
            Lands(|i| init_of(i)?.token_ttl.clone(), "1h30m"),
        ),
        // the control-plane join line needs it, so init always passes it
        row(&["--upload-certs"], NativeAlways("--upload-certs")),
        // join only
        row(
            &["--control-plane"],
            Lands(|i| yes(join_of(i)?.control_plane), "true"),
        ),
        row(
            &["--discovery-file", "/root/cluster-info.yaml"],
            Lands(
                |i| join_of(i)?.discovery_file.clone(),
                "/root/cluster-info.yaml",
            ),
        ),
        row(
            &["--discovery-token", TOKEN2],
            Lands(|i| join_of(i)?.discovery_token.clone(), TOKEN2),
        ),
        row(
            &["--discovery-token-ca-cert-hash", HASH],
            Lands(|i| items(&join_of(i)?.ca_cert_hashes), HASH),
        ),
        row(
            &["--discovery-token-unsafe-skip-ca-verification"],
            Lands(|i| yes(join_of(i)?.unsafe_skip_ca_verification), "true"),
        ),
        row(
            &["--tls-bootstrap-token", TOKEN2],
            Lands(|i| join_of(i)?.tls_bootstrap_token.clone(), TOKEN2),
        ),
    ]
}

fn class(d: Disposition) -> &'static str {
    match d {
        Disposition::Honoured(_) => "honoured",
        Disposition::Native => "native",
        Disposition::Rejected(_) => "refused",
    }
}

/// Checks one command line with the flag; returns what is wrong.
fn check_row(spec: &FlagSpec, row: &Row, command: &str, argv: &[&str]) -> Vec<String> {
    let name = spec.name;
    let at = format!("--{name} ({})", argv.join(" "));
    let parsed = parse(&args(argv));
    let flag_arg = |a: &String| a == &format!("--{name}") || a.starts_with(&format!("--{name}="));
    let mut wrong = Vec::new();
    match (&row.expect, parsed) {
        (Expect::Refused, Err(e)) => {
            let reason = match spec.disposition {
                Disposition::Rejected(reason) => reason,
                _ => "(none: the table does not refuse it)",
            };
            if e != (FlagError::Rejected {
                flag: name,
                reason: Msgid(reason),
            }) {
                wrong.push(format!("{at}: refused with {e:?}, not the table's reason"));
            }
        }
        (Expect::Refused, Ok(_)) => wrong.push(format!("{at}: accepted, not refused")),
        (_, Err(e)) => wrong.push(format!("{at}: refused: {e}")),
        (Expect::Lands(probe, want), Ok(i)) => {
            if probe(&i).as_deref() != Some(*want) {
                wrong.push(format!("{at}: parsed {:?}, not {want:?}", probe(&i)));
            }
            let without = if command == "init" {
                Invocation::Init(Box::default())
            } else {
                Invocation::Join(Box::default())
            };
            if let Some(v) = probe(&without) {
                wrong.push(format!("{at}: the probe reads {v:?} from flags without it"));
            }
            if let Some(a) = native_of(&i).iter().find(|a| flag_arg(a)) {
                wrong.push(format!("{at}: honoured, yet given to kubeadm as {a}"));
            }
        }
        (Expect::Only { bad }, Ok(i)) => {
            if let Some(a) = native_of(&i).iter().find(|a| flag_arg(a)) {
                wrong.push(format!("{at}: honoured, yet given to kubeadm as {a}"));
            }
            let mut other = base(command, name);
            other.extend([argv_flag(row), *bad]);
            match parse(&args(&other)) {
                Err(FlagError::Invalid { flag, .. }) if flag == name => {}
                other => wrong.push(format!("{at}: {bad:?} gives {other:?}, not invalid")),
            }
        }
        (Expect::Native(arg), Ok(i)) => {
            if !native_of(&i).iter().any(|a| a == arg) {
                wrong.push(format!(
                    "{at}: native arguments {:?} lack {arg}",
                    native_of(&i)
                ));
            }
            match parse(&args(&base(command, name))) {
                Ok(without) if native_of(&without).iter().any(|a| a == arg) => {
                    wrong.push(format!("{at}: {arg} is given to kubeadm without the flag"))
                }
                Ok(_) => {}
                Err(e) => wrong.push(format!("{at}: without the flag: {e}")),
            }
        }
        (Expect::NativeAlways(arg), Ok(i)) => {
            let without = parse(&args(&base(command, name))).map(|w| native_of(&w));
            if !native_of(&i).iter().any(|a| a == arg)
                || !without.as_ref().is_ok_and(|w| w.iter().any(|a| a == arg))
            {
                wrong.push(format!(
                    "{at}: {arg} not always given: {:?}, without the flag {without:?}",
                    native_of(&i)
                ));
            }
        }
    }
    wrong
}

/// `--name` of a row (its first argument, without `=VALUE`).
fn argv_flag(row: &Row) -> &'static str {
    row.args[0].split('=').next().unwrap_or_default()
}

#[test]
fn every_flag_of_the_table_has_its_disposition_through_the_parser() {
    let rows = expected();
    let mut wrong = Vec::new();
    // One row per flag of the table, in its order, and no row for a flag it lacks.
    let names: Vec<&str> = rows.iter().map(|r| &argv_flag(r)[2..]).collect();
    let table: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
    assert_eq!(names, table, "the rows of expected() follow FLAGS");
    // Without flags nothing is set: what a row reads comes from its flag.
    assert_eq!(
        parse(&args(&["init"])).unwrap(),
        Invocation::Init(Box::default())
    );
    assert_eq!(
        parse(&args(&base("join", ""))).unwrap(),
        Invocation::Join(Box::new(JoinFlags {
            common: CommonFlags {
                token: Some(TOKEN.into()),
                ..CommonFlags::default()
            },
            endpoint: Some("192.0.2.10:6443".into()),
            ca_cert_hashes: vec![HASH.into()],
            ..JoinFlags::default()
        }))
    );
    for (spec, row) in FLAGS.iter().zip(&rows) {
        let name = spec.name;
        let said = match row.expect {
            Expect::Lands(..) | Expect::Only { .. } => "honoured",
            Expect::Native(_) | Expect::NativeAlways(_) => "native",
            Expect::Refused => "refused",
        };
        if class(spec.disposition) != said {
            wrong.push(format!(
                "--{name}: the table says {}, expected() says {said}",
                class(spec.disposition)
            ));
        }
        // The short form, where there is one, does the same.
        let short = spec.short.map(|c| {
            let mut a: Vec<String> = args(row.args);
            a[0] = format!("-{c}");
            a
        });
        let forms: Vec<Vec<String>> = std::iter::once(args(row.args)).chain(short).collect();
        for command in ["init", "join"] {
            let allowed = match spec.scope {
                Scope::Global | Scope::Both => true,
                Scope::Init => command == "init",
                Scope::Join => command == "join",
            };
            for form in &forms {
                let form: Vec<&str> = form.iter().map(String::as_str).collect();
                let mut after = base(command, name);
                after.extend(&form);
                if !allowed {
                    let belongs = if command == "init" { "join" } else { "init" };
                    let got = parse(&args(&after));
                    if got
                        != Err(FlagError::WrongCommand {
                            command,
                            flag: name,
                            belongs,
                        })
                    {
                        wrong.push(format!("--{name} ({}): {got:?}", after.join(" ")));
                    }
                    continue;
                }
                wrong.extend(check_row(spec, row, command, &after));
                if spec.scope == Scope::Global {
                    // in front of the subcommand, as kubeadm's global flags may stand
                    let mut before = form.clone();
                    before.extend(base(command, name));
                    wrong.extend(check_row(spec, row, command, &before));
                }
            }
        }
    }
    // A flag the table lacks is refused, after the subcommand or in front of it: the parser
    // looks every flag up instead of passing what it does not know to kubeadm.
    for command in ["init", "join"] {
        for unknown in ["--no-such-flag", "--no-such-flag=1", "-x"] {
            let name = unknown.split('=').next().unwrap_or_default();
            let mut after = base(command, "");
            after.push(unknown);
            let mut before = vec![unknown];
            before.extend(base(command, ""));
            for (argv, said) in [(after, command), (before, "(global)")] {
                let got = parse(&args(&argv));
                let want = FlagError::Unknown {
                    command: said,
                    flag: name.into(),
                };
                if got != Err(want) {
                    wrong.push(format!("{unknown} ({}): {got:?}", argv.join(" ")));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The flags a child process of this test binary gets in its environment: upstream's
/// wrapper read FLAG_<name> variables (§10.2 defect 9); a value for every flag of the table.
fn flag_environment() -> Vec<(String, String)> {
    FLAGS
        .iter()
        .zip(expected())
        .map(|(spec, row)| {
            let value = row.args.get(1).copied().unwrap_or(match spec.kind {
                Kind::Bool => "true",
                _ => row.args[0].split_once('=').map_or("x", |(_, v)| v),
            });
            (
                format!("FLAG_{}", spec.name.replace('-', "_")),
                value.to_string(),
            )
        })
        .collect()
}

#[test]
fn the_environment_never_feeds_flags() {
    // The table test runs again in a child process with a FLAG_ variable for every flag:
    // its checks that flags parsed without a flag have nothing set, and that every flag
    // lands exactly where it should, would fail if the parser read any of them.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let test = format!("{module}::every_flag_of_the_table_has_its_disposition_through_the_parser");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &test, "--test-threads=1"])
        .envs(flag_environment())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn upstream_flags_of_other_subcommands_reach_them_verbatim() {
    // upstream's u7s_flags also listed flags of upgrade, reset, token and config: they
    // are no flags of init or join, and those subcommands get them exactly as given
    for (flag, subcommand) in [
        ("--allow-experimental-upgrades", &["upgrade", "plan"][..]),
        (
            "--allow-release-candidate-upgrades",
            &["upgrade", "apply", "v1.33.2"],
        ),
        ("--api-server-manifest=/x.yaml", &["upgrade", "diff"]),
        (
            "--certificate-renewal=false",
            &["upgrade", "apply", "v1.33.2"],
        ),
        ("--context-lines=5", &["upgrade", "diff"]),
        (
            "--controller-manager-manifest=/x.yaml",
            &["upgrade", "diff"],
        ),
        ("--etcd-upgrade=false", &["upgrade", "apply", "v1.33.2"]),
        ("--output=json", &["token", "list"]),
        ("--print-config", &["upgrade", "apply", "v1.33.2"]),
        ("--show-managed-fields", &["token", "list"]),
        ("--scheduler-manifest=/x.yaml", &["upgrade", "diff"]),
        ("--cleanup-tmp-dir", &["reset", "-f"]),
    ] {
        let name = flag.split('=').next().unwrap();
        assert_eq!(
            init(&[flag]).unwrap_err(),
            FlagError::Unknown {
                command: "init",
                flag: name.into()
            }
        );
        assert!(
            matches!(
                join(&[flag]),
                Err(FlagError::Unknown {
                    command: "join",
                    ..
                })
            ),
            "{flag}"
        );
        let mut argv = subcommand.to_vec();
        argv.push(flag);
        native(&argv);
    }
    // upstream declared --output boolean and broke `-o json`: the value reaches kubeadm
    native(&["token", "list", "-o", "json"]);
}
