//! A machine in memory for unit tests: [`FakeHost`] implements [`Host`] over a tree of
//! directories and files, an account database, kernel knobs and programs, and records every
//! change as an [`Effect`], in order. Like the kernel, it refuses to write into an immutable
//! directory and to create what exists, so a command that changes things in the wrong order
//! fails here as it would on a machine.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;

use super::files::{FileError, Owner};
use super::net::Listener;
use super::posix_acl;
use super::seam::{EntryInfo, Host, HostDir};
use super::services::{ReloadDone, ServiceError, UnitAction};
use super::users::{Account, AccountError, NewAccount};
use super::versioned::{Outcome, Versioned};
use crate::profile::{DEBIAN, Profile};

/// One change to the machine, as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    MakeDir {
        path: PathBuf,
        mode: u32,
        owner: (u32, u32),
    },
    SetModeOwner {
        path: PathBuf,
        mode: u32,
        owner: (u32, u32),
    },
    SetImmutable {
        path: PathBuf,
        immutable: bool,
    },
    WriteFile {
        path: PathBuf,
        mode: u32,
        owner: (u32, u32),
    },
    /// A new version of a versioned file, by its live name.
    Install {
        path: PathBuf,
    },
    Move {
        from: PathBuf,
        to: PathBuf,
    },
    SetAcl {
        path: PathBuf,
    },
    RemoveAcl {
        path: PathBuf,
    },
    AddGroup {
        name: String,
        system: bool,
    },
    AddUser {
        name: String,
        groups: Vec<String>,
    },
    AddToGroups {
        name: String,
        groups: Vec<String>,
    },
    SetPassword {
        name: String,
    },
    Sysctl {
        knob: String,
        value: String,
    },
    AddSubordinateIds {
        name: String,
        start: u64,
        count: u64,
    },
    LoadModule {
        name: String,
    },
    Remove {
        path: PathBuf,
    },
    /// `systemd_ensure`: what it was asked and what it did.
    Unit {
        unit: String,
        changed: bool,
        action: UnitAction,
    },
    StartDaemon {
        name: String,
        program: String,
        args: Vec<String>,
    },
    StopDaemon {
        name: String,
    },
    ReloadDaemon {
        name: String,
    },
    Run {
        program: String,
        args: Vec<String>,
    },
    RunAs {
        user: String,
        program: String,
        args: Vec<String>,
    },
}

/// An entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
        owner: (u32, u32),
        immutable: bool,
        acl: Option<Vec<u8>>,
    },
    File {
        contents: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    },
}

/// What a program run through the fake answers: its stdout, or its stderr on failure.
pub type Responder = Box<dyn Fn(&str, &[&str], Option<&[u8]>) -> Result<String, String>>;

struct State {
    tree: BTreeMap<PathBuf, Node>,
    effects: Vec<Effect>,
    accounts: Vec<Account>,
    /// name -> (gid, members beyond the primary group's)
    groups: BTreeMap<String, (u32, Vec<String>)>,
    passwords: BTreeMap<String, String>,
    sysctls: BTreeMap<String, String>,
    local_addresses: Vec<IpAddr>,
    profile: &'static Profile,
    attributes: bool,
    acls: bool,
    overlayfs: bool,
    now: SystemTime,
    responder: Responder,
    /// Writes at this path fail with EIO, to test what a failure leaves.
    failing: Option<PathBuf>,
    /// Kernel modules neither loadable nor built in.
    missing_modules: Vec<String>,
    /// The uid and gid this process runs as.
    caller: (u32, u32),
    systemd: bool,
    /// Active systemd units.
    units: Vec<String>,
    /// Daemons started directly: name -> pid.
    daemons: BTreeMap<String, i32>,
    listeners: BTreeMap<u16, Vec<Listener>>,
    programs: Vec<String>,
}

/// The machine in memory. Clones share it.
#[derive(Clone)]
pub struct FakeHost {
    state: Rc<RefCell<State>>,
}

/// A directory of a [`FakeHost`].
pub struct FakeDir {
    state: Rc<RefCell<State>>,
    path: PathBuf,
}

/// An owner left out is the calling process's (root's unless [`FakeHost::as_caller`]).
fn state_ids(state: &Rc<RefCell<State>>, owner: Owner) -> (u32, u32) {
    let caller = state.borrow().caller;
    (owner.uid.unwrap_or(caller.0), owner.gid.unwrap_or(caller.1))
}

fn io(path: &Path, errno: Errno) -> FileError {
    FileError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

fn single_name(dir: &Path, name: &OsStr) -> Result<PathBuf, FileError> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Ok(dir.join(name)),
        _ => Err(FileError::BadName {
            path: dir.to_path_buf(),
            name: name.to_string_lossy().into_owned(),
        }),
    }
}

impl Default for FakeHost {
    fn default() -> FakeHost {
        FakeHost::new()
    }
}

impl FakeHost {
    /// `/` and root's account only; Debian's profile; no local addresses.
    pub fn new() -> FakeHost {
        let host = FakeHost {
            state: Rc::new(RefCell::new(State {
                tree: BTreeMap::new(),
                effects: Vec::new(),
                accounts: Vec::new(),
                groups: BTreeMap::new(),
                passwords: BTreeMap::new(),
                sysctls: BTreeMap::new(),
                local_addresses: Vec::new(),
                profile: &DEBIAN,
                attributes: true,
                acls: true,
                overlayfs: false,
                now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_806_400),
                responder: Box::new(|_, _, _| Ok(String::new())),
                failing: None,
                missing_modules: Vec::new(),
                caller: (0, 0),
                systemd: false,
                units: Vec::new(),
                daemons: BTreeMap::new(),
                listeners: BTreeMap::new(),
                programs: Vec::new(),
            })),
        };
        host.with_dir("/", 0o755, (0, 0)).with_root()
    }

    /// root, as every machine has it.
    fn with_root(self) -> FakeHost {
        self.state.borrow_mut().accounts.push(Account {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/bash".into(),
        });
        self.with_group("root", 0).with_dir("/root", 0o700, (0, 0))
    }

    /// A directory (and its missing parents, root's 0755), set up without an effect.
    pub fn with_dir(self, path: impl AsRef<Path>, mode: u32, owner: (u32, u32)) -> FakeHost {
        {
            let mut state = self.state.borrow_mut();
            for ancestor in path.as_ref().ancestors().skip(1) {
                state
                    .tree
                    .entry(ancestor.to_path_buf())
                    .or_insert(Node::Dir {
                        mode: 0o755,
                        owner: (0, 0),
                        immutable: false,
                        acl: None,
                    });
            }
            state.tree.insert(
                path.as_ref().to_path_buf(),
                Node::Dir {
                    mode,
                    owner,
                    immutable: false,
                    acl: None,
                },
            );
        }
        self
    }

    /// A file (its directory must have been set up), without an effect.
    pub fn with_file(self, path: impl AsRef<Path>, contents: &[u8]) -> FakeHost {
        self.state.borrow_mut().tree.insert(
            path.as_ref().to_path_buf(),
            Node::File {
                contents: contents.to_vec(),
                mode: 0o644,
                owner: (0, 0),
            },
        );
        self
    }

    pub fn with_group(self, name: &str, gid: u32) -> FakeHost {
        self.state
            .borrow_mut()
            .groups
            .insert(name.into(), (gid, Vec::new()));
        self
    }

    /// An account with its group of the same name and its home directory (0700, its own).
    pub fn with_user(self, name: &str, uid: u32) -> FakeHost {
        let home = PathBuf::from("/home").join(name);
        self.state.borrow_mut().accounts.push(Account {
            name: name.into(),
            uid,
            gid: uid,
            home: home.clone(),
            shell: "/bin/bash".into(),
        });
        self.with_group(name, uid).with_dir(home, 0o700, (uid, uid))
    }

    pub fn with_sysctl(self, knob: &str, value: &str) -> FakeHost {
        self.state
            .borrow_mut()
            .sysctls
            .insert(knob.into(), value.into());
        self
    }

    pub fn with_local_address(self, address: IpAddr) -> FakeHost {
        self.state.borrow_mut().local_addresses.push(address);
        self
    }

    pub fn with_profile(self, profile: &'static Profile) -> FakeHost {
        self.state.borrow_mut().profile = profile;
        self
    }

    /// A file system without attributes (`chattr +i` is not supported).
    pub fn without_attributes(self) -> FakeHost {
        self.state.borrow_mut().attributes = false;
        self
    }

    /// A file system without POSIX ACLs.
    pub fn without_acls(self) -> FakeHost {
        self.state.borrow_mut().acls = false;
        self
    }

    /// Home directories on overlayfs (a container).
    pub fn on_overlayfs(self) -> FakeHost {
        self.state.borrow_mut().overlayfs = true;
        self
    }

    /// What programs answer (by default: success, no output).
    pub fn with_programs(
        self,
        responder: impl Fn(&str, &[&str], Option<&[u8]>) -> Result<String, String> + 'static,
    ) -> FakeHost {
        self.state.borrow_mut().responder = Box::new(responder);
        self
    }

    /// systemd as the init system, with these units active.
    pub fn with_systemd(self, active: &[&str]) -> FakeHost {
        {
            let mut state = self.state.borrow_mut();
            state.systemd = true;
            state.units = active.iter().map(|u| u.to_string()).collect();
        }
        self
    }

    /// A daemon podsec started directly before, running as `pid`.
    pub fn with_daemon(self, name: &str, pid: i32) -> FakeHost {
        self.state.borrow_mut().daemons.insert(name.into(), pid);
        self
    }

    /// A process listening on `port`.
    pub fn with_listener(self, port: u16, program: &str, unit: Option<&str>) -> FakeHost {
        self.state
            .borrow_mut()
            .listeners
            .entry(port)
            .or_default()
            .push(Listener {
                pid: 4000 + i32::from(port),
                program: program.into(),
                unit: unit.map(String::from),
            });
        self
    }

    /// A program on PATH (`/usr/bin/<name>`).
    pub fn with_program(self, name: &str) -> FakeHost {
        self.state.borrow_mut().programs.push(name.into());
        self
    }

    /// The daemons running as started directly: name -> pid.
    pub fn daemons(&self) -> BTreeMap<String, i32> {
        self.state.borrow().daemons.clone()
    }

    /// The process runs as `uid` (its group of the same number), not as root.
    pub fn as_caller(self, uid: u32) -> FakeHost {
        self.state.borrow_mut().caller = (uid, uid);
        self
    }

    /// A kernel module that cannot be loaded and is not built in.
    pub fn without_module(self, module: &str) -> FakeHost {
        self.state.borrow_mut().missing_modules.push(module.into());
        self
    }

    /// Every write or directory creation at `path` fails with EIO from now on.
    pub fn fail_at(&self, path: impl AsRef<Path>) {
        self.state.borrow_mut().failing = Some(path.as_ref().to_path_buf());
    }

    /// The changes so far, in order.
    pub fn effects(&self) -> Vec<Effect> {
        self.state.borrow().effects.clone()
    }

    /// Every entry of the tree, to compare the machine before and after.
    pub fn tree(&self) -> BTreeMap<PathBuf, Node> {
        self.state.borrow().tree.clone()
    }

    pub fn node(&self, path: impl AsRef<Path>) -> Option<Node> {
        self.state.borrow().tree.get(path.as_ref()).cloned()
    }

    pub fn file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        match self.node(path)? {
            Node::File { contents, .. } => Some(contents),
            Node::Dir { .. } => None,
        }
    }

    /// The names directly below `path`.
    pub fn children(&self, path: impl AsRef<Path>) -> Vec<String> {
        let path = path.as_ref();
        self.state
            .borrow()
            .tree
            .keys()
            .filter(|p| p.parent() == Some(path))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    pub fn account(&self, name: &str) -> Option<Account> {
        let state = self.state.borrow();
        state.accounts.iter().find(|a| a.name == name).cloned()
    }

    /// The groups `name` belongs to, its primary group included.
    pub fn groups_of(&self, name: &str) -> Vec<String> {
        let state = self.state.borrow();
        let primary = state
            .accounts
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.gid);
        state
            .groups
            .iter()
            .filter(|(_, (gid, members))| {
                Some(*gid) == primary || members.iter().any(|m| m == name)
            })
            .map(|(group, _)| group.clone())
            .collect()
    }

    pub fn password(&self, name: &str) -> Option<String> {
        self.state.borrow().passwords.get(name).cloned()
    }

    pub fn sysctl(&self, knob: &str) -> Option<String> {
        self.state.borrow().sysctls.get(knob).cloned()
    }

    fn record(&self, effect: Effect) {
        self.state.borrow_mut().effects.push(effect);
    }
}

impl State {
    fn check_failing(&self, path: &Path) -> Result<(), FileError> {
        match &self.failing {
            Some(failing) if failing == path => Err(io(path, Errno::EIO)),
            _ => Ok(()),
        }
    }

    /// The directory at `path`, writable (not immutable).
    fn writable_dir(&self, path: &Path) -> Result<(), FileError> {
        match self.tree.get(path) {
            Some(Node::Dir {
                immutable: false, ..
            }) => Ok(()),
            Some(Node::Dir {
                immutable: true, ..
            }) => Err(io(path, Errno::EPERM)),
            Some(Node::File { .. }) => Err(FileError::NotFollowing {
                path: path.to_path_buf(),
            }),
            None => Err(io(path, Errno::ENOENT)),
        }
    }

    fn make_dir(&mut self, path: &Path, mode: u32, owner: (u32, u32)) -> Result<(), FileError> {
        self.writable_dir(path.parent().unwrap_or(Path::new("/")))?;
        self.check_failing(path)?;
        if self.tree.contains_key(path) {
            return Err(FileError::Exists {
                path: path.to_path_buf(),
            });
        }
        self.tree.insert(
            path.to_path_buf(),
            Node::Dir {
                mode,
                owner,
                immutable: false,
                acl: None,
            },
        );
        self.effects.push(Effect::MakeDir {
            path: path.to_path_buf(),
            mode,
            owner,
        });
        Ok(())
    }

    fn write_file(
        &mut self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> Result<(), FileError> {
        self.writable_dir(path.parent().unwrap_or(Path::new("/")))?;
        self.check_failing(path)?;
        if let Some(Node::Dir { .. }) = self.tree.get(path) {
            return Err(io(path, Errno::EISDIR));
        }
        self.tree.insert(
            path.to_path_buf(),
            Node::File {
                contents: contents.to_vec(),
                mode,
                owner,
            },
        );
        self.effects.push(Effect::WriteFile {
            path: path.to_path_buf(),
            mode,
            owner,
        });
        Ok(())
    }
}

impl HostDir for FakeDir {
    fn path(&self) -> &Path {
        &self.path
    }

    fn create_dir_all(&self, relative: &Path, mode: u32, owner: Owner) -> Result<Self, FileError> {
        let owner = state_ids(&self.state, owner);
        let mut current = self.path.clone();
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return Err(FileError::BadName {
                    path: self.path.clone(),
                    name: relative.to_string_lossy().into_owned(),
                });
            };
            current.push(name);
            let mut state = self.state.borrow_mut();
            match state.tree.get(&current) {
                Some(Node::Dir { .. }) => {}
                Some(Node::File { .. }) => {
                    return Err(FileError::NotFollowing { path: current });
                }
                None => state.make_dir(&current, mode, owner)?,
            }
        }
        Ok(FakeDir {
            state: self.state.clone(),
            path: current,
        })
    }

    fn create_dir_new(&self, name: &str, mode: u32, owner: Owner) -> Result<Self, FileError> {
        let path = single_name(&self.path, OsStr::new(name))?;
        let owner = state_ids(&self.state, owner);
        self.state.borrow_mut().make_dir(&path, mode, owner)?;
        Ok(FakeDir {
            state: self.state.clone(),
            path,
        })
    }

    fn set_mode_owner(&self, mode: u32, owner: Owner) -> Result<(), FileError> {
        let new_owner = state_ids(&self.state, owner);
        let mut state = self.state.borrow_mut();
        state.check_failing(&self.path)?;
        match state.tree.get_mut(&self.path) {
            Some(Node::Dir {
                mode: m,
                owner: o,
                immutable: false,
                ..
            }) => {
                *m = mode;
                *o = new_owner;
            }
            Some(_) => return Err(io(&self.path, Errno::EPERM)),
            None => return Err(io(&self.path, Errno::ENOENT)),
        }
        state.effects.push(Effect::SetModeOwner {
            path: self.path.clone(),
            mode,
            owner: new_owner,
        });
        Ok(())
    }

    fn set_immutable(&self, immutable: bool) -> Result<bool, FileError> {
        let mut state = self.state.borrow_mut();
        if !state.attributes {
            return Ok(false);
        }
        if let Some(Node::Dir { immutable: i, .. }) = state.tree.get_mut(&self.path) {
            *i = immutable;
        }
        state.effects.push(Effect::SetImmutable {
            path: self.path.clone(),
            immutable,
        });
        Ok(true)
    }

    fn write_file(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<(), FileError> {
        let path = single_name(&self.path, OsStr::new(name))?;
        let owner = state_ids(&self.state, owner);
        self.state
            .borrow_mut()
            .write_file(&path, contents, mode, owner)
    }

    fn list(&self) -> Result<Vec<OsString>, FileError> {
        let state = self.state.borrow();
        Ok(state
            .tree
            .keys()
            .filter(|p| p.parent() == Some(self.path.as_path()))
            .filter_map(|p| p.file_name().map(OsStr::to_os_string))
            .collect())
    }

    fn open_child(&self, name: &str) -> Result<Option<Self>, FileError> {
        let path = single_name(&self.path, OsStr::new(name))?;
        match self.state.borrow().tree.get(&path) {
            Some(Node::Dir { .. }) => Ok(Some(FakeDir {
                state: self.state.clone(),
                path,
            })),
            Some(Node::File { .. }) => Err(FileError::NotFollowing { path }),
            None => Ok(None),
        }
    }

    fn owner(&self) -> Result<u32, FileError> {
        match self.state.borrow().tree.get(&self.path) {
            Some(Node::Dir { owner, .. }) => Ok(owner.0),
            _ => Err(io(&self.path, Errno::ENOENT)),
        }
    }

    fn writable(&self) -> bool {
        let state = self.state.borrow();
        let caller = state.caller.0;
        match state.tree.get(&self.path) {
            Some(Node::Dir {
                mode,
                owner,
                immutable: false,
                acl,
            }) => {
                caller == 0
                    || (owner.0 == caller && mode & 0o200 != 0)
                    || mode & 0o002 != 0
                    || acl.as_deref().is_some_and(|acl| {
                        posix_acl::decode(acl).iter().any(|(tag, perm, id)| {
                            *tag == posix_acl::USER && *id == caller && perm & 2 != 0
                        })
                    })
            }
            _ => false,
        }
    }

    fn create_new_file(
        &self,
        names: impl IntoIterator<Item = String>,
        contents: &[u8],
        mode: u32,
    ) -> Result<Option<String>, FileError> {
        let owner = state_ids(&self.state, Owner::default());
        for name in names {
            let path = single_name(&self.path, OsStr::new(&name))?;
            if self.state.borrow().tree.contains_key(&path) {
                continue;
            }
            self.state
                .borrow_mut()
                .write_file(&path, contents, mode, owner)?;
            return Ok(Some(name));
        }
        Ok(None)
    }

    fn entry(&self, name: &str) -> Result<Option<EntryInfo>, FileError> {
        let path = single_name(&self.path, OsStr::new(name))?;
        Ok(self.state.borrow().tree.get(&path).map(|node| match node {
            Node::Dir { owner, .. } => EntryInfo {
                is_dir: true,
                uid: owner.0,
            },
            Node::File { owner, .. } => EntryInfo {
                is_dir: false,
                uid: owner.0,
            },
        }))
    }

    fn read_file(&self, name: &str, limit: u64) -> Result<Vec<u8>, FileError> {
        let path = single_name(&self.path, OsStr::new(name))?;
        match self.state.borrow().tree.get(&path) {
            Some(Node::File { contents, .. }) if contents.len() as u64 <= limit => {
                Ok(contents.clone())
            }
            Some(Node::File { .. }) => Err(io(&path, Errno::EFBIG)),
            Some(Node::Dir { .. }) => Err(FileError::NotFollowing { path }),
            None => Err(io(&path, Errno::ENOENT)),
        }
    }

    fn move_entry(&self, name: &OsStr, to: &Self) -> Result<(), FileError> {
        let from = single_name(&self.path, name)?;
        let target = single_name(&to.path, name)?;
        let mut state = self.state.borrow_mut();
        state.writable_dir(&self.path)?;
        state.writable_dir(&to.path)?;
        if state.tree.contains_key(&target) {
            return Err(FileError::Exists { path: target });
        }
        let moved: Vec<PathBuf> = state
            .tree
            .keys()
            .filter(|p| p.starts_with(&from))
            .cloned()
            .collect();
        if moved.is_empty() {
            return Err(io(&from, Errno::ENOENT));
        }
        for path in moved {
            let node = state.tree.remove(&path).expect("listed");
            let rest = path.strip_prefix(&from).expect("below");
            state.tree.insert(target.join(rest), node);
        }
        state.effects.push(Effect::Move { from, to: target });
        Ok(())
    }

    fn sweep_stale_temps(&self, _prefix: &str) {
        // The fake's writes are atomic: no writer leaves a temporary behind.
    }

    fn set_acl(&self, value: &[u8]) -> Result<(), Errno> {
        let mut state = self.state.borrow_mut();
        if !state.acls {
            return Err(Errno::EOPNOTSUPP);
        }
        if let Some(Node::Dir { acl, .. }) = state.tree.get_mut(&self.path) {
            *acl = Some(value.to_vec());
        }
        state.effects.push(Effect::SetAcl {
            path: self.path.clone(),
        });
        Ok(())
    }

    fn remove_acl(&self) -> Result<(), Errno> {
        let mut state = self.state.borrow_mut();
        if !state.acls {
            return Err(Errno::EOPNOTSUPP);
        }
        match state.tree.get_mut(&self.path) {
            Some(Node::Dir { acl, .. }) if acl.is_some() => *acl = None,
            _ => return Err(Errno::ENODATA),
        }
        state.effects.push(Effect::RemoveAcl {
            path: self.path.clone(),
        });
        Ok(())
    }

    fn acls_supported(&self) -> bool {
        self.state.borrow().acls
    }
}

impl Host for FakeHost {
    type Dir = FakeDir;

    fn open_dir(&self, path: &Path) -> Result<FakeDir, FileError> {
        match self.node(path) {
            Some(Node::Dir { .. }) => Ok(FakeDir {
                state: self.state.clone(),
                path: path.to_path_buf(),
            }),
            Some(Node::File { .. }) => Err(FileError::NotFollowing {
                path: path.to_path_buf(),
            }),
            None => Err(io(path, Errno::ENOENT)),
        }
    }

    fn open_system_dir(&self, path: &Path) -> Result<FakeDir, FileError> {
        self.open_dir(path)
    }

    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        // The fake has no links: a path names itself, when it is there.
        match self.node(path) {
            Some(_) => Ok(path.to_path_buf()),
            None => Err(Errno::ENOENT.into()),
        }
    }

    fn create_dirs(&self, path: &Path) -> Result<(), FileError> {
        let owner = state_ids(&self.state, Owner::default());
        let mut state = self.state.borrow_mut();
        let mut missing: Vec<&Path> = path
            .ancestors()
            .take_while(|p| !state.tree.contains_key(*p))
            .collect();
        missing.reverse();
        for dir in missing {
            state.make_dir(dir, 0o755, owner)?;
        }
        match state.tree.get(path) {
            Some(Node::Dir { .. }) => Ok(()),
            _ => Err(FileError::NotFollowing {
                path: path.to_path_buf(),
            }),
        }
    }

    fn read_to_string(&self, path: &Path) -> std::io::Result<String> {
        let contents = self.file(path).ok_or(Errno::ENOENT)?;
        String::from_utf8(contents).map_err(std::io::Error::other)
    }

    fn exists(&self, path: &Path) -> bool {
        self.node(path).is_some()
    }

    fn write_atomic(
        &self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: Owner,
    ) -> Result<(), FileError> {
        let owner = state_ids(&self.state, owner);
        self.state
            .borrow_mut()
            .write_file(path, contents, mode, owner)
    }

    fn current(&self, file: &Versioned) -> Option<Vec<u8>> {
        self.file(file.live())
    }

    fn install(&self, file: &Versioned, contents: &[u8], mode: u32) -> Result<Outcome, FileError> {
        let live = file.live();
        if self.file(&live).as_deref() == Some(contents) {
            return Ok(Outcome::Unchanged);
        }
        let version = file.dir.join(format!("{}new", file.prefix));
        let mut state = self.state.borrow_mut();
        state.writable_dir(file.dir)?;
        state.check_failing(&live)?;
        let previous = state.tree.contains_key(&live).then(|| live.clone());
        state.tree.insert(
            live.clone(),
            Node::File {
                contents: contents.to_vec(),
                mode,
                owner: (0, 0),
            },
        );
        state.effects.push(Effect::Install { path: live });
        Ok(Outcome::Switched { version, previous })
    }

    fn remove_all(&self, path: &Path) -> std::io::Result<()> {
        let mut state = self.state.borrow_mut();
        let below: Vec<PathBuf> = state
            .tree
            .keys()
            .filter(|p| p.starts_with(path))
            .cloned()
            .collect();
        if below.is_empty() {
            return Ok(());
        }
        for entry in below {
            state.tree.remove(&entry);
        }
        state.effects.push(Effect::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn on_overlayfs(&self, _path: &Path) -> bool {
        self.state.borrow().overlayfs
    }

    fn find_user(&self, name: &str) -> Result<Option<Account>, AccountError> {
        Ok(self.account(name))
    }

    fn find_user_by_uid(&self, uid: u32) -> Result<Option<Account>, AccountError> {
        let state = self.state.borrow();
        Ok(state.accounts.iter().find(|a| a.uid == uid).cloned())
    }

    fn group_gid(&self, name: &str) -> Result<Option<u32>, AccountError> {
        Ok(self.state.borrow().groups.get(name).map(|(gid, _)| *gid))
    }

    fn ensure_group(&self, name: &str, system: bool) -> Result<bool, AccountError> {
        let mut state = self.state.borrow_mut();
        if state.groups.contains_key(name) {
            return Ok(false);
        }
        let gid = if system { 900 } else { 2000 } + state.groups.len() as u32;
        state.groups.insert(name.into(), (gid, Vec::new()));
        state.effects.push(Effect::AddGroup {
            name: name.into(),
            system,
        });
        Ok(true)
    }

    fn ensure_user(
        &self,
        name: &str,
        spec: &NewAccount<'_>,
    ) -> Result<(Account, bool), AccountError> {
        if let Some(existing) = self.account(name) {
            return Ok((existing, false));
        }
        let uid = 1000 + self.state.borrow().accounts.len() as u32;
        let gid = match spec.primary_group {
            Some(group) => self
                .group_gid(group)?
                .ok_or_else(|| AccountError::NoSuchGroup(group.into()))?,
            None => {
                self.state
                    .borrow_mut()
                    .groups
                    .insert(name.into(), (uid, Vec::new()));
                uid
            }
        };
        // useradd -d: the whole path; its default is below /home.
        let home = spec
            .home
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new("/home").join(name));
        let account = Account {
            name: name.into(),
            uid,
            gid,
            home: home.clone(),
            shell: spec.shell.unwrap_or("/bin/bash").into(),
        };
        let mut state = self.state.borrow_mut();
        for group in spec.groups {
            match state.groups.get_mut(*group) {
                Some((_, members)) => members.push(name.into()),
                None => return Err(AccountError::NoSuchGroup((*group).into())),
            }
        }
        if spec.create_home {
            state.tree.insert(
                home,
                Node::Dir {
                    mode: 0o700,
                    owner: (uid, gid),
                    immutable: false,
                    acl: None,
                },
            );
        }
        state.accounts.push(account.clone());
        state.effects.push(Effect::AddUser {
            name: name.into(),
            groups: spec.groups.iter().map(|g| g.to_string()).collect(),
        });
        Ok((account, true))
    }

    fn add_to_groups(&self, name: &str, groups: &[&str]) -> Result<(), AccountError> {
        if self.account(name).is_none() {
            return Err(AccountError::NoSuchUser(name.into()));
        }
        let mut state = self.state.borrow_mut();
        for group in groups {
            match state.groups.get_mut(*group) {
                Some((_, members)) if !members.iter().any(|m| m == name) => {
                    members.push(name.into())
                }
                Some(_) => {}
                None => return Err(AccountError::NoSuchGroup((*group).into())),
            }
        }
        state.effects.push(Effect::AddToGroups {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        });
        Ok(())
    }

    fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        let mut state = self.state.borrow_mut();
        state.passwords.insert(name.into(), password.into());
        state
            .effects
            .push(Effect::SetPassword { name: name.into() });
        Ok(())
    }

    fn add_subordinate_ids(&self, name: &str, start: u64, count: u64) -> Result<(), AccountError> {
        if self.account(name).is_none() {
            return Err(AccountError::NoSuchUser(name.into()));
        }
        self.record(Effect::AddSubordinateIds {
            name: name.into(),
            start,
            count,
        });
        Ok(())
    }

    fn load_module(&self, module: &str) -> bool {
        self.record(Effect::LoadModule {
            name: module.into(),
        });
        !self
            .state
            .borrow()
            .missing_modules
            .iter()
            .any(|m| m == module)
    }

    fn profile(&self) -> &'static Profile {
        self.state.borrow().profile
    }

    fn has_sysctl(&self, knob: &str) -> bool {
        self.state.borrow().sysctls.contains_key(knob)
    }

    fn set_sysctl(&self, knob: &str, value: &str) -> std::io::Result<()> {
        let mut state = self.state.borrow_mut();
        if !state.sysctls.contains_key(knob) {
            return Err(Errno::ENOENT.into());
        }
        state.sysctls.insert(knob.into(), value.into());
        state.effects.push(Effect::Sysctl {
            knob: knob.into(),
            value: value.into(),
        });
        Ok(())
    }

    fn is_local_address(&self, address: IpAddr) -> std::io::Result<bool> {
        Ok(self.state.borrow().local_addresses.contains(&address))
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<String, ServiceError> {
        self.record(Effect::Run {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
        let answer = (self.state.borrow().responder)(program, args, None);
        answer.map_err(|detail| ServiceError::Failed {
            command: format!("{program} {}", args.join(" ")),
            detail,
        })
    }

    fn run_shown(&self, program: &str, args: &[&str]) -> std::io::Result<ExitStatus> {
        Ok(ExitStatus::from_raw(match self.run(program, args) {
            Ok(_) => 0,
            Err(_) => 1 << 8,
        }))
    }

    fn run_as(
        &self,
        account: &Account,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> std::io::Result<Output> {
        self.record(Effect::RunAs {
            user: account.name.clone(),
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
        let answer = (self.state.borrow().responder)(program, args, stdin);
        Ok(match answer {
            Ok(stdout) => Output {
                status: ExitStatus::from_raw(0),
                stdout: stdout.into_bytes(),
                stderr: Vec::new(),
            },
            Err(stderr) => Output {
                status: ExitStatus::from_raw(1 << 8),
                stdout: Vec::new(),
                stderr: stderr.into_bytes(),
            },
        })
    }

    fn run_as_interactive(
        &self,
        account: &Account,
        program: &str,
        args: &[&str],
    ) -> std::io::Result<ExitStatus> {
        Ok(self.run_as(account, program, args, None)?.status)
    }

    fn now(&self) -> SystemTime {
        self.state.borrow().now
    }

    fn systemd_running(&self) -> bool {
        self.state.borrow().systemd
    }

    fn systemd_ensure(
        &self,
        unit: &str,
        changed: bool,
        _done: ReloadDone,
    ) -> Result<UnitAction, ServiceError> {
        let mut state = self.state.borrow_mut();
        if !state.systemd {
            return Err(ServiceError::Failed {
                command: format!("systemctl enable --now {unit}"),
                detail: "System has not been booted with systemd".into(),
            });
        }
        let action = if !state.units.iter().any(|u| u == unit) {
            state.units.push(unit.into());
            UnitAction::Started
        } else if changed {
            UnitAction::Reloaded
        } else {
            UnitAction::Unchanged
        };
        state.effects.push(Effect::Unit {
            unit: unit.into(),
            changed,
            action,
        });
        Ok(action)
    }

    fn running_pid(&self, name: &str) -> Option<i32> {
        self.state.borrow().daemons.get(name).copied()
    }

    fn start_direct(&self, name: &str, program: &str, args: &[&str]) -> Result<i32, ServiceError> {
        let mut state = self.state.borrow_mut();
        let pid = 5000 + state.effects.len() as i32;
        state.daemons.insert(name.into(), pid);
        state.effects.push(Effect::StartDaemon {
            name: name.into(),
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
        Ok(pid)
    }

    fn stop_direct(&self, name: &str) {
        let mut state = self.state.borrow_mut();
        if state.daemons.remove(name).is_some() {
            state.effects.push(Effect::StopDaemon { name: name.into() });
        }
    }

    fn reload_direct(
        &self,
        name: &str,
        _master: i32,
        program: &str,
        args: &[&str],
    ) -> Result<(), ServiceError> {
        self.run(program, args)?;
        self.record(Effect::ReloadDaemon { name: name.into() });
        Ok(())
    }

    fn listeners(&self, port: u16) -> Vec<Listener> {
        self.state
            .borrow()
            .listeners
            .get(&port)
            .cloned()
            .unwrap_or_default()
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        let state = self.state.borrow();
        state
            .programs
            .iter()
            .any(|p| p == name)
            .then(|| Path::new("/usr/bin").join(name))
    }
}
