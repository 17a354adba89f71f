//! Distribution profiles: every path and command that differs between ALT Linux (the product's
//! platform) and Debian (where the tests run), in one place, chosen from /etc/os-release.

use std::collections::HashMap;
use std::path::Path;

/// The parsed `/etc/os-release` (os-release(5): `KEY=value`, values optionally quoted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    fields: HashMap<String, String>,
}

impl OsRelease {
    pub fn parse(text: &str) -> OsRelease {
        let mut fields = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                fields.insert(key.trim().to_string(), unquote(value.trim()));
            }
        }
        OsRelease { fields }
    }

    /// `/etc/os-release`, else `/usr/lib/os-release`, else empty.
    pub fn load(root: &Path) -> OsRelease {
        ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|p| std::fs::read_to_string(root.join(p)).ok())
            .map(|t| OsRelease::parse(&t))
            .unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The ALT platform name used in registry paths (`c10f`, `p10`, `p11`, `sisyphus`), as upstream
    /// `getPlatform` derives it: `ALT_BRANCH_ID` (`c10f*` → `c10f`), else the product and version
    /// of `CPE_NAME` (`spserver` → `c10f`, `sisyphus`, else `p<major>`). `None` off ALT.
    pub fn alt_platform(&self) -> Option<String> {
        if let Some(branch) = self.get("ALT_BRANCH_ID") {
            return Some(if branch.starts_with("c10f") {
                "c10f".into()
            } else {
                branch.into()
            });
        }
        let cpe = self.get("CPE_NAME")?;
        let fields: Vec<&str> = cpe.split(':').collect();
        if fields.get(2) != Some(&"alt") {
            return None;
        }
        let product = fields.get(3).copied().unwrap_or_default();
        let major = fields
            .get(4)
            .and_then(|v| v.split('.').next())
            .unwrap_or_default();
        match product {
            "spserver" => Some("c10f".into()),
            "sisyphus" => Some("sisyphus".into()),
            _ if !major.is_empty() && major.chars().all(|c| c.is_ascii_digit()) => {
                Some(format!("p{major}"))
            }
            _ => None,
        }
    }
}

fn unquote(value: &str) -> String {
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    let inner = if quoted {
        &value[1..value.len() - 1]
    } else {
        value
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Alt,
    Debian,
}

/// Paths and commands of one distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub distribution: Distribution,
    /// Where our nginx server block for sigstore.local:81 goes (a file of our own, never an edit
    /// of the distribution's default site).
    pub nginx_conf_dir: &'static str,
    /// The distribution v2 registry's program and its system configuration.
    pub registry_program: &'static str,
    pub registry_config: &'static str,
    /// The systemd unit names of the services create-services starts.
    pub registry_unit: &'static str,
    pub nginx_unit: &'static str,
    pub trivy_unit: &'static str,
    /// The group of administrators (RBAC tools ask for it).
    pub admin_group: &'static str,
    /// ALT's control(8) facility switcher (newuidmap/newgidmap restriction to group podman).
    pub control_program: Option<&'static str>,
    /// The group nginx's worker processes run as (they read the push password file).
    pub nginx_group: &'static str,
    /// The GnuPG 2 binary.
    pub gpg_program: &'static str,
    /// The sysctl that gates unprivileged user namespaces on ALT kernels.
    pub userns_sysctl: Option<&'static str>,
}

pub const ALT: Profile = Profile {
    distribution: Distribution::Alt,
    nginx_conf_dir: "/etc/nginx/sites-enabled.d",
    registry_program: "/usr/bin/docker-registry",
    registry_config: "/etc/docker-registry/config.yml",
    registry_unit: "docker-registry.service",
    nginx_unit: "nginx.service",
    trivy_unit: "trivy.service",
    admin_group: "wheel",
    nginx_group: "_nginx",
    control_program: Some("/usr/sbin/control"),
    gpg_program: "gpg2",
    userns_sysctl: Some("kernel.unprivileged_userns_clone"),
};

pub const DEBIAN: Profile = Profile {
    distribution: Distribution::Debian,
    nginx_conf_dir: "/etc/nginx/conf.d",
    registry_program: "/usr/bin/docker-registry",
    registry_config: "/etc/docker/registry/config.yml",
    registry_unit: "docker-registry.service",
    nginx_unit: "nginx.service",
    trivy_unit: "trivy.service",
    admin_group: "sudo",
    nginx_group: "www-data",
    control_program: None,
    gpg_program: "gpg",
    userns_sysctl: None,
};

impl Profile {
    /// ALT when os-release says `ID=altlinux` (or lists it in `ID_LIKE`), Debian otherwise.
    pub fn for_os(os: &OsRelease) -> &'static Profile {
        let is_alt = os.get("ID") == Some("altlinux")
            || os
                .get("ID_LIKE")
                .is_some_and(|like| like.split_whitespace().any(|id| id == "altlinux"));
        if is_alt { &ALT } else { &DEBIAN }
    }

    /// The profile of this machine.
    pub fn detect() -> &'static Profile {
        Profile::for_os(&OsRelease::load(Path::new("/")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALT_C10F: &str = "NAME=\"ALT SP Server\"\nID=altlinux\nVERSION_ID=10.2\nCPE_NAME=\"cpe:/o:alt:spserver:10.2\"\nALT_BRANCH_ID=\"c10f2\"\n";
    const ALT_P11: &str = "NAME=\"ALT Server\"\nID=altlinux\nCPE_NAME=\"cpe:/o:alt:server:11.0\"\n";
    const ALT_SISYPHUS: &str = "ID=altlinux\nCPE_NAME=cpe:/o:alt:sisyphus:20250101\n";
    const DEBIAN_12: &str =
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";

    #[test]
    fn platforms_as_upstream_derives_them() {
        assert_eq!(
            OsRelease::parse(ALT_C10F).alt_platform().as_deref(),
            Some("c10f")
        );
        assert_eq!(
            OsRelease::parse(ALT_P11).alt_platform().as_deref(),
            Some("p11")
        );
        assert_eq!(
            OsRelease::parse(ALT_SISYPHUS).alt_platform().as_deref(),
            Some("sisyphus")
        );
        assert_eq!(
            OsRelease::parse("ID=altlinux\nALT_BRANCH_ID=p10\n")
                .alt_platform()
                .as_deref(),
            Some("p10")
        );
        assert_eq!(OsRelease::parse(DEBIAN_12).alt_platform(), None);
    }

    #[test]
    fn profiles_differ_only_in_data() {
        let alt = Profile::for_os(&OsRelease::parse(ALT_C10F));
        let debian = Profile::for_os(&OsRelease::parse(DEBIAN_12));
        assert_eq!(alt.distribution, Distribution::Alt);
        assert_eq!(alt.registry_config, "/etc/docker-registry/config.yml");
        assert_eq!(alt.admin_group, "wheel");
        assert!(alt.control_program.is_some());
        assert_eq!(debian.distribution, Distribution::Debian);
        assert_eq!(debian.registry_config, "/etc/docker/registry/config.yml");
        assert!(debian.control_program.is_none());
        assert_eq!(
            Profile::for_os(&OsRelease::parse(
                "ID=altworkstation\nID_LIKE=\"altlinux\"\n"
            ))
            .distribution,
            Distribution::Alt
        );
    }

    #[test]
    fn quoting_and_escapes() {
        let os = OsRelease::parse("A=\"x \\\"y\\\"\"\nB='z'\n# C=1\nD=\n");
        assert_eq!(os.get("A"), Some("x \"y\""));
        assert_eq!(os.get("B"), Some("z"));
        assert_eq!(os.get("C"), None);
        assert_eq!(os.get("D"), None);
    }
}
