//! The steps of a plan: what each does, as the plan shows it.

use super::*;
use podsec_common::i18n::{Localize, Message};

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    InstallPackages {
        packages: Vec<String>,
        commands: Vec<Vec<String>>,
    },
    CreateGroup {
        name: String,
    },
    CreateUser {
        name: String,
        home: String,
        groups: Vec<String>,
    },
    AddSubIds {
        user: String,
        start: u64,
        count: u64,
    },
    AddToGroups {
        user: String,
        groups: Vec<String>,
    },
    RemoveLeftovers {
        paths: Vec<PathBuf>,
        stop_runtime: bool,
        confirmed: bool,
    },
    Sysctl {
        key: String,
        value: String,
    },
    LoadModules {
        modules: Vec<String>,
    },
    Directory {
        path: PathBuf,
        mode: u32,
        owner: Owner,
    },
    File {
        file: PlannedFile,
    },
    /// The runtime's node configuration; u7s-admin's uid is filled in when applied (the
    /// account may not exist when the plan is made).
    NodeConfig {
        config: NodeConfig,
    },
    StartRuntime,
    PullImages {
        commands: Vec<Vec<String>>,
    },
    RunKubeadm {
        argv: Vec<String>,
    },
    PatchAudit,
    CopyAdminConf {
        targets: Vec<PathBuf>,
    },
    ApplyFlannel {
        argv: Vec<String>,
    },
    /// The administrator's calico manifest, as validated (its copy in the plan's files).
    ApplyCalico {
        argv: Vec<String>,
    },
    EnableService,
}

pub(super) fn dir(path: &str, mode: u32, owner: Owner) -> Step {
    Step::Directory {
        path: path.into(),
        mode,
        owner,
    }
}

pub(super) fn file(path: impl Into<PathBuf>, mode: u32, owner: Owner, contents: String) -> Step {
    Step::File {
        file: PlannedFile {
            path: path.into(),
            mode,
            user: owner.user,
            group: owner.group,
            contents,
        },
    }
}

pub(super) fn mode_text(mode: u32) -> String {
    format!("{mode:04o}")
}

pub(super) fn argv_text(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty()
                || a.chars()
                    .any(|c| c.is_whitespace() || "'\"$`\\;&|<>()*?[]#~".contains(c))
            {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Step {
    /// One line saying what the step does.
    pub fn describe(&self) -> Message {
        match self {
            Step::InstallPackages { packages, .. } => {
                msg!("install packages {packages}", packages = packages.join(" "))
            }
            Step::CreateGroup { name } => msg!("create system group {name}", name = name),
            Step::CreateUser { name, home, groups } => {
                if groups.is_empty() {
                    msg!(
                        "create system user {name} (home {home}, primary group {name})",
                        name = name,
                        home = home
                    )
                } else {
                    msg!(
                        "create system user {name} (home {home}, primary group {name}, also in {groups})",
                        name = name,
                        home = home,
                        groups = groups.join(",")
                    )
                }
            }
            Step::AddSubIds { user, start, count } => msg!(
                "give {user} subordinate ids: usermod --add-subuids {start}-{end} --add-subgids {start}-{end} {user}",
                user = user,
                start = start,
                end = start + count - 1
            ),
            Step::AddToGroups { user, groups } => msg!(
                "add {user} to the groups {groups} (keeping its others)",
                user = user,
                groups = groups.join(",")
            ),
            Step::RemoveLeftovers {
                paths,
                stop_runtime,
                confirmed,
            } => {
                let paths = if paths.is_empty() {
                    msg!("(none)")
                } else {
                    Message::verbatim(
                        paths
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                };
                match (*stop_runtime, *confirmed) {
                    (false, true) => msg!(
                        "remove the leftovers of an earlier deployment: {paths}",
                        paths = paths
                    ),
                    (true, true) => msg!(
                        "stop the running u7s runtime, remove the leftovers of an earlier deployment: {paths}",
                        paths = paths
                    ),
                    (false, false) => msg!(
                        "remove the leftovers of an earlier deployment: {paths} -- needs --reset (or yes at the prompt)",
                        paths = paths
                    ),
                    (true, false) => msg!(
                        "stop the running u7s runtime, remove the leftovers of an earlier deployment: {paths} -- needs --reset (or yes at the prompt)",
                        paths = paths
                    ),
                }
            }
            Step::Sysctl { key, value } => {
                msg!("set {key} = {value} now", key = key, value = value)
            }
            Step::LoadModules { modules } => msg!(
                "load kernel modules not loaded yet: {modules}",
                modules = modules.join(" ")
            ),
            Step::Directory { path, mode, owner } => msg!(
                "directory {path} ({user}:{group} {mode})",
                path = path.display(),
                user = owner.user,
                group = owner.group,
                mode = mode_text(*mode)
            ),
            Step::File { file } => msg!(
                "file {path} ({user}:{group} {mode})",
                path = file.path.display(),
                user = file.user,
                group = file.group,
                mode = mode_text(file.mode)
            ),
            Step::NodeConfig { .. } => msg!(
                "node configuration {path} (root:root 0644)",
                path = NODE_CONFIG_PATH
            ),
            Step::StartRuntime => {
                msg!("start the u7s runtime of u7s-admin (namespace, CRI-O)")
            }
            Step::PullImages { commands } => msg!(
                "pull {count} images into u7s-admin's storage inside the namespace (the node's signature policy applies)",
                count = commands.len()
            ),
            Step::RunKubeadm { argv } => msg!(
                "run inside the namespace: {command}",
                command = argv_text(argv)
            ),
            Step::PatchAudit => msg!(
                "add the audit flags, mount and volume to {manifest}",
                manifest = audit::APISERVER_MANIFEST
            ),
            Step::CopyAdminConf { targets } => msg!(
                "copy {admin_conf} to {targets}",
                admin_conf = ADMIN_CONF,
                targets = AndList(targets)
            ),
            Step::ApplyFlannel { argv } => msg!(
                "apply flannel: {command} (bounded retries)",
                command = argv_text(argv)
            ),
            Step::ApplyCalico { argv } => msg!(
                "apply calico: {command} (bounded retries)",
                command = argv_text(argv)
            ),
            Step::EnableService => msg!("enable and start u7s.service"),
        }
    }
}

/// Paths joined by " and " (in the user's language when localized).
struct AndList<'a>(&'a [std::path::PathBuf]);

impl AndList<'_> {
    fn join(&self, and: &str) -> String {
        self.0
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(and)
    }
}

impl std::fmt::Display for AndList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.join(" and "))
    }
}

impl Localize for AndList<'_> {
    fn localized(&self) -> String {
        self.join(tr!(" and "))
    }
}
