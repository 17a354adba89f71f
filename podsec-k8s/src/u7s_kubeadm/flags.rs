//! The kubeadm command line, parsed the way kubeadm (pflag) reads it, with the disposition of
//! every flag in one table: honoured by podsec (it goes into the generated configuration or the
//! plan), passed to the native kubeadm, or rejected with an error naming the flag and why.
//! Nothing is silently dropped (upstream ignored `--service-cidr`, `--config`, `--node-name`...,
//! lost values with spaces, kept getopt's quotes and read FLAG_* from the environment, §10.2/9-11).
//!
//! Subcommands other than `init` and `join` (and `init phase ...`, `join phase ...`) are not
//! parsed at all: their arguments go to the native kubeadm inside the u7s namespace exactly as
//! given, so kubeadm itself validates them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use podsec_common::{msg, tr};

use super::network::{Ipv4Net, NetworkError};
use super::versions::{VersionError, VersionRequest};

/// The CRI socket of a rootless node, inside the u7s namespace.
pub const CRI_SOCKET: &str = "unix:///run/crio/crio.sock";
/// Where kubeadm keeps the cluster certificates on a rootless node.
pub const CERT_DIR: &str = "/etc/kubernetes/pki";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` or `--flag=true|false`.
    Bool,
    /// `--flag VALUE` or `--flag=VALUE`.
    Value,
    /// A comma-separated list, repeatable: `--flag a,b --flag c`.
    List,
}

/// Which command line a flag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Both,
    Init,
    Join,
}

/// What happens to a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// podsec acts on it; the text says how.
    Honoured(&'static str),
    /// Given to the native kubeadm next to the generated --config.
    Native,
    /// Refused with this reason.
    Rejected(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub scope: Scope,
    pub disposition: Disposition,
}

const fn flag(name: &'static str, kind: Kind, scope: Scope, disposition: Disposition) -> FlagSpec {
    FlagSpec {
        name,
        short: None,
        kind,
        scope,
        disposition,
    }
}

use Disposition::{Honoured, Native, Rejected};
use Kind::{Bool, List, Value};
use Scope::{Both, Global, Init, Join};

/// Every flag of `kubeadm init` and `kubeadm join` (kubeadm 1.26 to 1.33, and the klog flags
/// upstream's wrapper knew), plus the wrapper's own `--reset`.
pub const FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "help",
        short: Some('h'),
        kind: Bool,
        scope: Global,
        disposition: Honoured("prints this wrapper's usage of the subcommand"),
    },
    FlagSpec {
        name: "v",
        short: Some('v'),
        kind: Value,
        scope: Global,
        disposition: Native,
    },
    flag("skip-headers", Bool, Global, Native),
    flag(
        "add-dir-header",
        Bool,
        Global,
        Rejected(
            "kubeadm refuses it next to --config, and podsec always passes its generated configuration",
        ),
    ),
    flag(
        "rootfs",
        Value,
        Global,
        Rejected("kubeadm would chroot out of the u7s namespace, where the rootless node lives"),
    ),
    flag(
        "log-file",
        Value,
        Global,
        Rejected(
            "kubeadm 1.26 and later have no klog file flags; kubeadm's output goes to the terminal",
        ),
    ),
    flag(
        "log-file-max-size",
        Value,
        Global,
        Rejected("kubeadm 1.26 and later have no klog file flags"),
    ),
    flag(
        "one-output",
        Bool,
        Global,
        Rejected("kubeadm 1.26 and later have no such klog flag"),
    ),
    flag(
        "skip-log-headers",
        Bool,
        Global,
        Rejected("kubeadm 1.26 and later have no such klog flag"),
    ),
    // init and join
    flag(
        "apiserver-advertise-address",
        Value,
        Both,
        Honoured(
            "localAPIEndpoint.advertiseAddress, etcd certificate SANs, the node's address in the u7s namespace",
        ),
    ),
    flag(
        "apiserver-bind-port",
        Value,
        Both,
        Honoured(
            "localAPIEndpoint.bindPort, the default control-plane endpoint and the published port",
        ),
    ),
    flag(
        "certificate-key",
        Value,
        Both,
        Honoured("certificateKey (init) or controlPlane.certificateKey (join)"),
    ),
    flag(
        "config",
        Value,
        Both,
        Rejected(
            "podsec generates the kubeadm configuration of a rootless node; give its settings as flags",
        ),
    ),
    flag(
        "cri-socket",
        Value,
        Both,
        Honoured(
            "must be the node's own CRI-O, unix:///run/crio/crio.sock; any other socket is refused",
        ),
    ),
    flag(
        "dry-run",
        Bool,
        Both,
        Honoured("prints the whole plan and changes nothing; the native kubeadm is not run"),
    ),
    flag("ignore-preflight-errors", List, Both, Native),
    flag("node-name", Value, Both, Honoured("nodeRegistration.name")),
    flag("patches", Value, Both, Honoured("patches.directory")),
    flag("skip-phases", List, Both, Honoured("skipPhases")),
    flag(
        "token",
        Value,
        Both,
        Honoured("bootstrapTokens[0].token (init); discovery and TLS bootstrap token (join)"),
    ),
    flag(
        "reset",
        Bool,
        Both,
        Honoured("podsec's own: removes the leftovers of an earlier deployment without asking"),
    ),
    flag(
        "prepare-only",
        Bool,
        Both,
        Honoured(
            "podsec's own: prepares the host and writes the configuration, then stops before starting the node",
        ),
    ),
    // init only
    flag(
        "apiserver-cert-extra-sans",
        List,
        Init,
        Honoured("apiServer.certSANs"),
    ),
    flag(
        "cert-dir",
        Value,
        Init,
        Honoured(
            "must be /etc/kubernetes/pki, where the rootless node keeps its certificates; any other directory is refused",
        ),
    ),
    flag(
        "control-plane-endpoint",
        Value,
        Init,
        Honoured("controlPlaneEndpoint (default ADVERTISE-ADDRESS:BIND-PORT)"),
    ),
    flag("feature-gates", Value, Init, Honoured("featureGates")),
    flag(
        "image-repository",
        Value,
        Init,
        Honoured("the registry and path of every image, ahead of U7S_REGISTRY and U7S_PLATFORM"),
    ),
    flag(
        "kubernetes-version",
        Value,
        Init,
        Honoured("kubernetesVersion, ahead of U7S_KUBEVERSION; also the packages' minor"),
    ),
    flag(
        "pod-network-cidr",
        Value,
        Init,
        Honoured(
            "networking.podSubnet, controller-manager cluster-cidr, flannel's Network; checked against host networks",
        ),
    ),
    flag(
        "service-cidr",
        Value,
        Init,
        Honoured(
            "networking.serviceSubnet, controller-manager service-cluster-ip-range; checked against host networks",
        ),
    ),
    flag(
        "service-dns-domain",
        Value,
        Init,
        Honoured("networking.dnsDomain"),
    ),
    flag("skip-certificate-key-print", Bool, Init, Native),
    flag("skip-token-print", Bool, Init, Native),
    flag("token-ttl", Value, Init, Honoured("bootstrapTokens[0].ttl")),
    flag("upload-certs", Bool, Init, Native),
    // join only
    flag(
        "control-plane",
        Bool,
        Join,
        Honoured("controlPlane in the JoinConfiguration: the node becomes a control-plane node"),
    ),
    flag(
        "discovery-file",
        Value,
        Join,
        Honoured("discovery.file.kubeConfigPath"),
    ),
    flag(
        "discovery-token",
        Value,
        Join,
        Honoured("discovery.bootstrapToken.token"),
    ),
    flag(
        "discovery-token-ca-cert-hash",
        List,
        Join,
        Honoured("discovery.bootstrapToken.caCertHashes"),
    ),
    flag(
        "discovery-token-unsafe-skip-ca-verification",
        Bool,
        Join,
        Honoured("discovery.bootstrapToken.unsafeSkipCAVerification"),
    ),
    flag(
        "tls-bootstrap-token",
        Value,
        Join,
        Honoured("discovery.tlsBootstrapToken"),
    ),
];

pub fn spec(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|f| f.name == name)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("unknown flag {flag} for kubeadm {command} (see kubeadm {command} --help)")]
    Unknown { command: &'static str, flag: String },
    #[error("flag --{flag} belongs to kubeadm {belongs}, not to kubeadm {command}")]
    WrongCommand {
        command: &'static str,
        flag: &'static str,
        belongs: &'static str,
    },
    #[error("flag --{flag} needs a value")]
    MissingValue { flag: &'static str },
    #[error("flag --{flag} takes no value other than true or false, got '{value}'")]
    BoolValue { flag: &'static str, value: String },
    #[error("flag --{flag} is not supported: {reason}")]
    Rejected {
        flag: &'static str,
        reason: &'static str,
    },
    #[error("flag --{flag} given twice")]
    Twice { flag: &'static str },
    #[error("invalid value '{value}' of --{flag}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("kubeadm {command} takes no argument '{argument}'")]
    ExtraArgument {
        command: &'static str,
        argument: String,
    },
    #[error("kubeadm join needs the API server endpoint (HOST:PORT) or --discovery-file")]
    NoDiscovery,
    #[error(
        "kubeadm join needs --discovery-token-ca-cert-hash (or, unsafely, --discovery-token-unsafe-skip-ca-verification) with token discovery"
    )]
    NoCaHash,
    #[error(
        "kubeadm join needs --token or --discovery-token (and a TLS bootstrap token) with token discovery"
    )]
    NoToken,
    #[error("--discovery-file and the API server endpoint exclude each other")]
    FileAndEndpoint,
    #[error("flag --{flag} needs --control-plane")]
    NeedsControlPlane { flag: &'static str },
}

/// One occurrence of a flag on the command line, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub spec: &'static FlagSpec,
    /// `None` for a bool given without `=value`.
    pub value: Option<String>,
}

/// What the wrapper was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// No subcommand (or only `-h`): the wrapper's usage. Never the deployment path.
    Usage {
        help: bool,
    },
    /// `init` or `join` with `-h`: the wrapper's usage of that subcommand.
    SubcommandHelp {
        command: &'static str,
    },
    Init(Box<InitFlags>),
    Join(Box<JoinFlags>),
    /// Any other subcommand: its arguments, exactly as given, for the native kubeadm.
    Native {
        args: Vec<String>,
    },
}

/// What init and join share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonFlags {
    pub verbosity: Option<u8>,
    pub skip_headers: bool,
    pub dry_run: bool,
    pub reset: bool,
    pub prepare_only: bool,
    pub advertise_address: Option<Ipv4Addr>,
    pub bind_port: Option<u16>,
    pub certificate_key: Option<String>,
    pub node_name: Option<String>,
    pub patches: Option<String>,
    pub skip_phases: Vec<String>,
    pub ignore_preflight_errors: Vec<String>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitFlags {
    pub common: CommonFlags,
    pub cert_extra_sans: Vec<String>,
    pub control_plane_endpoint: Option<String>,
    pub feature_gates: Vec<(String, bool)>,
    pub image_repository: Option<String>,
    pub kubernetes_version: Option<VersionRequest>,
    pub pod_network_cidr: Option<Ipv4Net>,
    pub service_cidr: Option<Ipv4Net>,
    pub service_dns_domain: Option<String>,
    pub skip_certificate_key_print: bool,
    pub skip_token_print: bool,
    pub token_ttl: Option<String>,
    pub upload_certs: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinFlags {
    pub common: CommonFlags,
    /// `HOST:PORT` of the API server (the positional argument).
    pub endpoint: Option<String>,
    pub control_plane: bool,
    pub discovery_file: Option<String>,
    pub discovery_token: Option<String>,
    pub ca_cert_hashes: Vec<String>,
    pub unsafe_skip_ca_verification: bool,
    pub tls_bootstrap_token: Option<String>,
}

impl CommonFlags {
    /// The flags for the native kubeadm, in a fixed order, each value one argument.
    pub fn native_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(v) = self.verbosity {
            args.push(format!("--v={v}"));
        }
        if self.skip_headers {
            args.push("--skip-headers".into());
        }
        if !self.ignore_preflight_errors.is_empty() {
            args.push(format!(
                "--ignore-preflight-errors={}",
                self.ignore_preflight_errors.join(",")
            ));
        }
        args
    }
}

impl InitFlags {
    /// `--upload-certs` is always given for init, as upstream did, so the printed control-plane
    /// join line works; the flag is accepted and changes nothing.
    pub fn native_args(&self) -> Vec<String> {
        let mut args = self.common.native_args();
        args.push("--upload-certs".into());
        if self.skip_certificate_key_print {
            args.push("--skip-certificate-key-print".into());
        }
        if self.skip_token_print {
            args.push("--skip-token-print".into());
        }
        args
    }
}

/// Where the subcommand is: skips the global flags (with their values) in front of it.
fn split_global(args: &[String]) -> Result<(Vec<Occurrence>, Option<usize>), FlagError> {
    let mut globals = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            return Ok((globals, (i + 1 < args.len()).then_some(i + 1)));
        }
        if !arg.starts_with('-') || arg == "-" {
            return Ok((globals, Some(i)));
        }
        let (occurrence, used) = read_flag(args, i, "", |spec| spec.scope == Scope::Global)?;
        globals.push(occurrence);
        i += used;
    }
    Ok((globals, None))
}

/// Reads the flag at `args[i]`; returns it and how many arguments it used (1 or 2).
fn read_flag(
    args: &[String],
    i: usize,
    command: &'static str,
    allowed: impl Fn(&FlagSpec) -> bool,
) -> Result<(Occurrence, usize), FlagError> {
    let arg = &args[i];
    let unknown = || FlagError::Unknown {
        command: if command.is_empty() {
            "(global)"
        } else {
            command
        },
        flag: arg.split('=').next().unwrap_or(arg).to_string(),
    };
    let (spec, inline): (&'static FlagSpec, Option<String>) =
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            (spec(name).ok_or_else(unknown)?, inline)
        } else {
            // -h, -v 5, -v5, -v=5
            let body = &arg[1..];
            let mut chars = body.chars();
            let letter = chars.next().ok_or_else(unknown)?;
            let rest: String = chars.collect();
            let spec = FLAGS
                .iter()
                .find(|f| f.short == Some(letter))
                .ok_or_else(unknown)?;
            let inline = if rest.is_empty() {
                None
            } else {
                Some(rest.strip_prefix('=').unwrap_or(&rest).to_string())
            };
            (spec, inline)
        };
    if !allowed(spec) {
        return Err(match (spec.scope, command) {
            (Scope::Init, c) if !c.is_empty() => FlagError::WrongCommand {
                command: c,
                flag: spec.name,
                belongs: "init",
            },
            (Scope::Join, c) if !c.is_empty() => FlagError::WrongCommand {
                command: c,
                flag: spec.name,
                belongs: "join",
            },
            _ => unknown(),
        });
    }
    match spec.kind {
        Kind::Bool => Ok((
            Occurrence {
                spec,
                value: inline,
            },
            1,
        )),
        Kind::Value | Kind::List => match inline {
            Some(v) => Ok((
                Occurrence {
                    spec,
                    value: Some(v),
                },
                1,
            )),
            None => {
                let value = args
                    .get(i + 1)
                    .ok_or(FlagError::MissingValue { flag: spec.name })?;
                Ok((
                    Occurrence {
                        spec,
                        value: Some(value.clone()),
                    },
                    2,
                ))
            }
        },
    }
}

/// Parses the wrapper's command line (without the program name).
pub fn parse(args: &[String]) -> Result<Invocation, FlagError> {
    let (globals, position) = split_global(args)?;
    let Some(position) = position else {
        let help = globals.iter().any(|o| o.spec.name == "help");
        // Global flags alone still get checked, so a rejected one is reported.
        for occurrence in &globals {
            check_disposition(occurrence)?;
        }
        return Ok(Invocation::Usage { help });
    };
    let command = args[position].as_str();
    let rest = &args[position + 1..];
    let command: &'static str = match command {
        "init" => "init",
        "join" => "join",
        _ => {
            return Ok(Invocation::Native {
                args: args.to_vec(),
            });
        }
    };
    // `init phase ...` / `join phase ...` are kubeadm's own step-by-step commands: native.
    if first_positional(rest) == Some("phase") {
        return Ok(Invocation::Native {
            args: args.to_vec(),
        });
    }
    let mut occurrences = globals;
    let mut positionals = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        if arg == "--" {
            positionals.extend(rest[i + 1..].iter().cloned());
            break;
        }
        if arg.starts_with('-') && arg != "-" {
            let (occurrence, used) = read_flag(rest, i, command, |spec| {
                spec.scope == Scope::Global
                    || spec.scope == Scope::Both
                    || (spec.scope == Scope::Init && command == "init")
                    || (spec.scope == Scope::Join && command == "join")
            })?;
            occurrences.push(occurrence);
            i += used;
        } else {
            positionals.push(arg.clone());
            i += 1;
        }
    }
    if occurrences.iter().any(|o| o.spec.name == "help") {
        return Ok(Invocation::SubcommandHelp { command });
    }
    for occurrence in &occurrences {
        check_disposition(occurrence)?;
    }
    let mut seen: Vec<&'static str> = Vec::new();
    for occurrence in &occurrences {
        if occurrence.spec.kind != Kind::List {
            if seen.contains(&occurrence.spec.name) {
                return Err(FlagError::Twice {
                    flag: occurrence.spec.name,
                });
            }
            seen.push(occurrence.spec.name);
        }
    }
    let common = common_flags(&occurrences)?;
    if command == "init" {
        if let Some(extra) = positionals.first() {
            return Err(FlagError::ExtraArgument {
                command,
                argument: extra.clone(),
            });
        }
        Ok(Invocation::Init(Box::new(init_flags(
            common,
            &occurrences,
        )?)))
    } else {
        if let Some(extra) = positionals.get(1) {
            return Err(FlagError::ExtraArgument {
                command,
                argument: extra.clone(),
            });
        }
        let endpoint = positionals.first().cloned();
        Ok(Invocation::Join(Box::new(join_flags(
            common,
            endpoint,
            &occurrences,
        )?)))
    }
}

fn first_positional(args: &[String]) -> Option<&str> {
    // Only a leading word counts: `init phase`, not `init --node-name phase`.
    args.first()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
}

fn check_disposition(occurrence: &Occurrence) -> Result<(), FlagError> {
    if let Disposition::Rejected(reason) = occurrence.spec.disposition {
        return Err(FlagError::Rejected {
            flag: occurrence.spec.name,
            reason,
        });
    }
    Ok(())
}

fn invalid(flag: &'static str, value: &str, reason: impl fmt::Display) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn bool_value(occurrence: &Occurrence) -> Result<bool, FlagError> {
    match occurrence.value.as_deref() {
        None | Some("true") | Some("True") | Some("1") => Ok(true),
        Some("false") | Some("False") | Some("0") => Ok(false),
        Some(other) => Err(FlagError::BoolValue {
            flag: occurrence.spec.name,
            value: other.to_string(),
        }),
    }
}

fn value<'a>(occurrences: &'a [Occurrence], name: &str) -> Option<&'a str> {
    occurrences
        .iter()
        .find(|o| o.spec.name == name)
        .and_then(|o| o.value.as_deref())
}

fn boolean(occurrences: &[Occurrence], name: &str) -> Result<bool, FlagError> {
    match occurrences.iter().find(|o| o.spec.name == name) {
        Some(o) => bool_value(o),
        None => Ok(false),
    }
}

fn list(occurrences: &[Occurrence], name: &'static str) -> Result<Vec<String>, FlagError> {
    let mut items = Vec::new();
    for o in occurrences.iter().filter(|o| o.spec.name == name) {
        let text = o.value.as_deref().unwrap_or_default();
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(invalid(name, text, msg!("empty list element")));
            }
            if !items.iter().any(|i: &String| i == item) {
                items.push(item.to_string());
            }
        }
    }
    Ok(items)
}

fn common_flags(occurrences: &[Occurrence]) -> Result<CommonFlags, FlagError> {
    let mut common = CommonFlags {
        dry_run: boolean(occurrences, "dry-run")?,
        reset: boolean(occurrences, "reset")?,
        prepare_only: boolean(occurrences, "prepare-only")?,
        skip_headers: boolean(occurrences, "skip-headers")?,
        ignore_preflight_errors: list(occurrences, "ignore-preflight-errors")?,
        skip_phases: list(occurrences, "skip-phases")?,
        ..CommonFlags::default()
    };
    for item in &common.ignore_preflight_errors {
        if !item.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(
                "ignore-preflight-errors",
                item,
                msg!("not a preflight check name"),
            ));
        }
    }
    for item in &common.skip_phases {
        if !item
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '/')
        {
            return Err(invalid(
                "skip-phases",
                item,
                msg!("not a kubeadm phase name"),
            ));
        }
    }
    if let Some(v) = value(occurrences, "v") {
        let level: u8 = v
            .parse()
            .ok()
            .filter(|l| *l <= 10)
            .ok_or_else(|| invalid("v", v, msg!("a log level from 0 to 10")))?;
        common.verbosity = Some(level);
    }
    if let Some(v) = value(occurrences, "apiserver-advertise-address") {
        common.advertise_address = Some(ipv4("apiserver-advertise-address", v)?);
    }
    if let Some(v) = value(occurrences, "apiserver-bind-port") {
        common.bind_port = Some(port("apiserver-bind-port", v)?);
    }
    if let Some(v) = value(occurrences, "certificate-key") {
        if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                "certificate-key",
                tr!("(hidden)"),
                msg!("a hex-encoded 32-byte key (64 hex digits)"),
            ));
        }
        common.certificate_key = Some(v.to_ascii_lowercase());
    }
    if let Some(v) = value(occurrences, "node-name") {
        if !is_dns_subdomain(v) {
            return Err(invalid(
                "node-name",
                v,
                msg!("a lower-case DNS subdomain name (RFC 1123)"),
            ));
        }
        common.node_name = Some(v.to_string());
    }
    if let Some(v) = value(occurrences, "patches") {
        if !v.starts_with('/') || v.contains('\n') {
            return Err(invalid("patches", v, msg!("an absolute directory path")));
        }
        common.patches = Some(v.to_string());
    }
    if let Some(v) = value(occurrences, "token") {
        common.token = Some(bootstrap_token("token", v)?);
    }
    if let Some(v) = value(occurrences, "cri-socket")
        && v != CRI_SOCKET
        && v != "/run/crio/crio.sock"
    {
        return Err(invalid(
            "cri-socket",
            v,
            msg!("a rootless node runs its own CRI-O at {CRI_SOCKET}"),
        ));
    }
    Ok(common)
}

fn init_flags(common: CommonFlags, occurrences: &[Occurrence]) -> Result<InitFlags, FlagError> {
    let mut flags = InitFlags {
        common,
        skip_certificate_key_print: boolean(occurrences, "skip-certificate-key-print")?,
        skip_token_print: boolean(occurrences, "skip-token-print")?,
        upload_certs: boolean(occurrences, "upload-certs")?,
        cert_extra_sans: list(occurrences, "apiserver-cert-extra-sans")?,
        ..InitFlags::default()
    };
    for san in &flags.cert_extra_sans {
        if san.parse::<IpAddr>().is_err() && !is_dns_subdomain(san) && !is_wildcard_dns(san) {
            return Err(invalid(
                "apiserver-cert-extra-sans",
                san,
                msg!("an IP address or DNS name"),
            ));
        }
    }
    if let Some(v) = value(occurrences, "cert-dir")
        && v.trim_end_matches('/') != CERT_DIR
    {
        return Err(invalid(
            "cert-dir",
            v,
            msg!("the rootless node keeps its certificates in {CERT_DIR}"),
        ));
    }
    if let Some(v) = value(occurrences, "control-plane-endpoint") {
        check_endpoint("control-plane-endpoint", v, false)?;
        flags.control_plane_endpoint = Some(v.to_string());
    }
    if let Some(v) = value(occurrences, "feature-gates") {
        flags.feature_gates = feature_gates(v)?;
    }
    if let Some(v) = value(occurrences, "image-repository") {
        check_repository("image-repository", v)?;
        flags.image_repository = Some(v.trim_end_matches('/').to_string());
    }
    if let Some(v) = value(occurrences, "kubernetes-version") {
        let request = VersionRequest::parse(v)
            .and_then(|r| r.minor_line().check_supported().map(|_| r))
            .map_err(|e: VersionError| invalid("kubernetes-version", v, e))?;
        flags.kubernetes_version = Some(request);
    }
    if let Some(v) = value(occurrences, "pod-network-cidr") {
        flags.pod_network_cidr = Some(cidr("pod-network-cidr", v)?);
    }
    if let Some(v) = value(occurrences, "service-cidr") {
        flags.service_cidr = Some(cidr("service-cidr", v)?);
    }
    if let Some(v) = value(occurrences, "service-dns-domain") {
        if !is_dns_subdomain(v) {
            return Err(invalid("service-dns-domain", v, msg!("a DNS domain name")));
        }
        flags.service_dns_domain = Some(v.to_string());
    }
    if let Some(v) = value(occurrences, "token-ttl") {
        if !is_go_duration(v) {
            return Err(invalid(
                "token-ttl",
                v,
                msg!("a duration such as 2h, 30m or 1h30m (0 = never expires)"),
            ));
        }
        flags.token_ttl = Some(v.to_string());
    }
    Ok(flags)
}

fn join_flags(
    common: CommonFlags,
    endpoint: Option<String>,
    occurrences: &[Occurrence],
) -> Result<JoinFlags, FlagError> {
    let mut flags = JoinFlags {
        common,
        control_plane: boolean(occurrences, "control-plane")?,
        unsafe_skip_ca_verification: boolean(
            occurrences,
            "discovery-token-unsafe-skip-ca-verification",
        )?,
        ca_cert_hashes: list(occurrences, "discovery-token-ca-cert-hash")?,
        ..JoinFlags::default()
    };
    if let Some(endpoint) = &endpoint {
        check_endpoint("(API server endpoint)", endpoint, true).map_err(|_| {
            FlagError::Invalid {
                flag: "(API server endpoint)",
                value: endpoint.clone(),
                reason: msg!("expected HOST:PORT, e.g. 192.0.2.10:6443"),
            }
        })?;
    }
    flags.endpoint = endpoint;
    for hash in &flags.ca_cert_hashes {
        let ok = hash
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(invalid(
                "discovery-token-ca-cert-hash",
                hash,
                msg!("sha256:<64 hex digits>"),
            ));
        }
    }
    if let Some(v) = value(occurrences, "discovery-file") {
        let ok = v.starts_with('/') || v.starts_with("https://");
        if !ok || v.contains('\n') {
            return Err(invalid(
                "discovery-file",
                v,
                msg!("an absolute path or an https:// URL"),
            ));
        }
        flags.discovery_file = Some(v.to_string());
    }
    if let Some(v) = value(occurrences, "discovery-token") {
        flags.discovery_token = Some(bootstrap_token("discovery-token", v)?);
    }
    if let Some(v) = value(occurrences, "tls-bootstrap-token") {
        flags.tls_bootstrap_token = Some(bootstrap_token("tls-bootstrap-token", v)?);
    }
    if flags.common.certificate_key.is_some() && !flags.control_plane {
        return Err(FlagError::NeedsControlPlane {
            flag: "certificate-key",
        });
    }
    match (&flags.endpoint, &flags.discovery_file) {
        (None, None) => return Err(FlagError::NoDiscovery),
        (Some(_), Some(_)) => return Err(FlagError::FileAndEndpoint),
        (Some(_), None) => {
            if flags.discovery_token.is_none() && flags.common.token.is_none() {
                return Err(FlagError::NoToken);
            }
            if flags.ca_cert_hashes.is_empty() && !flags.unsafe_skip_ca_verification {
                return Err(FlagError::NoCaHash);
            }
        }
        (None, Some(_)) => {}
    }
    if flags.tls_bootstrap_token.is_none()
        && flags.common.token.is_none()
        && flags.discovery_file.is_none()
    {
        return Err(FlagError::NoToken);
    }
    Ok(flags)
}

fn ipv4(flag: &'static str, v: &str) -> Result<Ipv4Addr, FlagError> {
    match v.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) if !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast() => Ok(a),
        Ok(IpAddr::V4(_)) => Err(invalid(flag, v, msg!("not a usable unicast address"))),
        Ok(IpAddr::V6(_)) => Err(invalid(
            flag,
            v,
            msg!("IPv6 is not supported by the rootless node network (slirp4netns with IPv4)"),
        )),
        Err(_) => Err(invalid(flag, v, msg!("an IPv4 address"))),
    }
}

fn port(flag: &'static str, v: &str) -> Result<u16, FlagError> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(flag, v, msg!("a port number from 1 to 65535")))
}

fn cidr(flag: &'static str, v: &str) -> Result<Ipv4Net, FlagError> {
    Ipv4Net::parse_cluster(v).map_err(|e: NetworkError| invalid(flag, v, e))
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`, kubeadm's bootstrap token format.
fn bootstrap_token(flag: &'static str, v: &str) -> Result<String, FlagError> {
    let ok = v.split_once('.').is_some_and(|(id, secret)| {
        let class = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        id.len() == 6 && secret.len() == 16 && class(id) && class(secret)
    });
    if ok {
        Ok(v.to_string())
    } else {
        Err(invalid(
            flag,
            tr!("(hidden)"),
            // Not msg!: the braces are text (the catalogue has it as printed).
            "a bootstrap token [a-z0-9]{6}.[a-z0-9]{16}",
        ))
    }
}

/// HOST:PORT (or HOST alone when `port_required` is false), HOST an IPv4 address or DNS name.
fn check_endpoint(flag: &'static str, v: &str, port_required: bool) -> Result<(), FlagError> {
    let (host, port_text) = match v.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (v, None),
    };
    let host_ok = host.parse::<Ipv4Addr>().is_ok() || is_dns_subdomain(host);
    let port_ok = match port_text {
        Some(p) => port(flag, p).is_ok(),
        None => !port_required,
    };
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(invalid(
            flag,
            v,
            msg!("HOST[:PORT] with an IPv4 address or DNS name"),
        ))
    }
}

fn check_repository(flag: &'static str, v: &str) -> Result<(), FlagError> {
    let v = v.trim_end_matches('/');
    let mut parts = v.split('/');
    let host = parts.next().unwrap_or_default();
    let host_ok = {
        let (name, port_text) = match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        (name.parse::<Ipv4Addr>().is_ok() || is_dns_subdomain(name) || name == "localhost")
            && port_text.is_none_or(|p| port(flag, p).is_ok())
    };
    let path_ok = parts.all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    });
    if host_ok && path_ok {
        Ok(())
    } else {
        Err(invalid(
            flag,
            v,
            msg!("REGISTRY[/PATH], e.g. registry.local/c10f"),
        ))
    }
}

fn feature_gates(v: &str) -> Result<Vec<(String, bool)>, FlagError> {
    let mut gates: Vec<(String, bool)> = Vec::new();
    for item in v.split(',') {
        let (name, state) = item
            .split_once('=')
            .ok_or_else(|| invalid("feature-gates", v, msg!("NAME=true|false[,...]")))?;
        let state = match state.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(invalid("feature-gates", v, msg!("NAME=true|false[,...]"))),
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid(
                "feature-gates",
                v,
                msg!("feature gate names are alphanumeric"),
            ));
        }
        gates.retain(|(n, _)| n != name);
        gates.push((name.to_string(), state));
    }
    Ok(gates)
}

/// RFC 1123 subdomain: lower-case labels of letters, digits and '-', dot-separated.
pub fn is_dns_subdomain(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn is_wildcard_dns(v: &str) -> bool {
    v.strip_prefix("*.").is_some_and(is_dns_subdomain)
}

/// Go's time.ParseDuration syntax for whole units: `0`, `24h`, `1h30m`, `90s`, `1.5h`.
fn is_go_duration(v: &str) -> bool {
    if v == "0" {
        return true;
    }
    let mut rest = v;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 || rest[..digits].matches('.').count() > 1 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "h", "m", "s"]
            .iter()
            .find(|u| rest.starts_with(*u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// The wrapper's usage of `init` or `join`: every flag with its disposition.
pub fn subcommand_usage(command: &str) -> String {
    let mut text = tr!(
        "Usage: kubeadm [-v N] {command} {endpoint}[flags]\n\n\
         podsec-u7s-kubeadm deploys a rootless node: every flag of kubeadm {command} is either\n\
         honoured (put into the generated configuration), passed to the native kubeadm, or refused.\n\n",
        command = command,
        endpoint = if command == "join" { "HOST:PORT " } else { "" }
    );
    for (title, wanted) in [
        (tr!("Honoured:"), 0u8),
        (tr!("Passed to the native kubeadm:"), 1),
        (tr!("Refused:"), 2),
    ] {
        text.push_str(title);
        text.push('\n');
        for f in FLAGS.iter().filter(|f| {
            f.scope == Scope::Global
                || f.scope == Scope::Both
                || (f.scope == Scope::Init && command == "init")
                || (f.scope == Scope::Join && command == "join")
        }) {
            // The notes are translated where printed (FLAGS is a constant table).
            let (class, note) = match f.disposition {
                Disposition::Honoured(note) => (0, podsec_common::i18n::gettext(note)),
                Disposition::Native => (1, ""),
                Disposition::Rejected(reason) => (2, podsec_common::i18n::gettext(reason)),
            };
            if class != wanted {
                continue;
            }
            let name = match (f.short, f.kind) {
                (Some(s), Kind::Bool) => format!("-{s}, --{}", f.name),
                (Some(s), _) => format!("-{s}, --{} VALUE", f.name),
                (None, Kind::Bool) => format!("--{}", f.name),
                (None, Kind::Value) => format!("--{} VALUE", f.name),
                (None, Kind::List) => format!("--{} A,B", f.name),
            };
            if note.is_empty() {
                text.push_str(&format!("  {name}\n"));
            } else {
                text.push_str(&format!("  {name:<48} {note}\n"));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    //! The disposition of every flag of the table (spec §3.5/§3.12: upstream's u7s_flags list,
    //! with the klog flags) is checked through the parser by one table-driven test against a
    //! list written independently of FLAGS: honoured (the typed value the configuration is built
    //! from), passed to the native kubeadm (its argument), or refused (the error naming it),
    //! under each subcommand it belongs to and refused by the other. The `flag_*` tests check
    //! the values a flag accepts and refuses; upstream's upgrade and reset flags go verbatim to
    //! their own subcommands. The configuration side of the honoured flags is tested in
    //! kubeadm_config and plan.
    use super::*;

    const HASH: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "abcdef.0123456789abcdef";
    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn init(extra: &[&str]) -> Result<InitFlags, FlagError> {
        let mut a = vec!["init"];
        a.extend(extra);
        match parse(&args(&a))? {
            Invocation::Init(f) => Ok(*f),
            other => panic!("not init: {other:?}"),
        }
    }

    fn join(extra: &[&str]) -> Result<JoinFlags, FlagError> {
        let mut a = vec!["join", "192.0.2.10:6443", "--token", TOKEN];
        if !extra.contains(&"--discovery-token-unsafe-skip-ca-verification") {
            a.extend(["--discovery-token-ca-cert-hash", HASH]);
        }
        a.extend(extra);
        match parse(&args(&a))? {
            Invocation::Join(f) => Ok(*f),
            other => panic!("not join: {other:?}"),
        }
    }

    fn rejected(result: Result<impl fmt::Debug, FlagError>, flag: &str) -> String {
        let err = result.expect_err("must be rejected");
        let text = err.to_string();
        assert!(text.contains(&format!("--{flag}")), "{text}");
        text
    }

    fn native(argv: &[&str]) {
        assert_eq!(
            parse(&args(argv)).unwrap(),
            Invocation::Native { args: args(argv) },
            "{argv:?}"
        );
    }

    /// FLAGS is a constant table, so its texts are not marked for the catalogue: each one that
    /// is prose (a note of `kubeadm init --help`, a reason for a refusal) must be in it.
    #[test]
    fn every_disposition_text_has_a_russian_translation() {
        for f in FLAGS {
            let text = match f.disposition {
                Disposition::Honoured(text) | Disposition::Rejected(text) => text,
                Disposition::Native => continue,
            };
            if text.contains(' ') {
                assert!(
                    crate::TRANSLATIONS.get(text).is_some(),
                    "--{}: {text:?} is not in po/ru.po",
                    f.name
                );
            }
        }
    }

    // --- global flags
    #[test]
    fn flag_help() {
        assert_eq!(
            parse(&args(&["-h"])).unwrap(),
            Invocation::Usage { help: true }
        );
        assert_eq!(
            parse(&args(&["init", "--help"])).unwrap(),
            Invocation::SubcommandHelp { command: "init" }
        );
        assert_eq!(
            parse(&args(&["join", "-h"])).unwrap(),
            Invocation::SubcommandHelp { command: "join" }
        );
        // help of other subcommands is kubeadm's own
        native(&["token", "create", "-h"]);
    }

    #[test]
    fn flag_v() {
        for form in [&["-v", "5"][..], &["-v5"], &["--v=5"], &["--v", "5"]] {
            let mut a = form.to_vec();
            a.push("init");
            let Invocation::Init(f) = parse(&args(&a)).unwrap() else {
                panic!()
            };
            assert_eq!(f.common.verbosity, Some(5));
            assert!(f.native_args().contains(&"--v=5".to_string()));
        }
        assert_eq!(init(&["-v", "3"]).unwrap().common.verbosity, Some(3));
        assert!(init(&["-v", "x"]).is_err());
        native(&["-v", "5", "token", "list"]);
    }

    // --- init and join
    #[test]
    fn flag_apiserver_advertise_address() {
        let f = init(&["--apiserver-advertise-address", "192.0.2.20"]).unwrap();
        assert_eq!(
            f.common.advertise_address,
            Some(Ipv4Addr::new(192, 0, 2, 20))
        );
        let f = join(&[
            "--apiserver-advertise-address=192.0.2.21",
            "--control-plane",
        ])
        .unwrap();
        assert_eq!(
            f.common.advertise_address,
            Some(Ipv4Addr::new(192, 0, 2, 21))
        );
        rejected(
            init(&["--apiserver-advertise-address", "fd00::1"]),
            "apiserver-advertise-address",
        );
        rejected(
            init(&["--apiserver-advertise-address", "0.0.0.0"]),
            "apiserver-advertise-address",
        );
    }

    #[test]
    fn flag_apiserver_bind_port() {
        assert_eq!(
            init(&["--apiserver-bind-port", "7443"])
                .unwrap()
                .common
                .bind_port,
            Some(7443)
        );
        assert_eq!(
            join(&["--apiserver-bind-port=8443"])
                .unwrap()
                .common
                .bind_port,
            Some(8443)
        );
        rejected(init(&["--apiserver-bind-port", "0"]), "apiserver-bind-port");
        rejected(
            init(&["--apiserver-bind-port", "65536"]),
            "apiserver-bind-port",
        );
    }

    #[test]
    fn flag_certificate_key() {
        assert_eq!(
            init(&["--certificate-key", KEY])
                .unwrap()
                .common
                .certificate_key
                .as_deref(),
            Some(KEY)
        );
        assert!(join(&["--control-plane", "--certificate-key", KEY]).is_ok());
        // A worker has no use for it: an error, not a silent drop.
        assert_eq!(
            join(&["--certificate-key", KEY]).unwrap_err(),
            FlagError::NeedsControlPlane {
                flag: "certificate-key"
            }
        );
        let text = rejected(init(&["--certificate-key", "abc"]), "certificate-key");
        assert!(
            !text.contains("abc"),
            "secrets stay out of messages: {text}"
        );
    }

    #[test]
    fn flag_dry_run() {
        assert!(init(&["--dry-run"]).unwrap().common.dry_run);
        assert!(join(&["--dry-run"]).unwrap().common.dry_run);
        assert!(!init(&["--dry-run=false"]).unwrap().common.dry_run);
        // never given to the native kubeadm: podsec does not run it in a dry run
        assert!(
            !init(&["--dry-run"])
                .unwrap()
                .native_args()
                .iter()
                .any(|a| a.contains("dry-run"))
        );
        assert!(matches!(
            init(&["--dry-run=maybe"]),
            Err(FlagError::BoolValue { .. })
        ));
    }

    #[test]
    fn flag_ignore_preflight_errors() {
        let f = init(&[
            "--ignore-preflight-errors",
            "Swap,NumCPU",
            "--ignore-preflight-errors=Mem",
        ])
        .unwrap();
        assert_eq!(f.common.ignore_preflight_errors, ["Swap", "NumCPU", "Mem"]);
        assert!(
            f.native_args()
                .contains(&"--ignore-preflight-errors=Swap,NumCPU,Mem".to_string())
        );
        rejected(
            init(&["--ignore-preflight-errors", "a;b"]),
            "ignore-preflight-errors",
        );
    }

    #[test]
    fn flag_node_name() {
        assert_eq!(
            init(&["--node-name", "node-1"])
                .unwrap()
                .common
                .node_name
                .as_deref(),
            Some("node-1")
        );
        assert_eq!(
            join(&["--node-name=w1.example"])
                .unwrap()
                .common
                .node_name
                .as_deref(),
            Some("w1.example")
        );
        rejected(init(&["--node-name", "Node 1"]), "node-name");
    }

    #[test]
    fn flag_patches() {
        assert_eq!(
            init(&["--patches", "/etc/kubeadm-patches"])
                .unwrap()
                .common
                .patches
                .as_deref(),
            Some("/etc/kubeadm-patches")
        );
        rejected(init(&["--patches", "patches"]), "patches");
    }

    #[test]
    fn flag_skip_phases() {
        let f = init(&["--skip-phases", "addon/kube-proxy,preflight"]).unwrap();
        assert_eq!(f.common.skip_phases, ["addon/kube-proxy", "preflight"]);
        assert_eq!(
            join(&["--skip-phases=preflight"])
                .unwrap()
                .common
                .skip_phases,
            ["preflight"]
        );
        rejected(init(&["--skip-phases", "x y"]), "skip-phases");
    }

    #[test]
    fn flag_token() {
        assert_eq!(
            init(&["--token", TOKEN]).unwrap().common.token.as_deref(),
            Some(TOKEN)
        );
        assert_eq!(join(&[]).unwrap().common.token.as_deref(), Some(TOKEN));
        rejected(init(&["--token", "short.x"]), "token");
    }

    // --- init only
    #[test]
    fn flag_apiserver_cert_extra_sans() {
        let f = init(&[
            "--apiserver-cert-extra-sans",
            "10.0.0.5,api.example.org,*.example.org",
        ])
        .unwrap();
        assert_eq!(
            f.cert_extra_sans,
            ["10.0.0.5", "api.example.org", "*.example.org"]
        );
        rejected(
            init(&["--apiserver-cert-extra-sans", "bad name"]),
            "apiserver-cert-extra-sans",
        );
        assert_eq!(
            join(&["--apiserver-cert-extra-sans", "x"]).unwrap_err(),
            FlagError::WrongCommand {
                command: "join",
                flag: "apiserver-cert-extra-sans",
                belongs: "init"
            }
        );
    }

    #[test]
    fn flag_control_plane_endpoint() {
        assert_eq!(
            init(&["--control-plane-endpoint", "192.0.2.100:8443"])
                .unwrap()
                .control_plane_endpoint
                .as_deref(),
            Some("192.0.2.100:8443")
        );
        assert!(init(&["--control-plane-endpoint", "api.example.org"]).is_ok());
        rejected(
            init(&["--control-plane-endpoint", "a b:1"]),
            "control-plane-endpoint",
        );
    }

    #[test]
    fn flag_feature_gates() {
        let f = init(&[
            "--feature-gates",
            "PublicKeysECDSA=true,RootlessControlPlane=false",
        ])
        .unwrap();
        assert_eq!(
            f.feature_gates,
            [
                ("PublicKeysECDSA".to_string(), true),
                ("RootlessControlPlane".to_string(), false)
            ]
        );
        rejected(init(&["--feature-gates", "X=maybe"]), "feature-gates");
    }

    #[test]
    fn flag_image_repository() {
        assert_eq!(
            init(&["--image-repository", "registry.local/c10f/"])
                .unwrap()
                .image_repository
                .as_deref(),
            Some("registry.local/c10f")
        );
        rejected(
            init(&["--image-repository", "Registry Local"]),
            "image-repository",
        );
    }

    #[test]
    fn flag_kubernetes_version() {
        assert_eq!(
            init(&["--kubernetes-version", "v1.30.4"])
                .unwrap()
                .kubernetes_version,
            Some(VersionRequest::parse("v1.30.4").unwrap())
        );
        assert!(init(&["--kubernetes-version", "1.33"]).is_ok());
        rejected(
            init(&["--kubernetes-version", "stable-1"]),
            "kubernetes-version",
        );
        let text = rejected(
            init(&["--kubernetes-version", "v1.25.9"]),
            "kubernetes-version",
        );
        assert!(text.contains("not supported"), "{text}");
    }

    #[test]
    fn flag_pod_network_cidr() {
        assert_eq!(
            init(&["--pod-network-cidr", "10.200.0.0/16"])
                .unwrap()
                .pod_network_cidr
                .unwrap()
                .to_string(),
            "10.200.0.0/16"
        );
        rejected(
            init(&["--pod-network-cidr", "10.200.1.0/16"]),
            "pod-network-cidr",
        );
    }

    #[test]
    fn flag_service_cidr() {
        // Upstream read FLAG_pod_service_cidr and silently ignored this flag (§10.2 defect 11).
        assert_eq!(
            init(&["--service-cidr", "10.112.0.0/12"])
                .unwrap()
                .service_cidr
                .unwrap()
                .to_string(),
            "10.112.0.0/12"
        );
        rejected(init(&["--service-cidr", "10.112.0.0"]), "service-cidr");
    }

    #[test]
    fn flag_service_dns_domain() {
        assert_eq!(
            init(&["--service-dns-domain", "corp.internal"])
                .unwrap()
                .service_dns_domain
                .as_deref(),
            Some("corp.internal")
        );
        rejected(
            init(&["--service-dns-domain", "_bad"]),
            "service-dns-domain",
        );
    }

    #[test]
    fn flag_token_ttl() {
        assert_eq!(
            init(&["--token-ttl", "1h30m"])
                .unwrap()
                .token_ttl
                .as_deref(),
            Some("1h30m")
        );
        assert!(init(&["--token-ttl", "0"]).is_ok());
        rejected(init(&["--token-ttl", "1 day"]), "token-ttl");
    }

    // --- join only
    #[test]
    fn flag_control_plane() {
        assert!(join(&["--control-plane"]).unwrap().control_plane);
        assert!(!join(&[]).unwrap().control_plane);
        assert!(matches!(
            init(&["--control-plane"]),
            Err(FlagError::WrongCommand { .. })
        ));
    }

    #[test]
    fn flag_discovery_file() {
        let f = match parse(&args(&[
            "join",
            "--discovery-file",
            "/root/cluster-info.yaml",
        ]))
        .unwrap()
        {
            Invocation::Join(f) => f,
            other => panic!("{other:?}"),
        };
        assert_eq!(f.discovery_file.as_deref(), Some("/root/cluster-info.yaml"));
        assert_eq!(
            join(&["--discovery-file", "/x"]).unwrap_err(),
            FlagError::FileAndEndpoint
        );
        rejected(
            parse(&args(&["join", "--discovery-file", "relative.yaml"])),
            "discovery-file",
        );
    }

    #[test]
    fn flag_discovery_token() {
        // discovery and TLS bootstrap tokens instead of --token
        let f = match parse(&args(&base("join", "token"))).unwrap() {
            Invocation::Join(f) => f,
            other => panic!("{other:?}"),
        };
        assert_eq!(f.discovery_token.as_deref(), Some(TOKEN));
        assert_eq!(
            parse(&args(&[
                "join",
                "192.0.2.10:6443",
                "--discovery-token-ca-cert-hash",
                HASH
            ]))
            .unwrap_err(),
            FlagError::NoToken
        );
    }

    #[test]
    fn flag_discovery_token_ca_cert_hash() {
        assert_eq!(join(&[]).unwrap().ca_cert_hashes, [HASH]);
        assert_eq!(
            parse(&args(&["join", "192.0.2.10:6443", "--token", TOKEN])).unwrap_err(),
            FlagError::NoCaHash
        );
        rejected(
            join(&["--discovery-token-ca-cert-hash", "md5:00"]),
            "discovery-token-ca-cert-hash",
        );
    }

    // --- the disposition of every flag of the table, through the parser

    /// What a flag of FLAGS must do, written down independently of the table: the test fails
    /// when the table and this list disagree, and when the parser does not do what they say.
    enum Expect {
        /// Honoured: with the flag, `probe` reads `want` from the parsed flags; it reads `None`
        /// from flags parsed without it. Nothing of the flag reaches the native kubeadm.
        Lands(fn(&Invocation) -> Option<String>, &'static str),
        /// Honoured as a check: only the node's own value (the row's) is accepted, `bad` is
        /// refused as invalid. Nothing reaches the native kubeadm.
        Only { bad: &'static str },
        /// Passed to the native kubeadm as this argument, which is not there without the flag.
        Native(&'static str),
        /// Passed to the native kubeadm always, with the flag or without.
        NativeAlways(&'static str),
        /// Refused with the table's reason.
        Refused,
    }

    struct Row {
        /// The flag as given, with its value: `--name`, `--name VALUE` or `--name=VALUE`.
        args: &'static [&'static str],
        expect: Expect,
    }

    const TOKEN2: &str = "123456.abcdefabcdefabcd";

    fn common(i: &Invocation) -> Option<&CommonFlags> {
        match i {
            Invocation::Init(f) => Some(&f.common),
            Invocation::Join(f) => Some(&f.common),
            _ => None,
        }
    }

    fn init_of(i: &Invocation) -> Option<&InitFlags> {
        match i {
            Invocation::Init(f) => Some(f),
            _ => None,
        }
    }

    fn join_of(i: &Invocation) -> Option<&JoinFlags> {
        match i {
            Invocation::Join(f) => Some(f),
            _ => None,
        }
    }

    fn yes(b: bool) -> Option<String> {
        b.then(|| "true".to_string())
    }

    fn items(v: &[String]) -> Option<String> {
        (!v.is_empty()).then(|| v.join(","))
    }

    fn native_of(i: &Invocation) -> Vec<String> {
        match i {
            Invocation::Init(f) => f.native_args(),
            Invocation::Join(f) => f.common.native_args(),
            _ => Vec::new(),
        }
    }

    /// One row per flag of FLAGS.
    fn expected() -> Vec<Row> {
        use Expect::*;
        fn row(args: &'static [&'static str], expect: Expect) -> Row {
            Row { args, expect }
        }
        vec![
            // global
            row(
                &["--help"],
                Lands(
                    |i| yes(matches!(i, Invocation::SubcommandHelp { .. })),
                    "true",
                ),
            ),
            row(&["--v", "5"], Native("--v=5")),
            row(&["--skip-headers"], Native("--skip-headers")),
            row(&["--add-dir-header"], Refused),
            row(&["--rootfs", "/mnt"], Refused),
            row(&["--log-file", "/tmp/x"], Refused),
            row(&["--log-file-max-size=10"], Refused),
            row(&["--one-output"], Refused),
            row(&["--skip-log-headers"], Refused),
            // init and join
            row(
                &["--apiserver-advertise-address", "192.0.2.20"],
                Lands(
                    |i| common(i)?.advertise_address.map(|a| a.to_string()),
                    "192.0.2.20",
                ),
            ),
            row(
                &["--apiserver-bind-port=7443"],
                Lands(|i| common(i)?.bind_port.map(|p| p.to_string()), "7443"),
            ),
            row(
                &["--certificate-key", KEY],
                Lands(|i| common(i)?.certificate_key.clone(), KEY),
            ),
            row(&["--config", "/root/init.yaml"], Refused),
            row(
                &["--cri-socket", CRI_SOCKET],
                Only {
                    bad: "unix:///run/containerd/containerd.sock",
                },
            ),
            row(&["--dry-run"], Lands(|i| yes(common(i)?.dry_run), "true")),
            row(
                &["--ignore-preflight-errors", "Swap,NumCPU"],
                Native("--ignore-preflight-errors=Swap,NumCPU"),
            ),
            row(
                &["--node-name", "node-1"],
                Lands(|i| common(i)?.node_name.clone(), "node-1"),
            ),
            row(
                &["--patches", "/etc/kubeadm-patches"],
                Lands(|i| common(i)?.patches.clone(), "/etc/kubeadm-patches"),
            ),
            row(
                &["--skip-phases", "addon/kube-proxy,preflight"],
                Lands(
                    |i| items(&common(i)?.skip_phases),
                    "addon/kube-proxy,preflight",
                ),
            ),
            row(
                &["--token", TOKEN2],
                Lands(|i| common(i)?.token.clone(), TOKEN2),
            ),
            row(&["--reset"], Lands(|i| yes(common(i)?.reset), "true")),
            row(
                &["--prepare-only"],
                Lands(|i| yes(common(i)?.prepare_only), "true"),
            ),
            // init only
            row(
                &["--apiserver-cert-extra-sans", "10.0.0.5,api.example.org"],
                Lands(
                    |i| items(&init_of(i)?.cert_extra_sans),
                    "10.0.0.5,api.example.org",
                ),
            ),
            row(&["--cert-dir", CERT_DIR], Only { bad: "/srv/pki" }),
            row(
                &["--control-plane-endpoint", "192.0.2.100:8443"],
                Lands(
                    |i| init_of(i)?.control_plane_endpoint.clone(),
                    "192.0.2.100:8443",
                ),
            ),
            row(
                &["--feature-gates", "PublicKeysECDSA=true"],
                Lands(
                    |i| {
                        let gates = &init_of(i)?.feature_gates;
                        (!gates.is_empty()).then(|| format!("{gates:?}"))
                    },
                    r#"[("PublicKeysECDSA", true)]"#,
                ),
            ),
            row(
                &["--image-repository", "registry.local/c10f"],
                Lands(
                    |i| init_of(i)?.image_repository.clone(),
                    "registry.local/c10f",
                ),
            ),
            row(
                &["--kubernetes-version", "v1.30.4"],
                Lands(
                    |i| match init_of(i)?.kubernetes_version? {
                        VersionRequest::Exact(v) => Some(v.to_string()),
                        VersionRequest::Minor(m) => Some(m.to_string()),
                    },
                    "v1.30.4",
                ),
            ),
            row(
                &["--pod-network-cidr", "10.200.0.0/16"],
                Lands(
                    |i| init_of(i)?.pod_network_cidr.map(|n| n.to_string()),
                    "10.200.0.0/16",
                ),
            ),
            row(
                &["--service-cidr", "10.112.0.0/12"],
                Lands(
                    |i| init_of(i)?.service_cidr.map(|n| n.to_string()),
                    "10.112.0.0/12",
                ),
            ),
            row(
                &["--service-dns-domain", "corp.internal"],
                Lands(|i| init_of(i)?.service_dns_domain.clone(), "corp.internal"),
            ),
            row(
                &["--skip-certificate-key-print"],
                Native("--skip-certificate-key-print"),
            ),
            row(&["--skip-token-print"], Native("--skip-token-print")),
            row(
                &["--token-ttl", "1h30m"],
                Lands(|i| init_of(i)?.token_ttl.clone(), "1h30m"),
            ),
            // the control-plane join line needs it, so init always passes it
            row(&["--upload-certs"], NativeAlways("--upload-certs")),
            // join only
            row(
                &["--control-plane"],
                Lands(|i| yes(join_of(i)?.control_plane), "true"),
            ),
            row(
                &["--discovery-file", "/root/cluster-info.yaml"],
                Lands(
                    |i| join_of(i)?.discovery_file.clone(),
                    "/root/cluster-info.yaml",
                ),
            ),
            row(
                &["--discovery-token", TOKEN2],
                Lands(|i| join_of(i)?.discovery_token.clone(), TOKEN2),
            ),
            row(
                &["--discovery-token-ca-cert-hash", HASH],
                Lands(|i| items(&join_of(i)?.ca_cert_hashes), HASH),
            ),
            row(
                &["--discovery-token-unsafe-skip-ca-verification"],
                Lands(|i| yes(join_of(i)?.unsafe_skip_ca_verification), "true"),
            ),
            row(
                &["--tls-bootstrap-token", TOKEN2],
                Lands(|i| join_of(i)?.tls_bootstrap_token.clone(), TOKEN2),
            ),
        ]
    }

    /// The command line of a subcommand without the flag under test, complete where the flag
    /// does not need more (a join needs discovery, and a control plane for --certificate-key).
    fn base(command: &str, flag: &str) -> Vec<&'static str> {
        if command == "init" {
            return vec!["init"];
        }
        let mut argv = vec!["join"];
        if flag != "discovery-file" {
            argv.push("192.0.2.10:6443");
        }
        if flag == "token" {
            argv.extend(["--discovery-token", TOKEN, "--tls-bootstrap-token", TOKEN]);
        } else {
            argv.extend(["--token", TOKEN]);
        }
        if flag != "discovery-file" && flag != "discovery-token-ca-cert-hash" {
            argv.extend(["--discovery-token-ca-cert-hash", HASH]);
        }
        if flag == "certificate-key" {
            argv.push("--control-plane");
        }
        argv
    }

    fn class(d: Disposition) -> &'static str {
        match d {
            Disposition::Honoured(_) => "honoured",
            Disposition::Native => "native",
            Disposition::Rejected(_) => "refused",
        }
    }

    /// Checks one command line with the flag; returns what is wrong.
    fn check_row(spec: &FlagSpec, row: &Row, command: &str, argv: &[&str]) -> Vec<String> {
        let name = spec.name;
        let at = format!("--{name} ({})", argv.join(" "));
        let parsed = parse(&args(argv));
        let flag_arg =
            |a: &String| a == &format!("--{name}") || a.starts_with(&format!("--{name}="));
        let mut wrong = Vec::new();
        match (&row.expect, parsed) {
            (Expect::Refused, Err(e)) => {
                let reason = match spec.disposition {
                    Disposition::Rejected(reason) => reason,
                    _ => "(none: the table does not refuse it)",
                };
                if e != (FlagError::Rejected { flag: name, reason }) {
                    wrong.push(format!("{at}: refused with {e:?}, not the table's reason"));
                }
            }
            (Expect::Refused, Ok(_)) => wrong.push(format!("{at}: accepted, not refused")),
            (_, Err(e)) => wrong.push(format!("{at}: refused: {e}")),
            (Expect::Lands(probe, want), Ok(i)) => {
                if probe(&i).as_deref() != Some(*want) {
                    wrong.push(format!("{at}: parsed {:?}, not {want:?}", probe(&i)));
                }
                let without = if command == "init" {
                    Invocation::Init(Box::default())
                } else {
                    Invocation::Join(Box::default())
                };
                if let Some(v) = probe(&without) {
                    wrong.push(format!("{at}: the probe reads {v:?} from flags without it"));
                }
                if let Some(a) = native_of(&i).iter().find(|a| flag_arg(a)) {
                    wrong.push(format!("{at}: honoured, yet given to kubeadm as {a}"));
                }
            }
            (Expect::Only { bad }, Ok(i)) => {
                if let Some(a) = native_of(&i).iter().find(|a| flag_arg(a)) {
                    wrong.push(format!("{at}: honoured, yet given to kubeadm as {a}"));
                }
                let mut other = base(command, name);
                other.extend([argv_flag(row), *bad]);
                match parse(&args(&other)) {
                    Err(FlagError::Invalid { flag, .. }) if flag == name => {}
                    other => wrong.push(format!("{at}: {bad:?} gives {other:?}, not invalid")),
                }
            }
            (Expect::Native(arg), Ok(i)) => {
                if !native_of(&i).iter().any(|a| a == arg) {
                    wrong.push(format!(
                        "{at}: native arguments {:?} lack {arg}",
                        native_of(&i)
                    ));
                }
                match parse(&args(&base(command, name))) {
                    Ok(without) if native_of(&without).iter().any(|a| a == arg) => {
                        wrong.push(format!("{at}: {arg} is given to kubeadm without the flag"))
                    }
                    Ok(_) => {}
                    Err(e) => wrong.push(format!("{at}: without the flag: {e}")),
                }
            }
            (Expect::NativeAlways(arg), Ok(i)) => {
                let without = parse(&args(&base(command, name))).map(|w| native_of(&w));
                if !native_of(&i).iter().any(|a| a == arg)
                    || !without.as_ref().is_ok_and(|w| w.iter().any(|a| a == arg))
                {
                    wrong.push(format!(
                        "{at}: {arg} not always given: {:?}, without the flag {without:?}",
                        native_of(&i)
                    ));
                }
            }
        }
        wrong
    }

    /// `--name` of a row (its first argument, without `=VALUE`).
    fn argv_flag(row: &Row) -> &'static str {
        row.args[0].split('=').next().unwrap_or_default()
    }

    #[test]
    fn every_flag_of_the_table_has_its_disposition_through_the_parser() {
        let rows = expected();
        let mut wrong = Vec::new();
        // One row per flag of the table, in its order, and no row for a flag it lacks.
        let names: Vec<&str> = rows.iter().map(|r| &argv_flag(r)[2..]).collect();
        let table: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
        assert_eq!(names, table, "the rows of expected() follow FLAGS");
        // Without flags nothing is set: what a row reads comes from its flag.
        assert_eq!(
            parse(&args(&["init"])).unwrap(),
            Invocation::Init(Box::default())
        );
        assert_eq!(
            parse(&args(&base("join", ""))).unwrap(),
            Invocation::Join(Box::new(JoinFlags {
                common: CommonFlags {
                    token: Some(TOKEN.into()),
                    ..CommonFlags::default()
                },
                endpoint: Some("192.0.2.10:6443".into()),
                ca_cert_hashes: vec![HASH.into()],
                ..JoinFlags::default()
            }))
        );
        for (spec, row) in FLAGS.iter().zip(&rows) {
            let name = spec.name;
            let said = match row.expect {
                Expect::Lands(..) | Expect::Only { .. } => "honoured",
                Expect::Native(_) | Expect::NativeAlways(_) => "native",
                Expect::Refused => "refused",
            };
            if class(spec.disposition) != said {
                wrong.push(format!(
                    "--{name}: the table says {}, expected() says {said}",
                    class(spec.disposition)
                ));
            }
            // The short form, where there is one, does the same.
            let short = spec.short.map(|c| {
                let mut a: Vec<String> = args(row.args);
                a[0] = format!("-{c}");
                a
            });
            let forms: Vec<Vec<String>> = std::iter::once(args(row.args)).chain(short).collect();
            for command in ["init", "join"] {
                let allowed = match spec.scope {
                    Scope::Global | Scope::Both => true,
                    Scope::Init => command == "init",
                    Scope::Join => command == "join",
                };
                for form in &forms {
                    let form: Vec<&str> = form.iter().map(String::as_str).collect();
                    let mut after = base(command, name);
                    after.extend(&form);
                    if !allowed {
                        let belongs = if command == "init" { "join" } else { "init" };
                        let got = parse(&args(&after));
                        if got
                            != Err(FlagError::WrongCommand {
                                command,
                                flag: name,
                                belongs,
                            })
                        {
                            wrong.push(format!("--{name} ({}): {got:?}", after.join(" ")));
                        }
                        continue;
                    }
                    wrong.extend(check_row(spec, row, command, &after));
                    if spec.scope == Scope::Global {
                        // in front of the subcommand, as kubeadm's global flags may stand
                        let mut before = form.clone();
                        before.extend(base(command, name));
                        wrong.extend(check_row(spec, row, command, &before));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// The flags a child process of this test binary gets in its environment: upstream's
    /// wrapper read FLAG_<name> variables (§10.2 defect 9); a value for every flag of the table.
    fn flag_environment() -> Vec<(String, String)> {
        FLAGS
            .iter()
            .zip(expected())
            .map(|(spec, row)| {
                let value = row.args.get(1).copied().unwrap_or(match spec.kind {
                    Kind::Bool => "true",
                    _ => row.args[0].split_once('=').map_or("x", |(_, v)| v),
                });
                (
                    format!("FLAG_{}", spec.name.replace('-', "_")),
                    value.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_environment_never_feeds_flags() {
        // The table test runs again in a child process with a FLAG_ variable for every flag:
        // its checks that flags parsed without a flag have nothing set, and that every flag
        // lands exactly where it should, would fail if the parser read any of them.
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let test =
            format!("{module}::every_flag_of_the_table_has_its_disposition_through_the_parser");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--test-threads=1"])
            .envs(flag_environment())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("test result: ok. 1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn upstream_flags_of_other_subcommands_reach_them_verbatim() {
        // upstream's u7s_flags also listed flags of upgrade, reset, token and config: they
        // are no flags of init or join, and those subcommands get them exactly as given
        for (flag, subcommand) in [
            ("--allow-experimental-upgrades", &["upgrade", "plan"][..]),
            (
                "--allow-release-candidate-upgrades",
                &["upgrade", "apply", "v1.33.2"],
            ),
            ("--api-server-manifest=/x.yaml", &["upgrade", "diff"]),
            (
                "--certificate-renewal=false",
                &["upgrade", "apply", "v1.33.2"],
            ),
            ("--context-lines=5", &["upgrade", "diff"]),
            (
                "--controller-manager-manifest=/x.yaml",
                &["upgrade", "diff"],
            ),
            ("--etcd-upgrade=false", &["upgrade", "apply", "v1.33.2"]),
            ("--output=json", &["token", "list"]),
            ("--print-config", &["upgrade", "apply", "v1.33.2"]),
            ("--show-managed-fields", &["token", "list"]),
            ("--scheduler-manifest=/x.yaml", &["upgrade", "diff"]),
            ("--cleanup-tmp-dir", &["reset", "-f"]),
        ] {
            let name = flag.split('=').next().unwrap();
            assert_eq!(
                init(&[flag]).unwrap_err(),
                FlagError::Unknown {
                    command: "init",
                    flag: name.into()
                }
            );
            assert!(
                matches!(
                    join(&[flag]),
                    Err(FlagError::Unknown {
                        command: "join",
                        ..
                    })
                ),
                "{flag}"
            );
            let mut argv = subcommand.to_vec();
            argv.push(flag);
            native(&argv);
        }
        // upstream declared --output boolean and broke `-o json`: the value reaches kubeadm
        native(&["token", "list", "-o", "json"]);
    }

    // --- the parser itself
    #[test]
    fn no_subcommand_is_usage_never_deployment() {
        // Upstream fell through to the destructive init/join path (§10.2 defect 10).
        assert_eq!(parse(&[]).unwrap(), Invocation::Usage { help: false });
        assert_eq!(
            parse(&args(&["-v", "5"])).unwrap(),
            Invocation::Usage { help: false }
        );
        assert_eq!(
            parse(&args(&["--"])).unwrap(),
            Invocation::Usage { help: false }
        );
        rejected(parse(&args(&["--rootfs", "/"])), "rootfs");
    }

    #[test]
    fn values_keep_spaces_and_quotes_and_unknown_flags_are_errors() {
        // Upstream re-split getopt output on whitespace and kept its quotes (§10.2 defect 9).
        native(&[
            "token",
            "create",
            "--description",
            "for the 'new' nodes",
            "--ttl",
            "1h",
        ]);
        assert_eq!(
            init(&["--ttl", "1h"]).unwrap_err(),
            FlagError::Unknown {
                command: "init",
                flag: "--ttl".into()
            }
        );
        assert!(matches!(
            init(&["--node-name"]),
            Err(FlagError::MissingValue { flag: "node-name" })
        ));
        assert_eq!(
            init(&["--node-name", "a", "--node-name=b"]).unwrap_err(),
            FlagError::Twice { flag: "node-name" }
        );
        assert!(matches!(
            parse(&args(&["init", "extra"])),
            Err(FlagError::ExtraArgument { .. })
        ));
        assert!(matches!(
            parse(&args(&["join", "192.0.2.10:6443", "192.0.2.11:6443"])),
            Err(FlagError::ExtraArgument { .. })
        ));
    }

    #[test]
    fn phases_and_other_subcommands_are_native() {
        native(&["init", "phase", "upload-certs", "--upload-certs"]);
        native(&["join", "phase", "control-plane-prepare", "all"]);
        native(&["reset", "-f"]);
        native(&["version", "-o", "short"]);
    }

    #[test]
    fn usage_lists_each_flag_under_its_disposition() {
        let text = subcommand_usage("init");
        assert!(text.contains("--service-cidr VALUE"), "{text}");
        let refused = text.split("Refused:").nth(1).unwrap();
        assert!(refused.contains("--config VALUE") && refused.contains("--rootfs VALUE"));
        assert!(!subcommand_usage("join").contains("--service-cidr"));
    }

    #[test]
    fn go_durations() {
        for good in ["0", "24h", "1h30m", "90s", "1.5h", "100ms"] {
            assert!(is_go_duration(good), "{good}");
        }
        for bad in ["", "h", "1d", "1 h", "-1h", "1..5h"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
