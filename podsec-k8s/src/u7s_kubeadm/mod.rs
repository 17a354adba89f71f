//! podsec-u7s-kubeadm (installed as `kubeadm` in /usr/libexec/podsec/u7s/bin): kubeadm for
//! rootless clusters whose pods all run in the user namespace of u7s-admin.

pub(crate) mod apply;
pub mod audit;
pub(crate) mod calico;
pub mod flags;
pub(crate) mod flannel;
pub mod host_prep;
pub mod kubeadm_config;
pub mod network;
pub(crate) mod packages;
pub(crate) mod phase_config;
pub(crate) mod plan;
pub(crate) mod registry;
pub(crate) mod resolve;
pub(crate) mod runtime;
pub mod versions;

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use podsec_common::cli::{self, Failure, NotRoot};
use podsec_common::host::RealHost;
use podsec_common::i18n::{Localize, Message};
use podsec_common::profile::{Distribution, Profile};
use podsec_common::{msg, tr};

use crate::node_config;
use flags::{FlagError, Invocation};
use host_prep::HostFacts;
use phase_config::PhaseConfig;
use plan::{Context, NativeKubeadm, PlanError};
use resolve::{RegistryTags, ResolveError, U7sEnv};
use runtime::{InstalledRuntime, Runtime, RuntimeError};

pub const NAME: &str = "podsec-u7s-kubeadm";

/// Deploy and manage a rootless Kubernetes node: `kubeadm init`, `kubeadm join` (worker or
/// --control-plane) and the other kubeadm subcommands, run inside the namespace of u7s-admin.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version,
    after_help = "Subcommands:\n  \
init [flags]                 deploy the first control-plane node (see kubeadm init --help)\n  \
join HOST:PORT [flags]       join as a worker, or with --control-plane as a control-plane node\n  \
anything else                run by the native kubeadm inside the u7s namespace, arguments as given\n\n\
Every kubeadm flag of init and join is honoured, passed to the native kubeadm, or refused;\n\
--dry-run prints the whole plan and changes nothing.\n\n\
Environment:\n  \
U7S_PLATFORM              platform (c10f, p10, p11, sisyphus); default from /etc/os-release\n  \
U7S_REGISTRY              image registry [with path]; set empty: native registry.k8s.io images;\n                            default registry.local if bound in /etc/hosts, else registry.altlinux.org\n  \
U7S_KUBEVERSION           Kubernetes version (vX.Y or vX.Y.Z); default the installed kubeadm's minor\n  \
U7S_SETAVAILABLEIMAGES    yes: substitute the newest tag of the same minor for a missing one (loudly)\n  \
U7S_FLANNEL_TAG           flannel image tag (default: newest with a shipped manifest)\n  \
U7S_FLANNELCNIPLUGIN_TAG  flannel CNI plugin image tag (default: the manifest's)\n  \
U7S_CNI_PLUGIN            flannel (default) or calico\n  \
U7S_CALICO_MANIFEST       with calico: Calico's calico.yaml, its images in the node's registry\n  \
U7S_ARCHIMAGES            extra images to pull, space-separated\n  \
U7S_SKIP_PHASES           kubeadm phases to skip when --skip-phases is not given\n\
Must be run as root."
)]
pub struct Args {
    /// kubeadm subcommand (init, join, reset, token, upgrade, config, ...) and its flags
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "subcommand [flags]"
    )]
    pub kubeadm: Vec<String>,
}

#[derive(Debug, thiserror::Error, podsec_common::i18n::Localize)]
pub enum Error {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    NotRoot(#[from] NotRoot),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Native(Message),
}

impl Failure for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Flag(_) => 2,
            _ => 1,
        }
    }
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

/// The wrapper's own usage (no subcommand: never the deployment path).
fn usage() -> String {
    tr!(
        "Usage: kubeadm [-v N] init [flags]\n       \
         kubeadm [-v N] join HOST:PORT --token T --discovery-token-ca-cert-hash sha256:H [--control-plane --certificate-key K]\n       \
         kubeadm SUBCOMMAND ...   (reset, token, upgrade, config, certs, version...: the native kubeadm in the u7s namespace)\n\n\
         podsec-u7s-kubeadm --help for the environment, kubeadm init --help and kubeadm join --help for the flags.\n"
    )
    .to_string()
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    match flags::parse(&args.kubeadm)? {
        Invocation::Usage { help } => {
            if help {
                print!("{}", usage());
                Ok(ExitCode::SUCCESS)
            } else {
                eprint!("{}", usage());
                Ok(ExitCode::from(2))
            }
        }
        Invocation::SubcommandHelp { command } => {
            print!("{}", flags::subcommand_usage(command));
            Ok(ExitCode::SUCCESS)
        }
        Invocation::Native { args } => {
            cli::require_root()?;
            native(&args)
        }
        Invocation::Init(flags) => {
            cli::require_root()?;
            deploy(Deployment::Init(&flags), &flags.common)
        }
        Invocation::Join(flags) => {
            cli::require_root()?;
            deploy(Deployment::Join(&flags), &flags.common)
        }
    }
}

/// The native kubeadm must be a real kubeadm, never this wrapper again.
fn check_native_kubeadm() -> Result<(), Error> {
    let native = std::fs::canonicalize(packages::KUBEADM)
        .map_err(|e| Error::Native(msg!("{}: {e} (is kubeadm installed?)", packages::KUBEADM)))?;
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    if Some(&native) == me.as_ref() {
        return Err(Error::Native(msg!(
            "{} is this wrapper, not the native kubeadm",
            packages::KUBEADM
        )));
    }
    Ok(())
}

/// Any other subcommand: the native kubeadm inside the u7s namespace, arguments as given.
fn native(args: &[String]) -> Result<ExitCode, Error> {
    check_native_kubeadm()?;
    let runtime = InstalledRuntime::new();
    if !runtime.is_running() {
        return Err(Error::Native(msg!(
            "the u7s namespace is not running: start u7s.service, or deploy the node with kubeadm init or join first"
        )));
    }
    let mut argv = vec![packages::KUBEADM.to_string()];
    argv.extend(args.iter().cloned());
    let node = node_config::NodeConfig::load_default().ok();
    let init_config = phase_config::init_config_path();
    let saved = init_config.is_file().then_some(init_config.as_path());
    match phase_config::phase_config(args, node.as_ref(), saved) {
        PhaseConfig::Unchanged => {}
        PhaseConfig::Existing(path) => {
            argv.extend(["--config".to_string(), path.display().to_string()]);
        }
        PhaseConfig::Rendered(text) => {
            let path = phase_config::rendered_path();
            let owner = plan::Owner::root_u7s_group();
            apply::write_file(
                &RealHost,
                &runtime::PlannedFile {
                    path: path.clone(),
                    mode: 0o640,
                    user: owner.user,
                    group: owner.group,
                    contents: text,
                },
            )
            .map_err(|e| Error::Native(crate::path_message(&path, &e)))?;
            argv.extend(["--config".to_string(), path.display().to_string()]);
        }
    }
    let status = runtime
        .in_namespace(&argv)?
        .status()
        .map_err(|e| Error::Native(msg!("cannot run {}: {e}", packages::KUBEADM)))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

enum Deployment<'a> {
    Init(&'a flags::InitFlags),
    Join(&'a flags::JoinFlags),
}

fn build_plan(
    deployment: &Deployment,
    env: &U7sEnv,
    runtime: &dyn Runtime,
    reset: bool,
) -> Result<plan::Plan, PlanError> {
    let facts = HostFacts::gather(runtime);
    let tags = RegistryTags::new(registry::Trust::default());
    let packages: Box<dyn packages::PackageIndex> =
        if Profile::for_os(&facts.os).distribution == Distribution::Alt {
            Box::new(packages::AltApt)
        } else {
            Box::new(packages::NoPackages)
        };
    let images = NativeKubeadm {
        installed: facts.installed.kubeadm,
    };
    let ctx = Context {
        env,
        facts: &facts,
        tags: &tags,
        packages: packages.as_ref(),
        runtime,
        kubeadm_images: &images,
    };
    match deployment {
        Deployment::Init(f) => {
            let mut f = (*f).clone();
            f.common.reset |= reset;
            plan::init(&f, &ctx)
        }
        Deployment::Join(f) => {
            let mut f = (*f).clone();
            f.common.reset |= reset;
            plan::join(&f, &ctx)
        }
    }
}

/// Asks on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
}

fn deploy(deployment: Deployment, common: &flags::CommonFlags) -> Result<ExitCode, Error> {
    let env = U7sEnv::from_process()?;
    let runtime = InstalledRuntime::new();
    if common.dry_run {
        // Reads only: the host's facts, the package index as it is, the registry.
        let plan = build_plan(&deployment, &env, &runtime, false)?;
        print!("{}", plan.render(true));
        return Ok(ExitCode::SUCCESS);
    }
    check_native_kubeadm().or_else(|e| {
        // Before the packages are installed there is no kubeadm yet; the plan installs it.
        if std::path::Path::new(packages::KUBEADM).exists() {
            Err(e)
        } else {
            Ok(())
        }
    })?;
    let mut reset = false;
    let mut plan = match build_plan(&deployment, &env, &runtime, reset) {
        Err(PlanError::Leftovers { list } | PlanError::LeftoversRunning { list })
            if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() =>
        {
            eprintln!(
                "podsec-u7s-kubeadm: {}",
                tr!(
                    "leftovers of an earlier deployment: {list}",
                    list = list.localized()
                )
            );
            if !confirm(tr!("Remove them (the cluster state of this node is lost)?")) {
                return Err(Error::Plan(PlanError::Leftovers { list }));
            }
            reset = true;
            build_plan(&deployment, &env, &runtime, reset)?
        }
        other => other?,
    };
    // The notes are in the user's language already (see plan::common).
    for note in &plan.notes {
        eprintln!("podsec-u7s-kubeadm: {note}");
    }
    // Packages first; the image list and the exact versions come from the installed kubeadm.
    if let Some(step) = plan
        .steps
        .iter()
        .position(|s| matches!(s, plan::Step::InstallPackages { .. }))
    {
        let packages_only = plan::Plan {
            steps: vec![plan.steps[step].clone()],
            prepare_only: false,
            ..plan.clone()
        };
        apply::apply(&RealHost, &packages_only, &runtime)?;
        check_native_kubeadm()?;
        plan = build_plan(&deployment, &env, &runtime, reset)?;
    }
    apply::apply(&RealHost, &plan, &runtime)?;
    Ok(ExitCode::SUCCESS)
}
