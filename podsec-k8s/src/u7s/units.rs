//! The systemd units of the u7s runtime (podsec-k8s/units/, installed by `make install`) and
//! what the direct launcher reads from them: where systemd is not PID 1 (containers, CI, the
//! test sandbox) the same ExecStart lines are started by [`super::runtime`], so tests run the
//! production command lines.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// System unit: starts and stops the user units of u7s-admin (shipped as a file; checked here).
#[cfg(test)]
pub const U7S_SERVICE: &str = include_str!("../../units/u7s.service");
/// User unit: the namespaces with CRI-O.
pub const ROOTLESSKIT_SERVICE: &str = include_str!("../../units/rootlesskit.service");
/// User unit: the kubelet.
pub const KUBELET_SERVICE: &str = include_str!("../../units/kubelet.service");

/// The user units, in start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserUnit {
    Rootlesskit,
    Kubelet,
}

impl UserUnit {
    pub const ALL: [UserUnit; 2] = [UserUnit::Rootlesskit, UserUnit::Kubelet];

    pub fn name(self) -> &'static str {
        match self {
            UserUnit::Rootlesskit => "rootlesskit.service",
            UserUnit::Kubelet => "kubelet.service",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            UserUnit::Rootlesskit => ROOTLESSKIT_SERVICE,
            UserUnit::Kubelet => KUBELET_SERVICE,
        }
    }

    pub fn service(self) -> ServiceSection {
        ServiceSection::parse(self.text()).expect("the shipped units parse")
    }
}

/// The `[Service]` settings the direct launcher honours.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceSection {
    pub exec_start_pre: Vec<Vec<String>>,
    pub exec_start: Vec<String>,
    pub working_directory: Option<String>,
    pub limit_nofile: Option<u64>,
    pub notify: bool,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize, PartialEq, Eq)]
#[error("unit line '{0}': {1}")]
pub struct UnitError(pub String, pub &'static str);

impl ServiceSection {
    /// Reads the `[Service]` section. Our units use no quoting, no `$` expansion and no
    /// prefixes (`-`, `@`, `!`) in command lines: those are refused rather than misread.
    pub fn parse(text: &str) -> Result<ServiceSection, UnitError> {
        let mut section = String::new();
        let mut service = ServiceSection::default();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            if section != "[Service]" {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| UnitError(line.into(), "no '='"))?;
            let command = |value: &str| -> Result<Vec<String>, UnitError> {
                if value.contains(['"', '\'', '$', '\\'])
                    || value.starts_with(['-', '@', '!', '+', ':'])
                {
                    return Err(UnitError(line.into(), "quoting, expansion or prefixes"));
                }
                let words: Vec<String> = value.split_whitespace().map(str::to_string).collect();
                if words.first().is_none_or(|w| !w.starts_with('/')) {
                    return Err(UnitError(line.into(), "not an absolute command"));
                }
                Ok(words)
            };
            match key.trim() {
                "ExecStartPre" => service.exec_start_pre.push(command(value.trim())?),
                "ExecStart" => service.exec_start = command(value.trim())?,
                "WorkingDirectory" => service.working_directory = Some(value.trim().into()),
                "LimitNOFILE" => {
                    service.limit_nofile = Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| UnitError(line.into(), "LimitNOFILE is not a number"))?,
                    )
                }
                "Type" => service.notify = value.trim() == "notify",
                _ => {}
            }
        }
        if service.exec_start.is_empty() {
            return Err(UnitError(String::new(), "no ExecStart"));
        }
        Ok(service)
    }

    /// The working directory with `%h` (the account's home) resolved.
    pub fn working_directory_for(&self, home: &Path) -> PathBuf {
        match self.working_directory.as_deref() {
            Some("%h") | None => home.to_path_buf(),
            Some(dir) => PathBuf::from(dir.replace("%h", &home.to_string_lossy())),
        }
    }
}

/// A command line as arguments.
pub fn argv(words: &[String]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_run_root_owned_helpers_and_source_nothing() {
        for unit in [U7S_SERVICE, ROOTLESSKIT_SERVICE, KUBELET_SERVICE] {
            // Upstream loaded u7s-admin's env file into root's and the user's units (defect 2).
            assert!(!unit.contains("EnvironmentFile"), "{unit}");
            for line in unit.lines().filter(|l| l.starts_with("Exec")) {
                let program = line
                    .split_once('=')
                    .unwrap()
                    .1
                    .split_whitespace()
                    .next()
                    .unwrap();
                assert!(
                    program.starts_with("/usr/libexec/podsec/u7s/bin/"),
                    "{line}"
                );
            }
        }
        let rootlesskit = UserUnit::Rootlesskit.service();
        assert_eq!(
            rootlesskit.exec_start,
            ["/usr/libexec/podsec/u7s/bin/u7s-rootlesskit"]
        );
        assert!(rootlesskit.notify);
        assert_eq!(rootlesskit.limit_nofile, Some(65536));
        assert_eq!(
            rootlesskit.working_directory_for(Path::new("/var/lib/u7s-admin")),
            Path::new("/var/lib/u7s-admin")
        );
        assert!(KUBELET_SERVICE.contains("BindsTo=rootlesskit.service"));
        let system = ServiceSection::parse(U7S_SERVICE).unwrap();
        assert_eq!(
            system.exec_start,
            ["/usr/libexec/podsec/u7s/bin/u7s-start-stop", "start"]
        );
        assert!(!U7S_SERVICE.contains("ping_group_range"));
    }

    #[test]
    fn command_lines_the_launcher_cannot_read_exactly_are_refused() {
        for bad in [
            "[Service]\nExecStart=-/bin/true\n",
            "[Service]\nExecStart=/bin/sh -c \"x\"\n",
            "[Service]\nExecStart=/bin/echo $HOME\n",
            "[Service]\nExecStart=true\n",
            "[Service]\nType=simple\n",
        ] {
            assert!(ServiceSection::parse(bad).is_err(), "{bad}");
        }
    }
}
