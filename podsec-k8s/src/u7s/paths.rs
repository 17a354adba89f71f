//! Where the u7s runtime keeps things: root-owned code in /usr/libexec/podsec/u7s/bin, u7s-admin's
//! data under its home and its runtime directory /run/user/<uid> (spec section 2).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use podsec_common::host::users::{self, Account, AccountError};

/// The service account every cluster process runs as.
pub const U7S_USER: &str = "u7s-admin";
/// PATH of the processes the runtime starts.
pub const U7S_PATH: &str =
    "/usr/libexec/podsec/u7s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Host directories bound, inside the namespace, over private directories of u7s-admin (named
/// after the path, `/var/lib/kubelet` → `_var_lib_kubelet`).
pub const PRIVATE_DIRS: &[&str] = &[
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/log",
    "/var/lib/containers",
    "/var/cache",
];
/// Host directories whose contents are copied into a private directory bound over them inside
/// the namespace: pods (flannel's install-cni) write there, and their writes never reach the
/// files root's podman and CNI use (upstream defect 4 handed those to u7s-admin).
pub const SEEDED_DIRS: &[&str] = &["/etc/cni/net.d", "/opt/cni/bin"];
/// Where the distribution's CNI plugins live (ALT, then Debian), the seed of /opt/cni/bin.
pub const CNI_PLUGIN_DIRS: &[&str] = &["/usr/libexec/cni", "/usr/lib/cni"];

/// The runtime's paths for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct U7sPaths {
    pub uid: u32,
    pub home: PathBuf,
    runtime_dir: PathBuf,
}

impl U7sPaths {
    pub fn new(uid: u32, home: impl Into<PathBuf>) -> U7sPaths {
        U7sPaths {
            uid,
            home: home.into(),
            runtime_dir: PathBuf::from(format!("/run/user/{uid}")),
        }
    }

    /// The same paths under another runtime directory (unit tests).
    #[cfg(test)]
    pub fn with_runtime_dir(mut self, dir: impl Into<PathBuf>) -> U7sPaths {
        self.runtime_dir = dir.into();
        self
    }

    /// `/run/user/<uid>` (logind's XDG_RUNTIME_DIR of the account).
    pub fn runtime_dir(&self) -> PathBuf {
        self.runtime_dir.clone()
    }
    pub fn usernetes_runtime(&self) -> PathBuf {
        self.runtime_dir().join("usernetes")
    }
    /// RootlessKit's `--state-dir`: child_pid, api.sock, the ready file.
    pub fn state_dir(&self) -> PathBuf {
        self.usernetes_runtime().join("rootlesskit")
    }
    pub fn child_pid_file(&self) -> PathBuf {
        self.state_dir().join("child_pid")
    }
    /// Written by the child half once the namespace is set up, with child_pid's contents.
    pub fn ready_file(&self) -> PathBuf {
        self.state_dir().join("_child_pid.u7s-ready")
    }
    pub fn api_socket(&self) -> PathBuf {
        self.state_dir().join("api.sock")
    }
    pub fn crio_runtime(&self) -> PathBuf {
        self.usernetes_runtime().join("crio")
    }
    pub fn crio_socket(&self) -> PathBuf {
        self.crio_runtime().join("crio.sock")
    }
    /// Directly started units (no systemd): their PIDs.
    pub fn direct_dir(&self) -> PathBuf {
        self.usernetes_runtime().join("direct")
    }
    /// `$XDG_DATA_HOME/usernetes`.
    pub fn data(&self) -> PathBuf {
        self.home.join(".local/share/usernetes")
    }
    /// `$XDG_CONFIG_HOME/usernetes`.
    pub fn config(&self) -> PathBuf {
        self.home.join(".config/usernetes")
    }
    pub fn crio_config(&self) -> PathBuf {
        self.config().join("crio/crio.conf")
    }
    pub fn logs(&self) -> PathBuf {
        self.data().join("log")
    }
    /// The private directory bound over `target` inside the namespace.
    pub fn private_dir(&self, target: &str) -> PathBuf {
        self.data().join(target.replace('/', "_"))
    }
    /// `/var/lib/kubelet` of the namespace, as seen from outside.
    pub fn kubelet_dir(&self) -> PathBuf {
        self.private_dir("/var/lib/kubelet")
    }
}

/// The account of the node's uid (NSS lookup, not `$HOME`).
pub fn account_of(uid: u32) -> Result<Account, AccountError> {
    users::find_user_by_uid(uid)?.ok_or_else(|| AccountError::NoSuchUser(uid.to_string()))
}

/// `program args` as `account` (groups, gid, uid dropped in that order before exec) with its
/// HOME, USER, LOGNAME, XDG_RUNTIME_DIR and the u7s PATH. The caller must be root or `account`.
pub fn command_as(account: &Account, program: impl Into<OsString>, args: &[OsString]) -> Command {
    command_as_limited(account, program, args, None)
}

/// [`command_as`] with RLIMIT_NOFILE set to `nofile` first (while still root; clamped to the
/// hard limit where it may not be raised), as systemd's LimitNOFILE= does.
pub fn command_as_limited(
    account: &Account,
    program: impl Into<OsString>,
    args: &[OsString],
    nofile: Option<u64>,
) -> Command {
    let mut command = Command::new(program.into());
    command
        .args(args)
        .env("HOME", &account.home)
        .env("USER", &account.name)
        .env("LOGNAME", &account.name)
        .env("XDG_RUNTIME_DIR", format!("/run/user/{}", account.uid))
        .env("PATH", U7S_PATH)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .current_dir(if account.home.is_dir() {
            account.home.as_path()
        } else {
            Path::new("/")
        });
    if let Some(limit) = nofile {
        // SAFETY: getrlimit and setrlimit are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let mut current = nix::libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                nix::libc::getrlimit(nix::libc::RLIMIT_NOFILE, &mut current);
                let wanted = nix::libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit.max(current.rlim_max),
                };
                if nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &wanted) != 0 {
                    let clamped = nix::libc::rlimit {
                        rlim_cur: limit.min(current.rlim_max),
                        rlim_max: current.rlim_max,
                    };
                    if nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &clamped) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    if nix::unistd::geteuid().is_root() {
        let (uid, gid) = (
            nix::unistd::Uid::from_raw(account.uid),
            nix::unistd::Gid::from_raw(account.gid),
        );
        // The group list is read here: NSS is not async-signal-safe.
        let groups = std::ffi::CString::new(account.name.as_str())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, gid).ok())
            .unwrap_or_else(|| vec![gid]);
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
                Ok(())
            });
        }
    }
    command
}
