//! podsec-sandbox: run commands as root against a throwaway copy of this host.
//!
//!     podsec-sandbox start [--name N] [--address CIDR]...   prints the state directory
//!     podsec-sandbox exec STATE [--user U] [--env K=V]... [--detach LABEL] -- CMD...
//!     podsec-sandbox link STATE_A STATE_B --address-a CIDR --address-b CIDR
//!     podsec-sandbox attach SWITCH NODE --bridge-address CIDR --address CIDR
//!     podsec-sandbox stop STATE
//!     podsec-sandbox run [--address CIDR]... -- CMD...       start, run, stop

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use podsec_tests::sandbox::control::{self, ExecOptions, StartOptions};

#[derive(Parser)]
#[command(
    name = "podsec-sandbox",
    version,
    about = "Run commands as root against a throwaway copy of this host"
)]
struct Cli {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Start a sandbox and print its state directory
    Start {
        #[arg(long, default_value = "podsec-sandbox")]
        name: String,
        /// Where state directories go (must not be below an overlaid directory)
        #[arg(
            long,
            env = "PODSEC_SANDBOX_BASE",
            default_value = "/tmp/podsec-sandboxes"
        )]
        base: PathBuf,
        /// Extra address on loopback (e.g. 192.0.2.10/32)
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
    /// Run a command inside
    Exec {
        state: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<OsString>,
    },
    /// Join two sandboxes with a veth pair named eth1 on both sides
    Link {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        address_a: String,
        #[arg(long)]
        address_b: String,
        #[arg(long, default_value = "eth1")]
        name: String,
    },
    /// Plug NODE into a bridge of SWITCH (made on first use) with a veth pair
    Attach {
        switch: PathBuf,
        node: PathBuf,
        /// The bridge's own address in SWITCH, when it is made
        #[arg(long)]
        bridge_address: String,
        /// The address of NODE's end
        #[arg(long)]
        address: String,
        #[arg(long, default_value = "br0")]
        bridge: String,
        #[arg(long, default_value = "eth1")]
        name: String,
    },
    /// Kill everything inside and remove the state
    Stop { state: PathBuf },
    /// Start, run one command, stop
    Run {
        #[arg(long = "address")]
        addresses: Vec<String>,
        #[arg(
            long,
            env = "PODSEC_SANDBOX_BASE",
            default_value = "/tmp/podsec-sandboxes"
        )]
        base: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<OsString>,
    },
}

#[derive(clap::Args)]
struct ExecArgs {
    /// Run as this user of the sandbox
    #[arg(long)]
    user: Option<String>,
    /// KEY=VALUE for the command's environment
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Working directory inside
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Start in the background, output to log/LABEL.log of the state
    #[arg(long, value_name = "LABEL")]
    detach: Option<String>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

impl From<ExecArgs> for ExecOptions {
    fn from(args: ExecArgs) -> ExecOptions {
        ExecOptions {
            user: args.user,
            detach: args.detach,
            cwd: args.cwd,
            env: args.env,
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podsec-sandbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.action {
        Action::Start {
            name,
            base,
            addresses,
        } => {
            let state = control::start(&StartOptions {
                base,
                name,
                addresses,
            })?;
            println!("{}", state.display());
            Ok(ExitCode::SUCCESS)
        }
        Action::Exec {
            state,
            exec,
            command,
        } => control::exec(&state, &exec.into(), &command),
        Action::Link {
            a,
            b,
            address_a,
            address_b,
            name,
        } => {
            control::link(&a, &b, &name, &address_a, &address_b)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Attach {
            switch,
            node,
            bridge_address,
            address,
            bridge,
            name,
        } => {
            control::attach(&switch, &node, &bridge, &bridge_address, &name, &address)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Stop { state } => {
            control::stop(&state)?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Run {
            addresses,
            base,
            exec,
            command,
        } => {
            let state = control::start(&StartOptions {
                base,
                name: "podsec-sandbox".into(),
                addresses,
            })?;
            // exec enters the namespaces, so it runs in a child of its own.
            let status = std::process::Command::new(std::env::current_exe()?)
                .arg("exec")
                .arg(&state)
                .args(exec_flags(&exec))
                .arg("--")
                .args(&command)
                .status()
                .context("running the command")?;
            control::stop(&state)?;
            Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
        }
    }
}

fn exec_flags(exec: &ExecArgs) -> Vec<OsString> {
    let mut flags: Vec<OsString> = Vec::new();
    if let Some(user) = &exec.user {
        flags.extend(["--user".into(), user.into()]);
    }
    for (key, value) in &exec.env {
        flags.extend(["--env".into(), format!("{key}={value}").into()]);
    }
    if let Some(cwd) = &exec.cwd {
        flags.extend(["--cwd".into(), cwd.into()]);
    }
    flags
}
