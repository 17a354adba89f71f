//! The host sandbox: a throwaway copy of this machine for commands that change the host.
//!
//! A sandbox is a set of namespaces (mount, network, pid, uts, ipc) held by a small init:
//! overlayfs over /etc, /var, /home, /root, /run, /usr, /opt, /srv and /mnt, so `useradd`,
//! /etc/hosts edits and package files land in the sandbox's upper layers; root's container
//! storage on a plain directory; a private /dev with its own tun node and devpts; a private
//! network with loopback up and optional extra addresses or veth links to other sandboxes.
//! Stopping it kills every process inside and deletes its state: the host stays byte-identical.
//!
//! Paths outside the overlaid directories (/tmp, /work, the project checkout and its target/)
//! are shared with the host; `share()` is a per-sandbox directory there for passing files.

pub mod cgroups;
pub mod control;
pub mod setup;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// The `podsec-sandbox` binary: `PODSEC_SANDBOX_BIN`, else next to the running test's target dir.
pub fn sandbox_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PODSEC_SANDBOX_BIN") {
        return path.into();
    }
    target_dir().join("podsec-sandbox")
}

/// `target/<profile>` of the running test (its executable is in `target/<profile>/deps`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir.parent().unwrap().to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A running sandbox; stopped on drop.
pub struct Sandbox {
    state: PathBuf,
    binary: PathBuf,
    stopped: bool,
}

/// How to start one.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub name: Option<String>,
    /// Extra addresses on loopback, e.g. `192.0.2.10/32`.
    pub addresses: Vec<String>,
}

impl Sandbox {
    pub fn start(options: &Options) -> Result<Sandbox> {
        let binary = sandbox_binary();
        let mut command = Command::new(&binary);
        command.arg("start");
        if let Some(name) = &options.name {
            command.args(["--name", name]);
        }
        for address in &options.addresses {
            command.args(["--address", address]);
        }
        let output = command
            .output()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        if !output.status.success() {
            bail!(
                "podsec-sandbox start failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let state = PathBuf::from(String::from_utf8(output.stdout)?.trim());
        Ok(Sandbox {
            state,
            binary,
            stopped: false,
        })
    }

    pub fn state(&self) -> &Path {
        &self.state
    }

    /// A directory shared with the host at the same path.
    pub fn share(&self) -> PathBuf {
        self.state.join("share")
    }

    /// A command to run inside as root.
    pub fn command<S: AsRef<OsStr>>(&self, program: S) -> SandboxCommand {
        SandboxCommand {
            sandbox_binary: self.binary.clone(),
            state: self.state.clone(),
            user: None,
            env: Vec::new(),
            cwd: None,
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            stdin: None,
        }
    }

    /// Runs `sh -c script` inside as root and returns the output (stdout, stderr, status).
    pub fn sh(&self, script: &str) -> Output {
        self.command("sh").args(["-c", script]).output()
    }

    /// Runs `sh -c script` and fails the test unless it exits 0; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let output = self.sh(script);
        assert!(
            output.status.success(),
            "in sandbox: {script}\nstatus {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts a daemon inside (its output goes to `log/<label>.log` of the state).
    pub fn spawn_daemon(&self, label: &str, argv: &[&str]) -> Result<()> {
        let output = Command::new(&self.binary)
            .arg("exec")
            .arg(&self.state)
            .args(["--detach", label, "--"])
            .args(argv)
            .output()?;
        if !output.status.success() {
            bail!(
                "cannot start {label}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    pub fn daemon_log(&self, label: &str) -> String {
        std::fs::read_to_string(self.state.join("log").join(format!("{label}.log")))
            .unwrap_or_default()
    }

    /// Joins two sandboxes with a veth pair named `eth1` on both sides.
    pub fn link(a: &Sandbox, b: &Sandbox, address_a: &str, address_b: &str) -> Result<()> {
        let output = Command::new(&a.binary)
            .arg("link")
            .arg(&a.state)
            .arg(&b.state)
            .args(["--address-a", address_a, "--address-b", address_b])
            .output()?;
        if !output.status.success() {
            bail!(
                "podsec-sandbox link failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Plugs `node` into the bridge `br0` of `switch` (made, with `bridge_address`, on first
    /// use) through a veth pair named `eth1` on the node's side, with `address`.
    pub fn attach(
        switch: &Sandbox,
        node: &Sandbox,
        bridge_address: &str,
        address: &str,
    ) -> Result<()> {
        let output = Command::new(&switch.binary)
            .arg("attach")
            .arg(&switch.state)
            .arg(&node.state)
            .args(["--bridge-address", bridge_address, "--address", address])
            .output()?;
        if !output.status.success() {
            bail!(
                "podsec-sandbox attach failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let output = Command::new(&self.binary)
            .arg("stop")
            .arg(&self.state)
            .output()?;
        if !output.status.success() {
            bail!(
                "podsec-sandbox stop failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            eprintln!("warning: {e:#}");
        }
    }
}

/// A command inside a sandbox (a builder like `std::process::Command`).
pub struct SandboxCommand {
    sandbox_binary: PathBuf,
    state: PathBuf,
    user: Option<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    stdin: Option<Vec<u8>>,
}

impl SandboxCommand {
    pub fn arg<S: AsRef<OsStr>>(mut self, arg: S) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Run as this user of the sandbox (with its groups, HOME and XDG_RUNTIME_DIR).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    pub fn output(self) -> Output {
        use std::io::Write;
        let mut command = Command::new(&self.sandbox_binary);
        command.arg("exec").arg(&self.state);
        if let Some(user) = &self.user {
            command.args(["--user", user]);
        }
        if let Some(cwd) = &self.cwd {
            command.arg("--cwd").arg(cwd);
        }
        for (key, value) in &self.env {
            command.arg("--env").arg(format!("{key}={value}"));
        }
        command.arg("--").arg(&self.program).args(&self.args);
        command.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("podsec-sandbox exec");
        if let Some(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(bytes).expect("write stdin");
        }
        child.wait_with_output().expect("podsec-sandbox exec")
    }
}
