//! `u7s-kubelet`: the kubelet launcher (upstream kubelet.sh + _kubelet.sh, spec 4.6), the
//! ExecStart of the user unit kubelet.service. As u7s-admin, outside the namespace: loads the
//! node configuration, waits (bounded) for the namespace and CRI-O's socket, merges the rootless
//! settings into the /var/lib/kubelet/config.yaml kubeadm wrote (keeping its feature gates and
//! every other setting), and execs the kubelet inside the namespace through nsenter.

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use podsec_common::cli::{self, Failure};
use podsec_common::host::files;
use podsec_common::i18n::Message;
use podsec_common::msg;
use podsec_common::yaml;
use serde_json::{Map, Value};

use super::cgroups::CgroupVersion;
use super::nsenter;
use super::paths::{self, U7sPaths};
use super::runtime::CRIO_TIMEOUT;
use crate::node_config::{KubeVersion, NodeConfig, NodeConfigError};

pub const NAME: &str = "u7s-kubelet";
pub const KUBELET: &str = "/usr/bin/kubelet";
/// How long the launcher waits for kubeadm to write /var/lib/kubelet/config.yaml: the node is
/// started before `kubeadm init`/`join` runs, and kubeadm's own `systemctl restart kubelet`
/// reaches no service manager where the runtime was started directly.
pub const CONFIG_TIMEOUT: Duration = Duration::from_secs(900);
/// The first release whose kubelet no longer needs (and deprecates) --pod-infra-container-image:
/// from 1.27 the sandbox image comes from CRI-O's pause_image alone.
pub const POD_INFRA_FLAG_DROPPED: KubeVersion = KubeVersion {
    major: 1,
    minor: 27,
    patch: 0,
};
/// Flags the launcher sets itself; kubeadm's values for them (rootful paths) are dropped.
const OWN_FLAGS: &[&str] = &[
    "--bootstrap-kubeconfig",
    "--kubeconfig",
    "--config",
    "--root-dir",
    "--container-runtime-endpoint",
    "--node-ip",
    "--pod-infra-container-image",
    "--cert-dir",
];

/// Run the kubelet of this node inside the u7s namespace (the ExecStart of the user unit
/// kubelet.service); extra arguments are passed to the kubelet.
#[derive(Parser, Debug)]
#[command(name = NAME, version)]
pub struct Args {
    /// Extra kubelet flags
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub kubelet_flags: Vec<OsString>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    #[error(transparent)]
    Account(#[from] podsec_common::host::users::AccountError),
    #[error("must run as the node's account (uid {expected}), not uid {actual}")]
    WrongUser { expected: u32, actual: u32 },
    #[error("the u7s namespace is not running: {0}")]
    NotRunning(Message),
    #[error("CRI-O's socket {0} did not appear within {1:?}")]
    NoCrio(PathBuf, Duration),
    #[error("{0} did not appear: run kubeadm init or join (through the u7s wrapper)")]
    NoKubeletConfig(PathBuf),
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: Message },
    #[error(transparent)]
    File(#[from] files::FileError),
    #[error("cannot run {0}: {1}")]
    Exec(String, std::io::Error),
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let config = NodeConfig::load_default()?;
    let uid = nix::unistd::getuid().as_raw();
    if uid != config.uid {
        return Err(Error::WrongUser {
            expected: config.uid,
            actual: uid,
        });
    }
    let account = paths::account_of(uid)?;
    let paths = U7sPaths::new(uid, &account.home);
    let pid = nsenter::wait_ready(&paths, 30, Duration::from_secs(1))
        .map_err(|e| Error::NotRunning(Message::of(&e)))?;
    wait_socket(&paths.crio_socket(), CRIO_TIMEOUT)?;
    let config_file = paths.kubelet_dir().join("config.yaml");
    let text = wait_kubelet_config(&config_file, CONFIG_TIMEOUT)?;
    let merged = merge_config(
        &text,
        &paths,
        CgroupVersion::detect(),
        config.kubernetes_version,
    )
    .map_err(|message| Error::BadFile {
        path: config_file.clone(),
        message,
    })?;
    if merged != text {
        files::write_atomic(&config_file, merged.as_bytes(), 0o644, Default::default())?;
    }
    let flags_file = paths.kubelet_dir().join("kubeadm-flags.env");
    let kubeadm_flags = match std::fs::read_to_string(&flags_file) {
        Ok(text) => parse_kubeadm_flags(&text).map_err(|message| Error::BadFile {
            path: flags_file.clone(),
            message,
        })?,
        Err(_) => Vec::new(),
    };
    let argv = kubelet_argv(&config, &paths, &kubeadm_flags, &args.kubelet_flags);
    eprintln!(
        "[INFO] Starting the kubelet: {}",
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let error = nsenter::command(&paths, pid, Some(&account.home), &argv).exec();
    Err(Error::Exec(nsenter::NSENTER.into(), error))
}

/// The KubeletConfiguration kubeadm writes, once it is there (bounded).
fn wait_kubelet_config(path: &Path, timeout: Duration) -> Result<String, Error> {
    let deadline = Instant::now() + timeout;
    let mut told = false;
    loop {
        match std::fs::read_to_string(path) {
            // kubeadm writes it atomically; an empty file is a write still under way.
            Ok(text) if !text.trim().is_empty() => return Ok(text),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::BadFile {
                    path: path.to_path_buf(),
                    message: Message::of(&e),
                });
            }
        }
        if Instant::now() > deadline {
            return Err(Error::NoKubeletConfig(PathBuf::from(
                "/var/lib/kubelet/config.yaml",
            )));
        }
        if !told {
            eprintln!(
                "[INFO] waiting for /var/lib/kubelet/config.yaml (kubeadm init or join writes it)"
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn wait_socket(path: &Path, timeout: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::NoCrio(path.to_path_buf(), timeout));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The kubelet's command line inside the namespace.
pub fn kubelet_argv(
    config: &NodeConfig,
    paths: &U7sPaths,
    kubeadm_flags: &[String],
    extra: &[OsString],
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![KUBELET.into()];
    argv.extend(
        kubeadm_flags
            .iter()
            .filter(|flag| {
                let name = flag.split('=').next().unwrap_or_default();
                !OWN_FLAGS.contains(&name)
            })
            .map(OsString::from),
    );
    let mut own = vec![
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf".to_string(),
        "--kubeconfig=/etc/kubernetes/kubelet.conf".into(),
        "--config=/var/lib/kubelet/config.yaml".into(),
        "--root-dir=/var/lib/kubelet".into(),
        format!(
            "--container-runtime-endpoint=unix://{}",
            paths.crio_socket().display()
        ),
        format!("--node-ip={}", config.advertise_address),
    ];
    if config.kubernetes_version < POD_INFRA_FLAG_DROPPED {
        own.push(format!(
            "--pod-infra-container-image={}",
            config.pause_image
        ));
    }
    argv.extend(own.into_iter().map(OsString::from));
    argv.extend(extra.iter().cloned());
    argv
}

/// `KUBELET_KUBEADM_ARGS="--flag=value ..."` (what kubeadm writes) as flags; anything else in
/// the file, or a word that is not a `--flag`, is an error: it is never run through a shell.
pub fn parse_kubeadm_flags(text: &str) -> Result<Vec<String>, Message> {
    let mut flags = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let value = line
            .strip_prefix("KUBELET_KUBEADM_ARGS=")
            .ok_or_else(|| msg!("unexpected line '{line}'"))?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        for word in value.split_whitespace() {
            let name = word.split('=').next().unwrap_or_default();
            let valid_name = name.len() > 2
                && name.starts_with("--")
                && name[2..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid_name || word.contains(['"', '\'', '$', '`', '\\', ';']) {
                return Err(msg!("'{word}' is not a kubelet flag"));
            }
            flags.push(word.to_string());
        }
    }
    Ok(flags)
}

/// The first release with the InPlacePodVerticalScaling gate (alpha; on by default from 1.33).
const IN_PLACE_RESIZE_GATE: KubeVersion = KubeVersion {
    major: 1,
    minor: 27,
    patch: 0,
};

/// kubeadm's KubeletConfiguration with what a kubelet in a user namespace needs (upstream's
/// settings), merged key by key: feature gates and eviction thresholds already there stay.
/// Per-QoS cgroups only where the host delegates a cgroup v2 subtree (see [`CgroupVersion`]).
/// Without them pods have no cgroup to resize: in-place pod resize is switched off, or the
/// 1.33 kubelet dereferences the missing pod memory limit and crashes (it tries a resize of the
/// pods an older kubelet started, after an upgrade).
pub fn merge_config(
    text: &str,
    paths: &U7sPaths,
    cgroups: CgroupVersion,
    version: KubeVersion,
) -> Result<String, Message> {
    let mut document: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        yaml::from_str(text).map_err(|e| Message::of(&e))?
    };
    let root = document
        .as_object_mut()
        .ok_or_else(|| msg!("not a KubeletConfiguration mapping"))?;
    let key = |k: &str| k.to_string();
    root.entry(key("apiVersion"))
        .or_insert(Value::String("kubelet.config.k8s.io/v1beta1".into()));
    root.entry(key("kind"))
        .or_insert(Value::String("KubeletConfiguration".into()));
    let plugins = paths.data().join("kubelet-plugins-exec");
    let scalars: [(&str, Value); 6] = [
        (
            "volumePluginDir",
            Value::String(plugins.display().to_string()),
        ),
        ("cgroupDriver", Value::String("cgroupfs".into())),
        ("failSwapOn", Value::Bool(false)),
        ("localStorageCapacityIsolation", Value::Bool(false)),
        ("cgroupsPerQOS", Value::Bool(cgroups.per_qos_cgroups())),
        ("enforceNodeAllocatable", Value::Array(Vec::new())),
    ];
    for (name, value) in scalars {
        root.insert(key(name), value);
    }
    let mut entries = vec![
        ("featureGates", "KubeletInUserNamespace", Value::Bool(true)),
        (
            "evictionHard",
            "nodefs.available",
            Value::String("3%".into()),
        ),
    ];
    if !cgroups.per_qos_cgroups() && version >= IN_PLACE_RESIZE_GATE {
        entries.push((
            "featureGates",
            "InPlacePodVerticalScaling",
            Value::Bool(false),
        ));
    }
    for (map, name, value) in entries {
        let entry = root.entry(key(map)).or_insert(Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry
            .as_object_mut()
            .expect("a mapping")
            .insert(key(name), value);
    }
    yaml::to_string(&document).map_err(|e| Message::of(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(version: &str) -> NodeConfig {
        crate::node_config::tests::example_with(&[
            ("role", r#""worker""#),
            ("kubernetes-version", &format!("\"{version}\"")),
            ("pause-image", r#""registry.local/c10f/pause:3.9""#),
        ])
    }

    #[test]
    fn merging_keeps_existing_feature_gates_and_settings() {
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let kubeadm = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDNS:\n- 10.96.0.10\nfeatureGates:\n  GracefulNodeShutdown: true\nevictionHard:\n  memory.available: 100Mi\ncgroupDriver: systemd\n";
        let merged: Value =
            yaml::from_str(&merge_config(kubeadm, &paths, CgroupVersion::V2, v133()).unwrap())
                .unwrap();
        assert_eq!(
            merged["featureGates"]["GracefulNodeShutdown"],
            Value::Bool(true)
        );
        assert_eq!(
            merged["featureGates"]["KubeletInUserNamespace"],
            Value::Bool(true)
        );
        assert_eq!(
            merged["evictionHard"]["memory.available"].as_str(),
            Some("100Mi")
        );
        assert_eq!(
            merged["evictionHard"]["nodefs.available"].as_str(),
            Some("3%")
        );
        assert_eq!(merged["cgroupDriver"].as_str(), Some("cgroupfs"));
        assert_eq!(merged["clusterDNS"][0].as_str(), Some("10.96.0.10"));
        assert_eq!(merged["failSwapOn"], Value::Bool(false));
        assert_eq!(
            merged["volumePluginDir"].as_str(),
            Some("/var/lib/u7s-admin/.local/share/usernetes/kubelet-plugins-exec")
        );
        // Merging again changes nothing (no rewrite at every restart).
        let once = merge_config(kubeadm, &paths, CgroupVersion::V2, v133()).unwrap();
        assert_eq!(
            merge_config(&once, &paths, CgroupVersion::V2, v133()).unwrap(),
            once
        );
        assert!(merge_config("- a list", &paths, CgroupVersion::V2, v133()).is_err());
    }

    fn v133() -> KubeVersion {
        "v1.33.13".parse().unwrap()
    }

    #[test]
    fn in_place_resize_is_off_where_pods_have_no_cgroup() {
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let kubeadm = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfeatureGates:\n  InPlacePodVerticalScaling: true\n";
        let gate = |cgroups, version: &str| {
            let merged: Value = yaml::from_str(
                &merge_config(kubeadm, &paths, cgroups, version.parse().unwrap()).unwrap(),
            )
            .unwrap();
            merged["featureGates"]["InPlacePodVerticalScaling"].clone()
        };
        assert_eq!(gate(CgroupVersion::V1, "v1.33.13"), Value::Bool(false));
        assert_eq!(gate(CgroupVersion::V1, "v1.27.0"), Value::Bool(false));
        // Where pods have cgroups, kubeadm's (the administrator's) choice stays.
        assert_eq!(gate(CgroupVersion::V2, "v1.33.13"), Value::Bool(true));
        // 1.26 has no such gate: naming it would stop its kubelet.
        let merged: Value = yaml::from_str(
            &merge_config(
                "kind: KubeletConfiguration\n",
                &paths,
                CgroupVersion::V1,
                "v1.26.15".parse().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            merged["featureGates"]
                .get("InPlacePodVerticalScaling")
                .is_none()
        );
    }

    #[test]
    fn merging_keeps_kubeadm_key_order_for_a_readable_diff() {
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let kubeadm = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: /etc/kubernetes/manifests\ncgroupDriver: systemd\nauthentication:\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n  anonymous:\n    enabled: false\n";
        let merged = merge_config(kubeadm, &paths, CgroupVersion::V2, v133()).unwrap();
        // kubeadm's keys where they were (cgroupDriver replaced in place), ours after them
        let keys: Vec<&str> = merged
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "kind",
                "staticPodPath",
                "cgroupDriver",
                "authentication",
                "volumePluginDir",
                "failSwapOn",
                "localStorageCapacityIsolation",
                "cgroupsPerQOS",
                "enforceNodeAllocatable",
                "featureGates",
                "evictionHard",
            ]
        );
        assert!(
            merged
                .contains("  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n  anonymous:\n"),
            "{merged}"
        );
    }

    #[test]
    fn per_qos_cgroups_only_on_cgroup_v2() {
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let kubeadm = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupsPerQOS: true\n";
        for (cgroups, per_qos) in [(CgroupVersion::V1, false), (CgroupVersion::V2, true)] {
            let merged: Value =
                yaml::from_str(&merge_config(kubeadm, &paths, cgroups, v133()).unwrap()).unwrap();
            assert_eq!(merged["cgroupsPerQOS"], Value::Bool(per_qos), "{cgroups:?}");
            assert_eq!(merged["enforceNodeAllocatable"], Value::Array(Vec::new()));
        }
    }

    #[test]
    fn the_pause_flag_only_where_the_version_still_needs_it() {
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let words = |argv: Vec<OsString>| -> Vec<String> {
            argv.into_iter().map(|a| a.into_string().unwrap()).collect()
        };
        let new = words(kubelet_argv(&config("v1.33.13"), &paths, &[], &[]));
        assert!(
            !new.iter()
                .any(|a| a.starts_with("--pod-infra-container-image")),
            "{new:?}"
        );
        assert!(
            new.contains(
                &"--container-runtime-endpoint=unix:///run/user/990/usernetes/crio/crio.sock"
                    .to_string()
            )
        );
        assert!(new.contains(&"--node-ip=192.0.2.10".to_string()));
        let old = words(kubelet_argv(&config("v1.26.11"), &paths, &[], &[]));
        assert!(
            old.contains(&"--pod-infra-container-image=registry.local/c10f/pause:3.9".to_string())
        );
    }

    #[test]
    fn kubeadm_flags_are_parsed_strictly_and_ours_win() {
        let flags = parse_kubeadm_flags(
            "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/crio/crio.sock --pod-infra-container-image=registry.k8s.io/pause:3.9 --hostname-override=node-1\"\n",
        )
        .unwrap();
        assert_eq!(flags.len(), 3);
        let paths = U7sPaths::new(990, "/var/lib/u7s-admin");
        let argv: Vec<String> = kubelet_argv(&config("v1.33.13"), &paths, &flags, &[])
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(argv.contains(&"--hostname-override=node-1".to_string()));
        assert_eq!(
            argv.iter()
                .filter(|a| a.starts_with("--container-runtime-endpoint"))
                .count(),
            1
        );
        assert!(!argv.iter().any(|a| a.contains("registry.k8s.io/pause")));
        for bad in [
            "KUBELET_KUBEADM_ARGS=\"--x=$(reboot)\"",
            "OTHER=1",
            "KUBELET_KUBEADM_ARGS=\"node\"",
        ] {
            assert!(parse_kubeadm_flags(bad).is_err(), "{bad}");
        }
    }
}
