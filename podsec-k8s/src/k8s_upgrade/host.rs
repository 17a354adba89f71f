//! The side effects of an upgrade, behind one trait so the order of the steps, the resumption
//! and the refusals are unit-tested with a recording fake (tests.rs); [`RealHost`] is the node.

use std::path::Path;
use std::process::Stdio;

use podsec_common::i18n::{Localize, Message};
use podsec_common::msg;

use super::journal::{JOURNAL_PATH, Journal};
use crate::node_config::{NODE_CONFIG_PATH, NodeConfig};
use crate::u7s_kubeadm::packages::{self, Installed};
use crate::u7s_kubeadm::runtime::{InstalledRuntime, Runtime};
use crate::u7s_kubeadm::versions::Minor;

pub trait UpgradeHost {
    /// The versions of the installed kubeadm, kubelet and CRI-O.
    fn installed(&self) -> Installed;
    /// Installs kubeadm and the kubelet of `minor` (ALT's packages); an error elsewhere.
    fn install_packages(&self, minor: Minor) -> Result<(), Message>;
    /// `argv` inside the u7s namespace; its standard output.
    fn output(&self, argv: &[String]) -> Result<String, Message>;
    /// `argv` inside the u7s namespace, its output going to the administrator's terminal.
    fn run(&self, argv: &[String]) -> Result<(), Message>;
    /// podsec's audit settings in the kube-apiserver manifest (idempotent).
    fn patch_audit(&self) -> Result<(), Message>;
    /// Replaces node.toml.
    fn save_node_config(&self, config: &NodeConfig) -> Result<(), Message>;
    /// Restarts the kubelet; with `whole`, the namespace and CRI-O too.
    fn restart(&self, whole: bool) -> Result<(), Message>;
    /// `kubectl apply` of `manifest` inside the namespace with `kubeconfig`.
    fn apply_manifest(&self, kubeconfig: &str, manifest: &str) -> Result<(), Message>;
    fn save_journal(&self, journal: &Journal) -> Result<(), Message>;
    fn remove_journal(&self) -> Result<(), Message>;
    /// A progress line for the administrator.
    fn say(&self, line: &Message);
    fn pause(&self, seconds: u64);
}

/// The node this command runs on.
pub struct RealHost {
    runtime: InstalledRuntime,
    alt: bool,
}

impl RealHost {
    pub fn new(alt: bool) -> RealHost {
        RealHost {
            runtime: InstalledRuntime::new(),
            alt,
        }
    }

    pub fn namespace_running(&self) -> bool {
        self.runtime.is_running()
    }
}

/// The last three lines of a program's messages, on one line.
fn last_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

impl UpgradeHost for RealHost {
    fn installed(&self) -> Installed {
        packages::detect_installed()
    }

    fn install_packages(&self, minor: Minor) -> Result<(), Message> {
        if !self.alt {
            return Err(msg!(
                "this distribution has no packages podsec can install: install kubeadm and the kubelet of Kubernetes {minor} as /usr/bin/kubeadm and /usr/bin/kubelet, then run this command again"
            ));
        }
        let plan = packages::PackagePlan {
            minor,
            install: packages::package_names(minor)
                .into_iter()
                .filter(|n| n.ends_with("-kubeadm") || n.ends_with("-kubelet"))
                .collect(),
            notes: Vec::new(),
        };
        for argv in plan.commands() {
            // Outside the host seam: UpgradeHost (this file) is the upgrade's own seam, faked in its tests.
            let status = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .status()
                .map_err(|e| msg!("cannot run {}: {e}", argv[0]))?;
            if !status.success() {
                return Err(msg!("{} failed: {status}", argv.join(" ")));
            }
        }
        Ok(())
    }

    fn output(&self, argv: &[String]) -> Result<String, Message> {
        let output = self
            .runtime
            .in_namespace(argv)
            .map_err(|e| Message::of(&e))?
            .stdin(Stdio::null())
            .output()
            .map_err(|e| msg!("cannot run {}: {e}", argv[0]))?;
        if !output.status.success() {
            return Err(msg!(
                "{} failed ({}): {}",
                argv[..argv.len().min(4)].join(" "),
                output.status,
                last_lines(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn run(&self, argv: &[String]) -> Result<(), Message> {
        let status = self
            .runtime
            .in_namespace(argv)
            .map_err(|e| Message::of(&e))?
            .stdin(Stdio::null())
            .status()
            .map_err(|e| msg!("cannot run {}: {e}", argv[0]))?;
        if status.success() {
            Ok(())
        } else {
            Err(msg!("{} failed: {status}", argv.join(" ")))
        }
    }

    fn patch_audit(&self) -> Result<(), Message> {
        crate::u7s_kubeadm::apply::patch_audit(&podsec_common::host::RealHost)
    }

    fn save_node_config(&self, config: &NodeConfig) -> Result<(), Message> {
        config
            .save(Path::new(NODE_CONFIG_PATH))
            .map_err(|e| Message::of(&e))
    }

    fn restart(&self, whole: bool) -> Result<(), Message> {
        let config = NodeConfig::load_default().map_err(|e| Message::of(&e))?;
        crate::u7s::runtime::Runtime::new(&config)
            .and_then(|runtime| runtime.restart(whole))
            .map_err(|e| Message::of(&e))
    }

    fn apply_manifest(&self, kubeconfig: &str, manifest: &str) -> Result<(), Message> {
        use std::io::Write;
        let argv: Vec<String> = ["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", "-"]
            .map(String::from)
            .to_vec();
        let mut child = self
            .runtime
            .in_namespace(&argv)
            .map_err(|e| Message::of(&e))?
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| msg!("cannot run kubectl: {e}"))?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(manifest.as_bytes()));
        let output = child
            .wait_with_output()
            .map_err(|e| msg!("kubectl apply: {e}"))?;
        match written {
            Some(Err(e)) => Err(msg!("kubectl apply: {e}")),
            _ if !output.status.success() => Err(msg!(
                "kubectl apply failed ({}): {}",
                output.status,
                last_lines(&output.stderr)
            )),
            _ => Ok(()),
        }
    }

    fn save_journal(&self, journal: &Journal) -> Result<(), Message> {
        journal
            .save(Path::new(JOURNAL_PATH))
            .map_err(|e| Message::of(&e))
    }

    fn remove_journal(&self) -> Result<(), Message> {
        Journal::remove(Path::new(JOURNAL_PATH)).map_err(|e| Message::of(&e))
    }

    fn say(&self, line: &Message) {
        println!("podsec-k8s-upgrade: {}", line.localized());
    }

    fn pause(&self, seconds: u64) {
        std::thread::sleep(std::time::Duration::from_secs(seconds));
    }
}
