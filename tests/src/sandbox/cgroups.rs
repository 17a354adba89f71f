//! Private cgroups for a sandbox: pid 1 moves into a `podsec-sandbox.<id>` cgroup of every host
//! hierarchy, enters a new cgroup namespace and mounts the hierarchies again, so root podman's
//! cgroups (`libpod_parent`, ...) are created below the sandbox's own cgroups; `stop` removes
//! them. Without this they would stay behind on the host.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

struct Hierarchy {
    mountpoint: PathBuf,
    cgroup2: bool,
    /// Controllers as /proc/self/cgroup names them (`cpu`, `name=systemd`; empty for cgroup2).
    key: String,
}

fn hierarchies() -> Result<Vec<Hierarchy>> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = left.split_whitespace().nth(4).unwrap_or_default();
        let mut fields = right.split_whitespace();
        let fstype = fields.next().unwrap_or_default();
        let super_options = fields.nth(1).unwrap_or_default();
        if !mountpoint.starts_with("/sys/fs/cgroup/") {
            continue;
        }
        let key = super_options
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro")
                    && !o.starts_with("release_agent")
                    && *o != "clone_children"
            })
            .collect::<Vec<_>>()
            .join(",");
        match fstype {
            "cgroup" => found.push(Hierarchy {
                mountpoint: mountpoint.into(),
                cgroup2: false,
                key,
            }),
            "cgroup2" => found.push(Hierarchy {
                mountpoint: mountpoint.into(),
                cgroup2: true,
                key: String::new(),
            }),
            _ => {}
        }
    }
    Ok(found)
}

/// This process's cgroup path in the hierarchy of `key`.
fn own_path(key: &str, cgroup2: bool) -> String {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = if cgroup2 {
                controllers.is_empty()
            } else {
                controllers == key
            };
            matches.then(|| path.to_string())
        })
        .next()
        .unwrap_or_else(|| "/".into())
}

/// Called by pid 1 of the sandbox before it starts anything; records the created cgroups in
/// `record` for [`remove`].
pub fn enter_private(name: &str, record: &Path) -> Result<()> {
    let hierarchies = hierarchies()?;
    let mut created = Vec::new();
    for hierarchy in &hierarchies {
        let parent = hierarchy
            .mountpoint
            .join(own_path(&hierarchy.key, hierarchy.cgroup2).trim_start_matches('/'));
        let dir = parent.join(name);
        fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        created.push(dir.display().to_string());
        fs::write(record, created.join("\n") + "\n")?;
        if hierarchy.key.split(',').any(|c| c == "cpuset") {
            // A v1 cpuset cgroup takes no task until it has cpus and mems.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = fs::read_to_string(parent.join(file)).unwrap_or_default();
                fs::write(dir.join(file), value.trim())?;
            }
        }
        fs::write(dir.join("cgroup.procs"), "0")
            .with_context(|| format!("joining {}", dir.display()))?;
    }
    unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare cgroup namespace")?;
    mount(
        Some("cgroup"),
        "/sys/fs/cgroup",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755"),
    )
    .context("mount tmpfs on /sys/fs/cgroup")?;
    for hierarchy in &hierarchies {
        fs::create_dir_all(&hierarchy.mountpoint)?;
        let (fstype, options) = if hierarchy.cgroup2 {
            ("cgroup2", None)
        } else if hierarchy.key.starts_with("name=") {
            ("cgroup", Some(format!("none,{}", hierarchy.key)))
        } else {
            ("cgroup", Some(hierarchy.key.clone()))
        };
        mount(
            Some(fstype),
            &hierarchy.mountpoint,
            Some(fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            options.as_deref(),
        )
        .with_context(|| format!("mount {} on {}", fstype, hierarchy.mountpoint.display()))?;
    }
    Ok(())
}

/// Moves the calling process into the cgroups recorded by [`enter_private`].
pub fn join(record: &Path) {
    let Ok(text) = fs::read_to_string(record) else {
        return;
    };
    for dir in text.lines().filter(|l| !l.is_empty()) {
        let _ = fs::write(Path::new(dir).join("cgroup.procs"), "0");
    }
}

/// Removes the cgroups recorded by [`enter_private`], deepest first (only empty cgroups can go;
/// the processes are gone by then).
pub fn remove(record: &Path) {
    let Ok(text) = fs::read_to_string(record) else {
        return;
    };
    for dir in text.lines().filter(|l| !l.is_empty()) {
        remove_tree(Path::new(dir));
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}
