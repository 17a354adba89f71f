//! The host as a trait, in the style of youki's `Syscall`: the side effects a command has go
//! through [`Host`] (and the directories it opens through [`HostDir`]), so that the command's
//! logic runs in unit tests against [`super::fake::FakeHost`], which records every effect,
//! without root. [`RealHost`] is the machine, through the rest of `host` (descriptors that
//! never follow a link, atomic replacement, the distribution's account tools).

use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::path::Path;
use std::process::{ExitStatus, Output};
use std::time::SystemTime;

use nix::errno::Errno;

use super::files::{self, FileError, Owner, SafeDir};
use super::services::{ReloadDone, UnitAction};
use super::users::{self, Account, AccountError, NewAccount};
use super::versioned::{Outcome, Versioned};
use super::{as_user, net, posix_acl, programs, services};
use crate::profile::Profile;

/// A directory held open: every name below it is reached without following a link.
pub trait HostDir: Sized {
    /// The path it was opened by, for messages.
    fn path(&self) -> &Path;
    /// Opens `relative` below, creating what is missing with `mode` and `owner`.
    fn create_dir_all(&self, relative: &Path, mode: u32, owner: Owner) -> Result<Self, FileError>;
    /// Creates the directory `name`, which must not exist yet, with exactly `mode` and `owner`.
    fn create_dir_new(&self, name: &str, mode: u32, owner: Owner) -> Result<Self, FileError>;
    fn set_mode_owner(&self, mode: u32, owner: Owner) -> Result<(), FileError>;
    /// Sets or clears the immutable attribute; false where the file system has none.
    fn set_immutable(&self, immutable: bool) -> Result<bool, FileError>;
    /// Atomically replaces the file `name` (a link there is replaced, never followed).
    fn write_file(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<(), FileError>;
    fn list(&self) -> Result<Vec<OsString>, FileError>;
    /// The directory `name` below, not following a link; `None` when there is nothing by that
    /// name.
    fn open_child(&self, name: &str) -> Result<Option<Self>, FileError>;
    /// The owner's uid of this directory.
    fn owner(&self) -> Result<u32, FileError>;
    /// Whether this process may create entries here (its effective ids, ACLs included).
    fn writable(&self) -> bool;
    /// A new file with `contents` under the first of `names` that is free (`None`: none was);
    /// it appears complete and never replaces anything.
    fn create_new_file(
        &self,
        names: impl IntoIterator<Item = String>,
        contents: &[u8],
        mode: u32,
    ) -> Result<Option<String>, FileError>;
    /// What `name` is, not following a link; `None` when there is nothing by that name.
    fn entry(&self, name: &str) -> Result<Option<EntryInfo>, FileError>;
    /// The regular file `name` (not a link), at most `limit` bytes.
    fn read_file(&self, name: &str, limit: u64) -> Result<Vec<u8>, FileError>;
    /// Moves the entry `name` into `to`, unfollowed.
    fn move_entry(&self, name: &OsStr, to: &Self) -> Result<(), FileError>;
    /// Removes what a killed writer of `<prefix>…` left (see [`files::sweep_stale_temps`]).
    fn sweep_stale_temps(&self, prefix: &str);
    /// Sets the POSIX access ACL (the kernel's binary form, [`posix_acl::encode`]).
    fn set_acl(&self, value: &[u8]) -> Result<(), Errno>;
    fn remove_acl(&self) -> Result<(), Errno>;
    /// Whether the file system keeps POSIX ACLs here.
    fn acls_supported(&self) -> bool;
}

/// An entry as `lstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    pub is_dir: bool,
    pub uid: u32,
}

/// The machine, as commands see it.
pub trait Host {
    type Dir: HostDir;

    // Files.
    /// Opens an absolute directory, refusing a link anywhere on the way.
    fn open_dir(&self, path: &Path) -> Result<Self::Dir, FileError>;
    /// Opens a directory only root controls (`/etc/...`, `/var/lib/podsec/...`): links the
    /// distribution laid on the way are followed, a link as the last component is refused.
    fn open_system_dir(&self, path: &Path) -> Result<Self::Dir, FileError>;
    /// Creates a directory and its missing parents as this process (0755 less the umask),
    /// links on the way followed as by [`Host::open_system_dir`]: for root's system
    /// directories, and for an image maker's own signature store.
    fn create_dirs(&self, path: &Path) -> Result<(), FileError>;
    /// The path with every link resolved (a store named in configuration, as its owner wrote it).
    fn canonicalize(&self, path: &Path) -> std::io::Result<std::path::PathBuf>;
    fn read_to_string(&self, path: &Path) -> std::io::Result<String>;
    fn exists(&self, path: &Path) -> bool;
    /// Replaces `path` atomically; its directory is trusted (root's).
    fn write_atomic(
        &self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<(), FileError>;
    /// The live content of a versioned configuration file, if any.
    fn current(&self, file: &Versioned) -> Option<Vec<u8>>;
    /// Installs a new version unless the live file holds exactly `contents`.
    fn install(&self, file: &Versioned, contents: &[u8], mode: u32) -> Result<Outcome, FileError>;
    /// Whether the file system holding `path` is overlayfs (rootless overlay cannot stack on it).
    fn on_overlayfs(&self, path: &Path) -> bool;
    /// Removes `path` and, for a directory, everything below it, following no link; nothing
    /// there is not an error.
    fn remove_all(&self, path: &Path) -> std::io::Result<()>;

    // Accounts and groups.
    fn find_user(&self, name: &str) -> Result<Option<Account>, AccountError>;
    /// An account that must exist (as [`users::user`]).
    fn user(&self, name: &str) -> Result<Account, AccountError> {
        self.find_user(name)?
            .ok_or_else(|| AccountError::NoSuchUser(name.to_string()))
    }
    fn find_user_by_uid(&self, uid: u32) -> Result<Option<Account>, AccountError>;
    fn group_gid(&self, name: &str) -> Result<Option<u32>, AccountError>;
    /// Creates a group unless it exists; whether it was created.
    fn ensure_group(&self, name: &str, system: bool) -> Result<bool, AccountError>;
    /// Creates an account unless it exists; the account and whether it was created.
    fn ensure_user(
        &self,
        name: &str,
        spec: &NewAccount<'_>,
    ) -> Result<(Account, bool), AccountError>;
    fn add_to_groups(&self, name: &str, groups: &[&str]) -> Result<(), AccountError>;
    fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError>;
    /// Subordinate uids and gids `start..start+count` for `name`.
    fn add_subordinate_ids(&self, name: &str, start: u64, count: u64) -> Result<(), AccountError>;

    // The kernel and the network.
    /// The distribution's profile (tools and kernel knobs it has).
    fn profile(&self) -> &'static Profile;
    fn has_sysctl(&self, knob: &str) -> bool;
    /// Sets `knob` (`kernel.x`) in the running kernel.
    fn set_sysctl(&self, knob: &str, value: &str) -> std::io::Result<()>;
    fn is_local_address(&self, address: IpAddr) -> std::io::Result<bool>;
    /// Loads a kernel module; whether it is there afterwards (loaded now, before, or built in
    /// as far as `/sys/module` tells).
    fn load_module(&self, module: &str) -> bool;

    // Processes and the clock.
    /// Runs a program to completion; a non-zero exit is an error carrying its stderr.
    fn run(&self, program: &str, args: &[&str]) -> Result<String, services::ServiceError>;
    /// Runs a program with this process's standard input and output (the administrator sees
    /// what it says and answers what it asks).
    fn run_shown(&self, program: &str, args: &[&str]) -> std::io::Result<ExitStatus>;
    /// Runs a program as `account` with `stdin` fed in.
    fn run_as(
        &self,
        account: &Account,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> std::io::Result<Output>;
    /// Runs a program as `account` on the caller's terminal.
    fn run_as_interactive(
        &self,
        account: &Account,
        program: &str,
        args: &[&str],
    ) -> std::io::Result<ExitStatus>;
    fn now(&self) -> SystemTime;

    // Daemons.
    /// Whether systemd is the init system.
    fn systemd_running(&self) -> bool;
    /// A unit enabled and running with its current configuration (see
    /// [`services::systemd_ensure`]).
    fn systemd_ensure(
        &self,
        unit: &str,
        changed: bool,
        done: ReloadDone,
    ) -> Result<UnitAction, services::ServiceError>;
    /// The pid of a daemon podsec started directly, while it runs.
    fn running_pid(&self, name: &str) -> Option<i32>;
    /// Starts a daemon directly (no systemd): its pid, recorded under `name`.
    fn start_direct(
        &self,
        name: &str,
        program: &str,
        args: &[&str],
    ) -> Result<i32, services::ServiceError>;
    fn stop_direct(&self, name: &str);
    /// Has the master process `master` of a directly started daemon reload (`program args`
    /// tells it to) and returns once new workers serve.
    fn reload_direct(
        &self,
        name: &str,
        master: i32,
        program: &str,
        args: &[&str],
    ) -> Result<(), services::ServiceError>;
    /// Who listens on a TCP port of this host.
    fn listeners(&self, port: u16) -> Vec<net::Listener>;
    /// A program on the system's PATH.
    fn find_program(&self, name: &str) -> Option<std::path::PathBuf>;
}

/// `/proc/sys/kernel/x` for `kernel.x`.
pub fn sysctl_path(knob: &str) -> std::path::PathBuf {
    Path::new("/proc/sys").join(knob.replace('.', "/"))
}

/// The machine itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealHost;

impl HostDir for SafeDir {
    fn path(&self) -> &Path {
        SafeDir::path(self)
    }
    fn create_dir_all(&self, relative: &Path, mode: u32, owner: Owner) -> Result<Self, FileError> {
        SafeDir::create_dir_all(self, relative, mode, owner)
    }
    fn create_dir_new(&self, name: &str, mode: u32, owner: Owner) -> Result<Self, FileError> {
        SafeDir::create_dir_new(self, name, mode, owner)
    }
    fn set_mode_owner(&self, mode: u32, owner: Owner) -> Result<(), FileError> {
        SafeDir::set_mode_owner(self, mode, owner)
    }
    fn set_immutable(&self, immutable: bool) -> Result<bool, FileError> {
        SafeDir::set_immutable(self, immutable)
    }
    fn write_file(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<(), FileError> {
        SafeDir::write_file(self, name, contents, mode, owner)
    }
    fn list(&self) -> Result<Vec<OsString>, FileError> {
        SafeDir::list(self)
    }
    fn entry(&self, name: &str) -> Result<Option<EntryInfo>, FileError> {
        use nix::fcntl::AtFlags;
        use nix::sys::stat::{SFlag, fstatat};
        let name = self.check_name(OsStr::new(name))?;
        match fstatat(self, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(EntryInfo {
                is_dir: SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
                uid: stat.st_uid,
            })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(FileError::Io {
                path: self.path().join(name),
                source: e.into(),
            }),
        }
    }
    fn read_file(&self, name: &str, limit: u64) -> Result<Vec<u8>, FileError> {
        SafeDir::read_file(self, name, limit)
    }
    fn open_child(&self, name: &str) -> Result<Option<Self>, FileError> {
        SafeDir::open_dir(self, name)
    }
    fn owner(&self) -> Result<u32, FileError> {
        Ok(self.stat()?.st_uid)
    }
    fn writable(&self) -> bool {
        SafeDir::writable(self)
    }
    fn create_new_file(
        &self,
        names: impl IntoIterator<Item = String>,
        contents: &[u8],
        mode: u32,
    ) -> Result<Option<String>, FileError> {
        SafeDir::create_new_file(self, names, contents, mode)
    }
    fn move_entry(&self, name: &OsStr, to: &Self) -> Result<(), FileError> {
        SafeDir::move_entry(self, name, to)
    }
    fn sweep_stale_temps(&self, prefix: &str) {
        files::sweep_stale_temps(self, prefix)
    }
    fn set_acl(&self, value: &[u8]) -> Result<(), Errno> {
        use std::os::fd::AsFd;
        posix_acl::set(self.as_fd(), value)
    }
    fn remove_acl(&self) -> Result<(), Errno> {
        use std::os::fd::AsFd;
        posix_acl::remove(self.as_fd())
    }
    fn acls_supported(&self) -> bool {
        use std::os::fd::AsFd;
        posix_acl::size(self.as_fd()) != Err(Errno::EOPNOTSUPP)
    }
}

impl Host for RealHost {
    type Dir = SafeDir;

    fn open_dir(&self, path: &Path) -> Result<SafeDir, FileError> {
        SafeDir::open(path)
    }
    fn open_system_dir(&self, path: &Path) -> Result<SafeDir, FileError> {
        SafeDir::open_trusted(path)
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<std::path::PathBuf> {
        std::fs::canonicalize(path)
    }
    fn create_dirs(&self, path: &Path) -> Result<(), FileError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|source| FileError::Io {
                path: path.to_path_buf(),
                source,
            })
    }
    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn write_atomic(
        &self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<(), FileError> {
        files::write_atomic(path, contents, mode, owner)
    }
    fn current(&self, file: &Versioned) -> Option<Vec<u8>> {
        file.current()
    }
    fn install(&self, file: &Versioned, contents: &[u8], mode: u32) -> Result<Outcome, FileError> {
        file.install(contents, mode)
    }
    fn remove_all(&self, path: &Path) -> std::io::Result<()> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            // remove_dir_all does not follow links inside the tree.
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
            Ok(_) => std::fs::remove_file(path),
        }
    }
    fn on_overlayfs(&self, path: &Path) -> bool {
        const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
        nix::sys::statfs::statfs(path)
            .is_ok_and(|fs| fs.filesystem_type().0 == OVERLAYFS_SUPER_MAGIC)
    }

    fn find_user(&self, name: &str) -> Result<Option<Account>, AccountError> {
        users::find_user(name)
    }
    fn find_user_by_uid(&self, uid: u32) -> Result<Option<Account>, AccountError> {
        users::find_user_by_uid(uid)
    }
    fn group_gid(&self, name: &str) -> Result<Option<u32>, AccountError> {
        users::group_gid(name)
    }
    fn ensure_group(&self, name: &str, system: bool) -> Result<bool, AccountError> {
        users::ensure_group(name, system)
    }
    fn ensure_user(
        &self,
        name: &str,
        spec: &NewAccount<'_>,
    ) -> Result<(Account, bool), AccountError> {
        users::ensure_user(name, spec)
    }
    fn add_to_groups(&self, name: &str, groups: &[&str]) -> Result<(), AccountError> {
        users::add_to_groups(name, groups)
    }
    fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        users::set_password(name, password)
    }
    fn add_subordinate_ids(&self, name: &str, start: u64, count: u64) -> Result<(), AccountError> {
        users::add_subordinate_ids(name, start, count)
    }

    fn profile(&self) -> &'static Profile {
        Profile::detect()
    }
    fn has_sysctl(&self, knob: &str) -> bool {
        sysctl_path(knob).exists()
    }
    fn set_sysctl(&self, knob: &str, value: &str) -> std::io::Result<()> {
        // procfs: no link to follow, and a write of the whole value at once is what it expects.
        std::fs::write(sysctl_path(knob), format!("{value}\n"))
    }
    fn is_local_address(&self, address: IpAddr) -> std::io::Result<bool> {
        net::is_local_address(address)
    }
    fn load_module(&self, module: &str) -> bool {
        let loaded = std::process::Command::new("modprobe")
            .args(["-q", "--", module])
            .status()
            .is_ok_and(|s| s.success());
        loaded || Path::new("/sys/module").join(module).exists()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, services::ServiceError> {
        services::run(program, args)
    }
    fn run_shown(&self, program: &str, args: &[&str]) -> std::io::Result<ExitStatus> {
        std::process::Command::new(program).args(args).status()
    }
    fn run_as(
        &self,
        account: &Account,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> std::io::Result<Output> {
        as_user::run(account, program, args, stdin)
    }
    fn run_as_interactive(
        &self,
        account: &Account,
        program: &str,
        args: &[&str],
    ) -> std::io::Result<ExitStatus> {
        as_user::interactive(account, program, args)
    }
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn systemd_running(&self) -> bool {
        services::systemd_running()
    }
    fn systemd_ensure(
        &self,
        unit: &str,
        changed: bool,
        done: ReloadDone,
    ) -> Result<UnitAction, services::ServiceError> {
        services::systemd_ensure(unit, changed, done)
    }
    fn running_pid(&self, name: &str) -> Option<i32> {
        services::running_pid(name)
    }
    fn start_direct(
        &self,
        name: &str,
        program: &str,
        args: &[&str],
    ) -> Result<i32, services::ServiceError> {
        services::start_direct(name, program, args)
    }
    fn stop_direct(&self, name: &str) {
        services::stop_direct(name)
    }
    fn reload_direct(
        &self,
        name: &str,
        master: i32,
        program: &str,
        args: &[&str],
    ) -> Result<(), services::ServiceError> {
        services::reload_workers(name, master, || services::run(program, args).map(drop))
    }
    fn listeners(&self, port: u16) -> Vec<net::Listener> {
        net::listeners(port)
    }
    fn find_program(&self, name: &str) -> Option<std::path::PathBuf> {
        programs::find_program(name)
    }
}
