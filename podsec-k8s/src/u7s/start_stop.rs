//! `u7s-start-stop start|stop|status`: the ExecStart/ExecStop of u7s.service (upstream
//! u7s-start-stop.sh), also usable by admins: starts the namespace and the kubelet of the node
//! through systemd (or directly where systemd is not running), stops them, reports.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use podsec_common::cli::{self, Failure};
use podsec_common::tr;

use super::runtime::{Runtime, RuntimeError, Units};
use crate::node_config::{NodeConfig, NodeConfigError};

pub const NAME: &str = "u7s-start-stop";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    Start,
    Stop,
    Status,
}

/// Start, stop or report the u7s runtime of this node (rootlesskit.service and kubelet.service
/// of u7s-admin); the ExecStart/ExecStop of u7s.service.
#[derive(Parser, Debug)]
#[command(name = NAME, version)]
pub struct Args {
    #[arg(value_enum)]
    pub action: Action,
    /// Start only the namespace (with CRI-O), not the kubelet
    #[arg(long)]
    pub namespace_only: bool,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl Failure for Error {}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let config = NodeConfig::load_default()?;
    let runtime = Runtime::new(&config)?;
    match args.action {
        Action::Start => {
            let units = if args.namespace_only {
                Units::NamespaceOnly
            } else {
                Units::All
            };
            let pid = runtime.start(units)?;
            println!(
                "{}",
                tr!(
                    "u7s namespace ready (RootlessKit child {pid}, {launch} launch); ports: {ports}",
                    pid = pid,
                    launch = format!("{:?}", runtime.launch()),
                    ports = config
                        .published_ports()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Stop => {
            runtime.stop()?;
            println!("{}", tr!("u7s runtime stopped"));
            Ok(ExitCode::SUCCESS)
        }
        Action::Status => match runtime.ready() {
            Ok(pid) => {
                println!("{}", tr!("running: RootlessKit child {pid}", pid = pid));
                Ok(ExitCode::SUCCESS)
            }
            Err(reason) => {
                println!(
                    "{}",
                    tr!(
                        "not running: {reason}",
                        reason = podsec_common::i18n::Localize::localized(&reason)
                    )
                );
                // systemctl's "not active".
                Ok(ExitCode::from(3))
            }
        },
    }
}
