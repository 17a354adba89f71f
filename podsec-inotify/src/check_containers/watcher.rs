//! The inotify registry: which watch is which container's directory, store metadata or account
//! database, and how the set follows the containers as they come and go.
//!
//! - Content: every directory of a container's writable layer (recursively, without
//!   `/var /proc /tmp /run` at its top), reporting each create, modify, delete and move. A
//!   directory that appears is watched at once and what it already holds is reported, so a
//!   file written right after its directory is not missed.
//! - Metadata: `<driver>-containers/`, where containers.json is replaced on every container
//!   created or removed: the store is read again.
//! - Approach: the graphroot (a driver's metadata directory may appear), or, before the store
//!   exists, the deepest existing directory on the way to it.
//! - Accounts: /etc, for a new passwd (new users' stores).
//!
//! Directories are opened without following symlinks and watched through `/proc/self/fd/N`,
//! so a container or a user cannot make root watch something else by swapping a path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use podsec_common::i18n::{Localize, Message};
use podsec_common::log::{Level, Logger};
use podsec_common::msg;

use super::event::{CONTENT_EVENTS, ContainerLabel, EXCLUDED_TOP_DIRS, describe, escape};
use crate::storage::{self, Beneath, ContainerRecord, Driver, StorageError, Store};

/// Deeper directories are not watched (no real image nests this deep; a hostile one could).
const MAX_DEPTH: usize = 64;
/// IN_EXCL_UNLINK (nix has no constant for it): no events for files already unlinked.
const WATCH_FLAGS: AddWatchFlags = CONTENT_EVENTS
    .union(AddWatchFlags::IN_ONLYDIR)
    .union(AddWatchFlags::from_bits_retain(nix::libc::IN_EXCL_UNLINK));

/// Where findings go: the nagwad logger, or a list in tests.
pub trait Findings {
    fn report(&mut self, level: Level, text: &str);
}

impl Findings for &Logger {
    fn report(&mut self, level: Level, text: &str) {
        self.log(level, text);
    }
}

impl Findings for Vec<(Level, String)> {
    fn report(&mut self, level: Level, text: &str) {
        self.push((level, text.to_string()));
    }
}

type StoreId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ContainerKey {
    store: StoreId,
    driver: Driver,
    id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// A directory of a container's layer; `dir` is its path inside the container ("" = `/`).
    Content {
        container: ContainerKey,
        dir: Vec<u8>,
    },
    Metadata {
        store: StoreId,
    },
    Approach {
        store: StoreId,
    },
    Accounts,
}

struct StoreState {
    store: Store,
    /// The graphroot's device and inode once open: two paths to one store count once.
    identity: Option<(u64, u64)>,
    /// What was said last about this store (said again only when it changes).
    told: Option<Message>,
}

struct ContainerState {
    label: ContainerLabel,
    layer: String,
    watches: BTreeSet<WatchDescriptor>,
    /// The watch limit cut this container's coverage (reported once).
    limited: bool,
}

pub struct Watcher<F: Findings> {
    inotify: Inotify,
    findings: F,
    max_watches: usize,
    roles: HashMap<WatchDescriptor, Vec<Role>>,
    stores: BTreeMap<StoreId, StoreState>,
    containers: BTreeMap<ContainerKey, ContainerState>,
    next_store: StoreId,
    /// Stores to read again after the current batch of events.
    pending: BTreeSet<StoreId>,
    /// The event queue overflowed: walk every container's tree again.
    rescan_pending: bool,
    accounts_changed: bool,
}

impl<F: Findings> Watcher<F> {
    pub fn new(findings: F, max_watches: usize) -> Result<Watcher<F>, Errno> {
        Ok(Watcher {
            inotify: Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?,
            findings,
            max_watches,
            roles: HashMap::new(),
            stores: BTreeMap::new(),
            containers: BTreeMap::new(),
            next_store: 0,
            pending: BTreeSet::new(),
            rescan_pending: false,
            accounts_changed: false,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    #[cfg(test)]
    pub fn findings(&self) -> &F {
        &self.findings
    }

    pub fn watch_count(&self) -> usize {
        self.roles.len()
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    pub fn store_count(&self) -> usize {
        self.stores.len()
    }

    /// Follows /etc/passwd: new accounts' stores are added by [`Watcher::take_accounts_changed`]'s caller.
    pub fn watch_accounts(&mut self, etc: &Path) {
        match Beneath::open(etc) {
            Ok(dir) => {
                self.add_watch(&dir, Role::Accounts);
            }
            Err(e) => note(&msg!("cannot follow new accounts: {e}")),
        }
    }

    /// True once after /etc/passwd was replaced.
    pub fn take_accounts_changed(&mut self) -> bool {
        std::mem::take(&mut self.accounts_changed)
    }

    /// Sets the stores to watch: new ones are read, those no longer listed are dropped.
    pub fn set_stores(&mut self, stores: Vec<Store>) {
        let gone: Vec<StoreId> = self
            .stores
            .iter()
            .filter(|(_, state)| !stores.contains(&state.store))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.drop_store(id);
        }
        for store in stores {
            if self.stores.values().any(|s| s.store == store) {
                continue;
            }
            let id = self.next_store;
            self.next_store += 1;
            self.stores.insert(
                id,
                StoreState {
                    store,
                    identity: None,
                    told: None,
                },
            );
            self.refresh(id);
        }
    }

    /// Reads every store again (SIGHUP, queue overflow).
    pub fn refresh_all(&mut self) {
        let ids: Vec<StoreId> = self.stores.keys().copied().collect();
        for id in ids {
            self.refresh(id);
        }
    }

    /// Reads and handles every event queued now (the descriptor is non-blocking).
    pub fn process_events(&mut self) -> Result<usize, Errno> {
        let mut handled = 0;
        loop {
            match self.inotify.read_events() {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    handled += events.len();
                    for event in events {
                        self.handle(event);
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for id in pending {
            if self.stores.contains_key(&id) {
                self.refresh(id);
            }
        }
        if std::mem::take(&mut self.rescan_pending) {
            self.rescan_containers();
        }
        Ok(handled)
    }

    /// After lost events: walks every watched container again, so directories made while the
    /// queue overflowed are watched, and reports each as created with what it holds (the
    /// events that would have said so are lost).
    fn rescan_containers(&mut self) {
        let keys: Vec<ContainerKey> = self.containers.keys().cloned().collect();
        for key in keys {
            // The directories of this container that are watched now, by their path inside it.
            let known: BTreeSet<Vec<u8>> = self.containers[&key]
                .watches
                .iter()
                .filter_map(|wd| self.roles.get(wd))
                .flatten()
                .filter_map(|role| match role {
                    Role::Content { container, dir } if *container == key => Some(dir.clone()),
                    _ => None,
                })
                .collect();
            if let Ok(layer) = self.open_layer(&key) {
                self.rescan_tree(&key, &known, &layer, b"", 0);
            }
        }
    }

    fn rescan_tree(
        &mut self,
        key: &ContainerKey,
        known: &BTreeSet<Vec<u8>>,
        dir: &Beneath,
        path: &[u8],
        depth: usize,
    ) {
        let Ok(entries) = dir.entries() else {
            return;
        };
        for (name, is_dir) in entries {
            if !is_dir || excluded(path, &name) || depth + 1 >= MAX_DEPTH {
                continue;
            }
            let mut child_path = path.to_vec();
            child_path.push(b'/');
            child_path.extend_from_slice(name.as_bytes());
            let Ok(child) = dir.open_child(&name) else {
                continue;
            };
            if known.contains(&child_path) {
                self.rescan_tree(key, known, &child, &child_path, depth + 1);
            } else {
                // Unwatched because of the watch limit (already reported) is not new.
                let limited = self.containers.get(key).is_none_or(|c| c.limited);
                if let Some(container) = self.containers.get(key).filter(|_| !limited) {
                    let mask = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ISDIR;
                    let (level, text) = describe(&container.label, mask, &child_path);
                    self.findings.report(level, &text);
                }
                self.watch_tree(key, &child, &child_path, depth + 1, !limited);
            }
        }
    }

    fn handle(&mut self, event: InotifyEvent) {
        if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            self.findings.report(
                Level::Critical,
                "The inotify event queue overflowed: changes in containers may have been missed",
            );
            self.pending.extend(self.stores.keys().copied());
            self.rescan_pending = true;
            return;
        }
        let Some(roles) = self.roles.get(&event.wd).cloned() else {
            return;
        };
        if event.mask.contains(AddWatchFlags::IN_IGNORED) {
            self.forget_watch(event.wd);
            for role in roles {
                if let Role::Metadata { store } | Role::Approach { store } = role {
                    self.pending.insert(store);
                }
            }
            return;
        }
        let name = event.name.as_deref().unwrap_or(OsStr::new(""));
        for role in roles {
            match role {
                Role::Content { container, dir } => {
                    self.content_event(&container, &dir, name, event.mask)
                }
                Role::Metadata { store } => {
                    if name == "containers.json" {
                        self.pending.insert(store);
                    }
                }
                Role::Approach { store } => {
                    if event.mask.contains(AddWatchFlags::IN_ISDIR) {
                        self.pending.insert(store);
                    }
                }
                Role::Accounts => {
                    if name == "passwd" {
                        self.accounts_changed = true;
                    }
                }
            }
        }
    }

    fn content_event(&mut self, key: &ContainerKey, dir: &[u8], name: &OsStr, mask: AddWatchFlags) {
        let Some(container) = self.containers.get(key) else {
            return;
        };
        let mut path = dir.to_vec();
        path.push(b'/');
        path.extend_from_slice(name.as_bytes());
        let shown = mask & (CONTENT_EVENTS | AddWatchFlags::IN_ISDIR);
        let (level, text) = describe(&container.label, shown, &path);
        self.findings.report(level, &text);
        if !mask.contains(AddWatchFlags::IN_ISDIR) || excluded(dir, name) {
            return;
        }
        if mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
            let opened = self
                .open_layer(key)
                .and_then(|layer| layer.open_dir(Path::new(OsStr::from_bytes(&path[1..]))));
            if let Ok(new_dir) = opened {
                self.watch_tree(key, &new_dir, &path, path_depth(&path), true);
            }
        } else if mask.contains(AddWatchFlags::IN_MOVED_FROM) {
            self.unwatch_subtree(key, &path);
        }
    }

    /// Reads one store: its containers now, and where to look for changes.
    fn refresh(&mut self, id: StoreId) {
        let store = self.stores[&id].store.clone();
        let graphroot = match store.open() {
            Ok(graphroot) => graphroot,
            Err(e) => {
                if !e.is_missing() {
                    self.tell(
                        id,
                        msg!(
                            "ignoring the store {graphroot}: {e}",
                            graphroot = store.graphroot.display()
                        ),
                    );
                }
                self.drop_containers(id, &BTreeSet::new());
                if let Some((nearest, _)) = store.nearest_existing() {
                    self.add_watch(&nearest, Role::Approach { store: id });
                }
                return;
            }
        };
        let identity = graphroot.identity().ok();
        if identity.is_some()
            && self
                .stores
                .iter()
                .any(|(other, s)| *other < id && s.identity == identity)
        {
            // the same store by another path (u7s-admin's usernetes link): watched once
            return;
        }
        if let Some(state) = self.stores.get_mut(&id) {
            state.identity = identity;
        }
        self.add_watch(&graphroot, Role::Approach { store: id });
        let mut wanted = BTreeSet::new();
        for driver in Driver::ALL {
            let metadata = match graphroot.open_child(OsStr::new(&driver.containers_dir())) {
                Ok(dir) => dir,
                Err(_) => continue,
            };
            self.add_watch(&metadata, Role::Metadata { store: id });
            let records = match storage::read_containers(&graphroot, driver) {
                Ok(records) => records,
                Err(e) => {
                    self.tell(
                        id,
                        msg!(
                            "cannot read the containers of {graphroot}: {e}",
                            graphroot = store.graphroot.display()
                        ),
                    );
                    // keep what is watched: a torn or hostile file must not blind the watcher
                    for key in self
                        .containers
                        .keys()
                        .filter(|k| k.store == id && k.driver == driver)
                    {
                        wanted.insert(key.clone());
                    }
                    continue;
                }
            };
            for record in records {
                let key = ContainerKey {
                    store: id,
                    driver,
                    id: record.id.clone(),
                };
                if !self.containers.contains_key(&key) {
                    self.add_container(&key, &record, &graphroot, &store);
                }
                if self.containers.contains_key(&key) {
                    wanted.insert(key);
                }
            }
        }
        self.drop_containers(id, &wanted);
        if let Some(state) = self.stores.get_mut(&id) {
            state.told = None;
        }
    }

    fn add_container(
        &mut self,
        key: &ContainerKey,
        record: &ContainerRecord,
        graphroot: &Beneath,
        store: &Store,
    ) {
        let layer = match graphroot.open_dir(&key.driver.layer_dir(&record.layer)) {
            Ok(layer) => layer,
            Err(e) => {
                note(&msg!(
                    "container {name} (ID {id}) of {user}: its layer is not readable yet: {e}",
                    name = escape(record.display_name().as_bytes()),
                    id = record.id,
                    user = store.owner.name
                ));
                return;
            }
        };
        let label = ContainerLabel {
            name: record.display_name().to_string(),
            id: record.id.clone(),
            user: store.owner.name.clone(),
        };
        self.containers.insert(
            key.clone(),
            ContainerState {
                label,
                layer: record.layer.clone(),
                watches: BTreeSet::new(),
                limited: false,
            },
        );
        self.watch_tree(key, &layer, b"", 0, false);
        let count = self.containers[key].watches.len();
        note(&msg!(
            "watching container {name} (ID {id}, user {user}, {driver} driver): {count} directories of {layer}",
            name = escape(record.display_name().as_bytes()),
            id = record.id,
            user = store.owner.name,
            driver = key.driver.name(),
            layer = escape(layer.path().as_os_str().as_bytes()),
        ));
    }

    /// Watches `dir` (at `path` inside the container) and every directory below it; with
    /// `report`, what is found there is reported as created (it appeared after the last watch).
    fn watch_tree(
        &mut self,
        key: &ContainerKey,
        dir: &Beneath,
        path: &[u8],
        depth: usize,
        report: bool,
    ) {
        let role = Role::Content {
            container: key.clone(),
            dir: path.to_vec(),
        };
        if !self.add_watch(dir, role) {
            return;
        }
        let Ok(entries) = dir.entries() else {
            return;
        };
        for (name, is_dir) in entries {
            let mut child_path = path.to_vec();
            child_path.push(b'/');
            child_path.extend_from_slice(name.as_bytes());
            if report {
                let mut mask = AddWatchFlags::IN_CREATE;
                if is_dir {
                    mask |= AddWatchFlags::IN_ISDIR;
                }
                if let Some(container) = self.containers.get(key) {
                    let (level, text) = describe(&container.label, mask, &child_path);
                    self.findings.report(level, &text);
                }
            }
            if !is_dir || excluded(path, &name) {
                continue;
            }
            if depth + 1 >= MAX_DEPTH {
                note(&msg!(
                    "{path}: deeper than {MAX_DEPTH} directories, not watched below",
                    path = escape(&child_path)
                ));
                continue;
            }
            if let Ok(child) = dir.open_child(&name) {
                self.watch_tree(key, &child, &child_path, depth + 1, report);
            }
        }
    }

    /// Adds a watch with `role`; false when it could not be added (limit, directory gone).
    fn add_watch(&mut self, dir: &Beneath, role: Role) -> bool {
        if self.roles.len() >= self.max_watches {
            self.limit_hit(&role, dir, None);
            return false;
        }
        match self.inotify.add_watch(&dir.proc_path(), WATCH_FLAGS) {
            Ok(wd) => {
                let roles = self.roles.entry(wd).or_default();
                if !roles.contains(&role) {
                    roles.push(role.clone());
                }
                if let Role::Content { container, .. } = &role
                    && let Some(state) = self.containers.get_mut(container)
                {
                    state.watches.insert(wd);
                }
                true
            }
            Err(Errno::ENOSPC) => {
                self.limit_hit(&role, dir, Some(kernel_max_watches()));
                false
            }
            Err(_) => false,
        }
    }

    /// A gap in the watch is a finding: once per container, with what to do about it.
    fn limit_hit(&mut self, role: &Role, dir: &Beneath, kernel: Option<Option<usize>>) {
        let limit = match kernel {
            // English: part of the Critical journal line below (and of a note, translated
            // with it).
            Some(Some(max)) => {
                msg!("the kernel's fs.inotify.max_user_watches ({max}) is used up")
            }
            Some(None) => msg!("the kernel's fs.inotify.max_user_watches is used up"),
            None => msg!(
                "the watch limit ({max} watches, --max-watches) is reached",
                max = self.max_watches
            ),
        };
        match role {
            Role::Content {
                container,
                dir: path,
            } => {
                let Some(state) = self.containers.get_mut(container) else {
                    return;
                };
                if state.limited {
                    return;
                }
                state.limited = true;
                let text = format!(
                    "Not all changes in the container {} (ID {}, user {}) are seen: {limit}; directories from {} on are not watched (raise --max-watches or fs.inotify.max_user_watches)",
                    escape(state.label.name.as_bytes()),
                    escape(state.label.id.as_bytes()),
                    escape(state.label.user.as_bytes()),
                    escape(if path.is_empty() { b"/" } else { path })
                );
                self.findings.report(Level::Critical, &text);
            }
            _ => note(&msg!(
                "cannot watch {path}: {limit}",
                path = escape(dir.path().as_os_str().as_bytes())
            )),
        }
    }

    fn forget_watch(&mut self, wd: WatchDescriptor) {
        if let Some(roles) = self.roles.remove(&wd) {
            for role in roles {
                if let Role::Content { container, .. } = role
                    && let Some(state) = self.containers.get_mut(&container)
                {
                    state.watches.remove(&wd);
                }
            }
        }
    }

    /// Removes `role` from a watch, and the watch when nothing else needs it.
    fn release(&mut self, wd: WatchDescriptor, keep: impl Fn(&Role) -> bool) {
        let Some(roles) = self.roles.get_mut(&wd) else {
            return;
        };
        roles.retain(|r| keep(r));
        if roles.is_empty() {
            self.roles.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }

    fn unwatch_subtree(&mut self, key: &ContainerKey, path: &[u8]) {
        let Some(state) = self.containers.get(key) else {
            return;
        };
        let below: Vec<WatchDescriptor> = state
            .watches
            .iter()
            .copied()
            .filter(|wd| {
                self.roles.get(wd).is_some_and(|roles| {
                    roles.iter().any(|r| {
                        matches!(r, Role::Content { container, dir } if container == key && within(dir, path))
                    })
                })
            })
            .collect();
        for wd in below {
            self.release(wd, |r| {
                !matches!(r, Role::Content { container, dir } if container == key && within(dir, path))
            });
            if let Some(state) = self.containers.get_mut(key) {
                state.watches.remove(&wd);
            }
        }
    }

    /// Stops watching the containers of `store` that are not in `keep`.
    fn drop_containers(&mut self, store: StoreId, keep: &BTreeSet<ContainerKey>) {
        let gone: Vec<ContainerKey> = self
            .containers
            .keys()
            .filter(|k| k.store == store && !keep.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let state = self.containers.remove(&key).expect("listed");
            for wd in &state.watches {
                self.release(
                    *wd,
                    |r| !matches!(r, Role::Content { container, .. } if *container == key),
                );
            }
            note(&msg!(
                "stopped watching container {name} (ID {id}, user {user}): it is gone (layer {layer})",
                name = escape(state.label.name.as_bytes()),
                id = state.label.id,
                user = state.label.user,
                layer = state.layer
            ));
        }
    }

    fn drop_store(&mut self, id: StoreId) {
        self.drop_containers(id, &BTreeSet::new());
        let wds: Vec<WatchDescriptor> = self.roles.keys().copied().collect();
        for wd in wds {
            self.release(wd, |r| {
                !matches!(r, Role::Metadata { store } | Role::Approach { store } if *store == id)
            });
        }
        self.stores.remove(&id);
    }

    fn open_layer(&self, key: &ContainerKey) -> Result<Beneath, StorageError> {
        let state = &self.containers[key];
        let store = &self.stores[&key.store].store;
        store.open()?.open_dir(&key.driver.layer_dir(&state.layer))
    }

    fn tell(&mut self, id: StoreId, message: Message) {
        if let Some(state) = self.stores.get_mut(&id)
            && state.told.as_ref() != Some(&message)
        {
            note(&message);
            state.told = Some(message);
        }
    }
}

/// Whether `dir` is `path` or below it.
fn within(dir: &[u8], path: &[u8]) -> bool {
    dir == path || (dir.starts_with(path) && dir.get(path.len()) == Some(&b'/'))
}

fn excluded(parent: &[u8], name: &OsStr) -> bool {
    parent.is_empty()
        && EXCLUDED_TOP_DIRS
            .iter()
            .any(|d| name.as_bytes() == d.as_bytes())
}

fn path_depth(path: &[u8]) -> usize {
    path.iter().filter(|b| **b == b'/').count()
}

/// One of the kernel's inotify limits, `fs.inotify.<name>`.
fn inotify_limit(name: &str) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// fs.inotify.max_queued_events: how many events one instance's queue holds before it
/// overflows.
pub fn kernel_max_queued_events() -> Option<usize> {
    inotify_limit("max_queued_events")
}

/// The kernel's per-user watch limit.
pub fn kernel_max_watches() -> Option<usize> {
    inotify_limit("max_user_watches")
}

/// Operational notes (not findings): stderr, which the unit's journal keeps without a level.
/// They are for the administrator, in their language.
pub fn note(text: &Message) {
    eprintln!("{}: {}", super::NAME, text.localized());
}
