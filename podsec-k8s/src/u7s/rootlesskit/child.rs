//! The child half, root inside the user namespace: private mounts, the CRI socket link, this
//! network namespace's settings and addresses, the ready file, then CRI-O.

use super::*;

fn setup_error(what: Message, detail: Message) -> Error {
    Error::Setup { what, detail }
}

/// Removes a copy-up symlink (or nothing) and makes `path` a directory to mount on.
fn own_mountpoint(path: &Path) -> Result<(), Error> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    std::fs::create_dir_all(path).map_err(io(path))
}

fn bind(source: &Path, target: &Path) -> Result<(), Error> {
    own_mountpoint(target)?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        setup_error(
            msg!("bind mount of {} on {}", source.display(), target.display()),
            Message::verbatim(e.to_string()),
        )
    })
}

/// The child half, root inside the user namespace.
pub(super) fn child(
    paths: &U7sPaths,
    addresses: &[Ipv4Addr],
    command: &[OsString],
) -> Result<ExitCode, Error> {
    for entry in PRIVATE_RUN_ENTRIES {
        let path = Path::new(entry);
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(path).map_err(io(path))?;
        }
    }
    for dir in ["/etc/kubernetes/pki", "/usr/libexec/kubernetes"] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("[WARNING] cannot create {dir}: {e}");
        }
    }
    for target in PRIVATE_DIRS.iter().chain(SEEDED_DIRS) {
        bind(&paths.private_dir(target), Path::new(target))?;
    }
    // Mount propagation for volumes (CSI, flexvolume): done here, so every restart has it.
    mount(
        None::<&str>,
        "/var/lib/kubelet",
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        setup_error(
            Message::verbatim("mount --make-rshared /var/lib/kubelet"),
            Message::verbatim(e.to_string()),
        )
    })?;
    let kubelet_link = paths.data().join("kubelet");
    if std::fs::symlink_metadata(&kubelet_link).is_err() {
        std::os::unix::fs::symlink("_var_lib_kubelet", &kubelet_link).map_err(io(&kubelet_link))?;
    }
    own_mountpoint(Path::new("/run/crio"))?;
    let socket_link = Path::new("/run/crio/crio.sock");
    let _ = std::fs::remove_file(socket_link);
    std::os::unix::fs::symlink(paths.crio_socket(), socket_link).map_err(io(socket_link))?;
    open_ping_group_range()?;
    enable_ip_forward()?;
    for address in addresses {
        add_address(*address)?;
    }
    write_ready_file(paths)?;
    eprintln!("[INFO] u7s namespace ready");
    if command.is_empty() {
        loop {
            std::thread::park();
        }
    }
    // CRI-O runs as uid 0 of this user namespace, so it cannot tell by itself that it is
    // rootless; told so, it leaves out of every container what an unprivileged user cannot
    // have: cgroup paths and limits without a delegated cgroup v2 subtree, hugepage limits, a
    // negative oom_score_adj, device cgroup rules (CRI-O's makeOCIConfigurationRootless).
    // Outside the host seam: the namespace's child becomes its init command (exec).
    let error = Command::new(&command[0])
        .args(&command[1..])
        .env(CRIO_ROOTLESS_VARIABLE, "1")
        .exec();
    Err(Error::Spawn {
        program: command[0].to_string_lossy().into_owned(),
        source: error,
    })
}

/// Unprivileged ICMP sockets for the groups of this user namespace, in this network namespace
/// only (upstream opened `0 2147483647` host-wide, as root, in u7sinit.sh). Pods get their own
/// network namespaces and set it through the safe sysctl if they need it.
fn open_ping_group_range() -> Result<(), Error> {
    let map = std::fs::read_to_string("/proc/self/gid_map")
        .map_err(io(Path::new("/proc/self/gid_map")))?;
    let highest = map
        .lines()
        .filter_map(|line| {
            let fields: Vec<u64> = line
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            (fields.len() == 3 && fields[2] > 0).then(|| fields[0] + fields[2] - 1)
        })
        .max()
        .unwrap_or(0);
    let path = Path::new("/proc/sys/net/ipv4/ping_group_range");
    // Outside the host seam: the namespace's own /proc/sys, inside rootlesskit's child.
    std::fs::write(path, format!("0 {highest}\n")).map_err(io(path))
}

/// Forwarding in this network namespace only: a new network namespace starts with
/// `net.ipv4.ip_forward` 0 whatever the host has, kubeadm's preflight refuses that
/// (FileContent--proc-sys-net-ipv4-ip_forward) and pod traffic (flannel's cni0 to tap0) is routed
/// here. The host's own knob is the wrapper's business (podsec-u7s-kubeadm sets it and writes
/// /etc/sysctl.d); this is the namespace's /proc/sys, root of its user namespace owning it.
fn enable_ip_forward() -> Result<(), Error> {
    let path = Path::new("/proc/sys/net/ipv4/ip_forward");
    // Outside the host seam: the namespace's own /proc/sys, inside rootlesskit's child.
    std::fs::write(path, "1\n").map_err(io(path))
}

fn add_address(address: Ipv4Addr) -> Result<(), Error> {
    let cidr = format!("{address}/32");
    let mut last = String::new();
    for attempt in 0..ADDRESS_ATTEMPTS {
        // Outside the host seam: the namespace's own tap0, inside rootlesskit's child.
        let output = Command::new("ip")
            .args(["address", "add", &cidr, "dev", "tap0"])
            .output()
            .map_err(|source| Error::Spawn {
                program: "ip".into(),
                source,
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() || stderr.contains("File exists") {
            return Ok(());
        }
        last = stderr.trim().to_string();
        if attempt + 1 < ADDRESS_ATTEMPTS {
            std::thread::sleep(ADDRESS_INTERVAL);
        }
    }
    Err(setup_error(
        msg!("ip address add {cidr} dev tap0 ({ADDRESS_ATTEMPTS} attempts)"),
        Message::verbatim(last),
    ))
}

/// Copies RootlessKit's child_pid into the ready file (atomically) once it is there.
fn write_ready_file(paths: &U7sPaths) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let child_pid = loop {
        match std::fs::read_to_string(paths.child_pid_file()) {
            Ok(text) if !text.trim().is_empty() => break text.trim().to_string(),
            _ if Instant::now() > deadline => {
                return Err(setup_error(
                    msg!("waiting for RootlessKit's child_pid"),
                    msg!("{} did not appear", paths.child_pid_file().display()),
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    files::write_atomic(
        &paths.ready_file(),
        format!("{child_pid}\n").as_bytes(),
        0o644,
        Owner::default(),
    )?;
    Ok(())
}
