//! The parent half, as u7s-admin outside the namespaces: the node configuration checked, CRI-O's
//! configuration and the private CNI directories prepared, rootlesskit run and supervised.

use super::*;

pub(super) fn parent() -> Result<ExitCode, Error> {
    let config = NodeConfig::load_default()?;
    let uid = nix::unistd::getuid().as_raw();
    if uid != config.uid {
        return Err(Error::WrongUser {
            expected: config.uid,
            actual: uid,
        });
    }
    let account = paths::account_of(uid)?;
    let paths = U7sPaths::new(uid, &account.home);
    prepare(&config, &paths)?;

    let exe = std::env::current_exe().map_err(io(Path::new("/proc/self/exe")))?;
    let argv = rootlesskit_argv(
        &config,
        &paths,
        &HostFacts::detect(),
        &child_argv(&config, &paths, &exe),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores into an atomic.
        unsafe { sigaction(signal, &action) }.map_err(|e| Error::Setup {
            what: Message::verbatim("sigaction"),
            detail: Message::verbatim(e.to_string()),
        })?;
    }
    eprintln!(
        "[INFO] Starting RootlessKit: {}",
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Outside the host seam: starting rootlesskit is the u7s runtime's work.
    let mut rootlesskit = Command::new(&argv[0])
        .args(&argv[1..])
        .env("ROOTLESSKIT_STATE_DIR", paths.state_dir())
        .current_dir(&paths.home)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: ROOTLESSKIT.into(),
            source,
        })?;
    let pid = Pid::from_raw(rootlesskit.id() as i32);
    let started = Instant::now();
    let expected = config.published_ports();
    let mut ready = false;
    let mut terminating: Option<Instant> = None;
    let mut stopped_by_signal = false;
    let status = loop {
        if let Some(status) = rootlesskit.try_wait().map_err(io(Path::new(ROOTLESSKIT)))? {
            break status;
        }
        let signal = SIGNAL.swap(0, Ordering::SeqCst);
        if signal != 0 && terminating.is_none() {
            eprintln!("[INFO] Stopping RootlessKit (signal {signal})");
            let _ = kill(pid, Signal::SIGTERM);
            terminating = Some(Instant::now());
            stopped_by_signal = true;
        }
        if let Some(since) = terminating
            && since.elapsed() > STOP_TIMEOUT
        {
            let _ = kill(pid, Signal::SIGKILL);
        }
        if !ready && terminating.is_none() {
            match readiness(&paths, &expected) {
                Ok(child) => {
                    ready = true;
                    eprintln!(
                        "[INFO] RootlessKit ready, PID={child}, state directory={}; enter with: nsenter_u7s",
                        paths.state_dir().display()
                    );
                    if let Err(e) = crate::u7s::notify::ready() {
                        eprintln!("[WARNING] cannot notify systemd: {e}");
                    }
                }
                Err(reason) if started.elapsed() > READY_TIMEOUT => {
                    eprintln!("[ERROR] {}", Error::NotReady(READY_TIMEOUT, reason.clone()));
                    let _ = kill(pid, Signal::SIGTERM);
                    terminating = Some(Instant::now());
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // RootlessKit removes its state directory when it exits cleanly; after a kill the ready
    // file would point nsenter_u7s at a dead namespace.
    let _ = std::fs::remove_file(paths.ready_file());
    let code = status.code().unwrap_or(1);
    eprintln!("[INFO] RootlessKit exiting (status={status})");
    Ok(if stopped_by_signal {
        // Asked to stop: the teardown is the success.
        ExitCode::SUCCESS
    } else if ready || code != 0 {
        ExitCode::from(code.clamp(0, 255) as u8)
    } else {
        ExitCode::FAILURE
    })
}

/// Ready: the handshake holds, every expected port is published and CRI-O serves its socket
/// (upstream restarted RootlessKit until the socket appeared, without a bound).
pub fn readiness(paths: &U7sPaths, expected: &[ports::PortSpec]) -> Result<i32, Message> {
    let pid = nsenter::ready_pid(paths).map_err(|e| Message::of(&e))?;
    let published = ports::published(&paths.api_socket()).map_err(|e| Message::of(&e))?;
    if let Some(missing) = expected.iter().find(|p| !published.contains(p)) {
        return Err(msg!("port {missing} is not published yet"));
    }
    let socket = paths.crio_socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_err() {
        return Err(msg!("CRI-O does not answer on {} yet", socket.display()));
    }
    Ok(pid)
}

fn create_private_dir(path: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io(path))
}

/// Everything the parent does before RootlessKit starts.
fn prepare(config: &NodeConfig, paths: &U7sPaths) -> Result<(), Error> {
    let runtime = paths.runtime_dir();
    if !runtime.is_dir() {
        return Err(Error::NoRuntimeDir(runtime));
    }
    if let Ok(pid) = nsenter::ready_pid(paths) {
        return Err(Error::AlreadyRunning(pid));
    }
    // Left by a killed RootlessKit or CRI-O: nsenter_u7s and the readiness check must not
    // trust them.
    let _ = std::fs::remove_file(paths.ready_file());
    let _ = std::fs::remove_file(paths.crio_socket());
    for dir in [
        paths.usernetes_runtime(),
        paths.crio_runtime(),
        paths.data(),
        paths.config().join("crio"),
        paths.logs(),
    ] {
        create_private_dir(&dir)?;
    }
    for target in PRIVATE_DIRS.iter().chain(SEEDED_DIRS) {
        create_private_dir(&paths.private_dir(target))?;
    }
    let crio_config = CrioConfig::for_node(config, paths, CgroupVersion::detect()).to_toml();
    files::write_atomic(
        &paths.crio_config(),
        crio_config.as_bytes(),
        0o600,
        Owner::default(),
    )?;
    seed_cni_configs(
        Path::new("/etc/cni/net.d"),
        &paths.private_dir("/etc/cni/net.d"),
        config.cni_plugin,
    )?;
    match CNI_PLUGIN_DIRS.iter().map(Path::new).find(|d| d.is_dir()) {
        Some(plugins) => seed(plugins, &paths.private_dir("/opt/cni/bin"), 0o755)?,
        None => eprintln!(
            "[WARNING] no CNI plugins found in {}: /opt/cni/bin of the namespace is empty",
            CNI_PLUGIN_DIRS.join(" or ")
        ),
    }
    Ok(())
}

/// Copies the regular files of `source` into `target` (u7s-admin's), replacing those that
/// differ in size or age; files only `target` has (written by pods) stay.
/// The node's own CNI configuration, as podsec-u7s-kubeadm writes it into /etc/cni/net.d: only
/// it reaches the namespace. CRI-O takes the first usable configuration there, and until the
/// flannel pod has installed its plugin the pod network's is not usable: any other one (root
/// podman's 87-podman-bridge.conflist, or a loopback-only 99-loopback.conf, which older releases
/// wrote) would become the network of every pod started meanwhile (CoreDNS got only `lo` so).
/// With none, CRI-O reports the network not ready and the kubelet waits for flannel.
pub const NODE_CNI_CONFIGS: &[&str] = &[crate::u7s_kubeadm::flannel::CONFLIST_NAME];

/// The network configurations a node keeps in the namespace's /etc/cni/net.d: flannel's, which
/// podsec writes on the host and seeds; calico's, which calico's install-cni writes there itself
/// (nothing is seeded then: a host's flannel configuration of an earlier deployment would become
/// the pods' network until calico is up).
pub fn node_cni_configs(cni: CniPlugin) -> (&'static [&'static str], &'static [&'static str]) {
    match cni {
        CniPlugin::Flannel => (NODE_CNI_CONFIGS, NODE_CNI_CONFIGS),
        CniPlugin::Calico => (&[], &[crate::u7s_kubeadm::calico::CONFLIST_NAME]),
    }
}

/// Seeds the namespace's private /etc/cni/net.d with the node's configurations and removes any
/// other network configuration from it (left there by an older release, which copied them all).
pub fn seed_cni_configs(source: &Path, target: &Path, cni: CniPlugin) -> Result<(), Error> {
    let (seeded, kept) = node_cni_configs(cni);
    seed_only(source, target, 0o644, Some(seeded))?;
    let entries = std::fs::read_dir(target).map_err(io(target))?;
    for entry in entries {
        let entry = entry.map_err(io(target))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let network_config = [".conf", ".conflist", ".json"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        if network_config && !kept.contains(&name.as_ref()) {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        }
    }
    Ok(())
}

/// Copies every regular file of `source` into `target` (see [`seed_only`]).
pub fn seed(source: &Path, target: &Path, mode: u32) -> Result<(), Error> {
    seed_only(source, target, mode, None)
}

/// Copies the regular files of `source` (those named in `only`, if given) into `target` when
/// missing or changed; what else is in `target` (written by pods) stays.
fn seed_only(source: &Path, target: &Path, mode: u32, only: Option<&[&str]>) -> Result<(), Error> {
    let entries = match std::fs::read_dir(source) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(source)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(source))?;
        let from = entry.path();
        if only.is_some_and(|names| !names.iter().any(|n| *n == entry.file_name())) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&from) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let to = target.join(entry.file_name());
        let same = std::fs::symlink_metadata(&to).is_ok_and(|existing| {
            existing.is_file()
                && existing.len() == meta.len()
                && existing.modified().ok() >= meta.modified().ok()
        });
        if same {
            continue;
        }
        let temp = tempfile::Builder::new()
            .prefix(".seed.")
            .tempfile_in(target)
            .map_err(io(target))?;
        let mut input = std::fs::File::open(&from).map_err(io(&from))?;
        std::io::copy(&mut input, &mut temp.as_file()).map_err(io(&to))?;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io(&to))?;
        temp.persist(&to).map_err(|e| io(&to)(e.error))?;
    }
    Ok(())
}
