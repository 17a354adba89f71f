//! The plan of `kubeadm init` / `kubeadm join`: computed completely from the flags, the `U7S_*`
//! variables, the host's facts, the registry and the package index before anything changes
//! (bad input fails here, with nothing touched), printed by `--dry-run`, applied step by step in
//! an order where an interruption leaves a host that the next run handles.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use podsec_common::{msg, tr};

use super::audit;
use super::calico;
use super::flags::{CommonFlags, InitFlags, JoinFlags, is_dns_subdomain};
use super::flannel;
use super::host_prep::{self, HostFacts};
use super::kubeadm_config::{self, Discovery, InitInput, JoinInput, NodeInput, Role};
use super::network::{self, Ipv4Net, NetworkError};
use super::packages::{self, PackageError, PackageIndex};
use super::registry::host_of;
use super::resolve::{self, Chosen, FlannelChoice, Image, ImageRole, ResolveError, Tags, U7sEnv};
use super::runtime::{PlannedFile, Runtime, U7S_ADMIN, U7S_HOME};
use super::versions::{KubeVersion, VersionRequest};
use crate::node_config::{self, CniPlugin, Ipv4Cidr, NODE_CONFIG_PATH, NodeConfig};
use crate::u7s::ports::PortSpec;

pub const DEFAULT_BIND_PORT: u16 = 6443;
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
pub const KUBEADM_CONFIG_DIR: &str = "/etc/podsec/u7s/kubeadm";
pub const FLANNEL_MANIFEST: &str = "/etc/podsec/u7s/kube-flannel.yml";
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Config(#[from] kubeadm_config::ConfigError),
    #[error(transparent)]
    Flannel(#[from] flannel::FlannelError),
    #[error(transparent)]
    Calico(#[from] calico::CalicoError),
    #[error("the host name '{0}' is not a valid Kubernetes node name; give --node-name")]
    NodeName(String),
    #[error("leftovers of an earlier deployment: {list}; run again with --reset to remove them")]
    Leftovers { list: String },
    #[error(
        "leftovers of an earlier deployment: {list}; run again with --reset to remove them (the running u7s runtime is stopped first)"
    )]
    LeftoversRunning { list: String },
    #[error("{0}")]
    Kubeadm(String),
    #[error(transparent)]
    NodeConfig(#[from] node_config::NodeConfigError),
}

/// The images kubeadm pulls for a version, as the native kubeadm lists them.
pub trait KubeadmImages {
    /// `None` when no kubeadm of that minor is installed yet (the list comes after packages).
    fn list(&self, version: KubeVersion, prefix: &str) -> Result<Option<Vec<String>>, PlanError>;
}

/// `kubeadm config images list` of the installed kubeadm (it only reads).
pub struct NativeKubeadm {
    pub installed: Option<KubeVersion>,
}

impl KubeadmImages for NativeKubeadm {
    fn list(&self, version: KubeVersion, prefix: &str) -> Result<Option<Vec<String>>, PlanError> {
        if self.installed.map(|v| v.minor_line()) != Some(version.minor_line()) {
            return Ok(None);
        }
        let output = std::process::Command::new(packages::KUBEADM)
            .args([
                "config",
                "images",
                "list",
                "--kubernetes-version",
                &version.to_string(),
                "--image-repository",
                prefix,
            ])
            .output()
            .map_err(|e| PlanError::Kubeadm(msg!("cannot run {}: {e}", packages::KUBEADM)))?;
        if !output.status.success() {
            return Err(PlanError::Kubeadm(msg!(
                "kubeadm config images list for {version}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(Some(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }
}

/// Everything a plan is computed from.
pub struct Context<'a> {
    pub env: &'a U7sEnv,
    pub facts: &'a HostFacts,
    pub tags: &'a dyn Tags,
    pub packages: &'a dyn PackageIndex,
    pub runtime: &'a dyn Runtime,
    pub kubeadm_images: &'a dyn KubeadmImages,
}

/// Owner of a directory or file, by name (resolved when applied: u7s-admin may not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user: String,
    pub group: String,
}

impl Owner {
    pub fn root() -> Owner {
        Owner {
            user: "root".into(),
            group: "root".into(),
        }
    }
    pub fn u7s() -> Owner {
        Owner {
            user: U7S_ADMIN.into(),
            group: U7S_ADMIN.into(),
        }
    }
    pub fn root_u7s_group() -> Owner {
        Owner {
            user: "root".into(),
            group: U7S_ADMIN.into(),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    InstallPackages {
        packages: Vec<String>,
        commands: Vec<Vec<String>>,
    },
    CreateGroup {
        name: String,
    },
    CreateUser {
        name: String,
        home: String,
        groups: Vec<String>,
    },
    AddSubIds {
        user: String,
        start: u64,
        count: u64,
    },
    AddToGroups {
        user: String,
        groups: Vec<String>,
    },
    RemoveLeftovers {
        paths: Vec<PathBuf>,
        stop_runtime: bool,
        confirmed: bool,
    },
    Sysctl {
        key: String,
        value: String,
    },
    LoadModules {
        modules: Vec<String>,
    },
    Directory {
        path: PathBuf,
        mode: u32,
        owner: Owner,
    },
    File {
        file: PlannedFile,
    },
    /// The runtime's node configuration; u7s-admin's uid is filled in when applied (the
    /// account may not exist when the plan is made).
    NodeConfig {
        config: NodeConfig,
    },
    StartRuntime,
    PullImages {
        commands: Vec<Vec<String>>,
    },
    RunKubeadm {
        argv: Vec<String>,
    },
    PatchAudit,
    CopyAdminConf {
        targets: Vec<PathBuf>,
    },
    ApplyFlannel {
        argv: Vec<String>,
    },
    /// The administrator's calico manifest, as validated (its copy in the plan's files).
    ApplyCalico {
        argv: Vec<String>,
    },
    EnableService,
}

/// A complete plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub command: &'static str,
    pub role: Role,
    /// `(what, value and where it came from)`.
    pub summary: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub steps: Vec<Step>,
    pub images: Vec<Image>,
    /// Why the image list is not final yet, if it is not.
    pub images_pending: Option<String>,
    pub processes: Vec<String>,
    pub ports: Vec<PortSpec>,
    pub prepare_only: bool,
}

fn chosen_text<T: std::fmt::Display>(c: &Chosen<T>) -> String {
    format!("{} ({})", c.value, c.origin)
}

// The texts of a plan (summary, notes, steps, processes) are for the administrator and made
// in the user's language (`tr!`); the files and commands it shows are not translated.

/// The pod network add-on and what it was resolved to.
#[derive(Debug, Clone)]
enum PodNetwork {
    Flannel(FlannelChoice),
    Calico(calico::Manifest),
}

impl PodNetwork {
    fn plugin(&self) -> CniPlugin {
        match self {
            PodNetwork::Flannel(_) => CniPlugin::Flannel,
            PodNetwork::Calico(_) => CniPlugin::Calico,
        }
    }
}

/// The images of the administrator's calico manifest, each in the node's registry (checked
/// there by tag, never substituted: calico's images must stay of one release).
fn calico_images(
    env: &U7sEnv,
    source: &resolve::Source,
    tags: &dyn Tags,
    notes: &mut Vec<String>,
) -> Result<(calico::Manifest, Vec<Image>), PlanError> {
    let path = env
        .calico_manifest
        .as_deref()
        .expect("U7S_CNI_PLUGIN=calico comes with U7S_CALICO_MANIFEST");
    let manifest = calico::load(path)?;
    manifest.check_registry(source.registry(), source.native)?;
    notes.extend(manifest.rootless_warnings());
    // Native images may be short docker.io names; their registry is docker.io.
    let references: Vec<String> = manifest
        .images
        .iter()
        .map(|i| {
            if calico::registry_of(i) == "docker.io" && !i.starts_with("docker.io/") {
                format!("docker.io/{i}")
            } else {
                i.clone()
            }
        })
        .collect();
    let images =
        match resolve::check_images(&references, Some(ImageRole::Calico), false, tags, notes) {
            Ok(images) => images,
            Err(ResolveError::Registry(e)) => return Err(ResolveError::Registry(e).into()),
            Err(e) => {
                return Err(calico::CalicoError::NotInRegistry {
                    path: manifest.path.clone(),
                    reason: e.to_string(),
                }
                .into());
            }
        };
    Ok((manifest, images))
}

/// The pieces both init and join compute.
struct Common {
    role: Role,
    version: Chosen<KubeVersion>,
    source: resolve::Source,
    advertise: Chosen<Ipv4Addr>,
    bind_port: u16,
    node_name: String,
    packages: packages::PackagePlan,
    images: Vec<Image>,
    images_pending: Option<String>,
    network: PodNetwork,
    etcd_tag: Option<String>,
    dns_tag: Option<String>,
    notes: Vec<String>,
}

fn common(
    role: Role,
    flags: &CommonFlags,
    kube_version: Option<VersionRequest>,
    image_repository: Option<&str>,
    ctx: &Context,
) -> Result<Common, PlanError> {
    let facts = ctx.facts;
    let env = ctx.env;
    let mut notes = Vec::new();
    if env.certmanager_tag.is_some() {
        notes.push(
            tr!("U7S_CERTMANAGER_TAG has no effect: podsec does not deploy cert-manager")
                .to_string(),
        );
    }
    let advertise = match flags.advertise_address {
        Some(a) => Chosen {
            value: a,
            origin: "--apiserver-advertise-address".into(),
        },
        None => {
            let found = network::advertise_address(&facts.route_table, &facts.addresses)?;
            Chosen {
                value: found.address,
                origin: tr!(
                    "address of {interface} on the default route",
                    interface = found.interface
                ),
            }
        }
    };
    let bind_port = flags.bind_port.unwrap_or(DEFAULT_BIND_PORT);
    let node_name = match &flags.node_name {
        Some(n) => n.clone(),
        None => {
            let name = facts.hostname.to_ascii_lowercase();
            if !is_dns_subdomain(&name) {
                return Err(PlanError::NodeName(facts.hostname.clone()));
            }
            name
        }
    };
    let source = resolve::source(
        image_repository,
        env,
        facts.hosts_binds_registry_local,
        facts.os.alt_platform(),
        &mut notes,
    )?;
    let newest_package_minor = if ctx.packages.available() {
        ctx.packages.minors().into_iter().map(|(m, _)| m).max()
    } else {
        None
    };
    let mut requested = resolve::requested(
        kube_version,
        env,
        facts.installed.kubeadm,
        newest_package_minor,
    )?;
    let minor = requested.request.minor_line();
    let package_plan = packages::plan(minor, requested.explicit, &facts.installed, ctx.packages)?;
    if package_plan.minor != minor {
        requested = resolve::Requested {
            request: VersionRequest::Minor(package_plan.minor),
            origin: tr!(
                "{origin}, lowered to the packages' minor",
                origin = requested.origin
            ),
            explicit: false,
        };
    }
    notes.extend(package_plan.notes.iter().cloned());
    let version = resolve::patch_version(&requested, env, &source, ctx.tags, &mut notes)?;

    // The images kubeadm and CRI-O will ask for, each checked in the registry.
    let listed = ctx.kubeadm_images.list(version.value, &source.prefix)?;
    let (mut images, images_pending) = match listed {
        Some(list) => {
            let wanted: Vec<String> = list
                .into_iter()
                .filter(|image| {
                    let base = image
                        .rsplit_once(':')
                        .map(|(n, _)| n)
                        .unwrap_or(image)
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    // A worker runs kube-proxy and pods; the control plane's images are not its.
                    role.is_control_plane() || base == "kube-proxy" || base == "pause"
                })
                .collect();
            (
                resolve::check_images(
                    &wanted,
                    None,
                    env.set_available_images,
                    ctx.tags,
                    &mut notes,
                )?,
                None,
            )
        }
        None => (
            Vec::new(),
            Some(tr!(
                "the images of {version} (pause, etcd, CoreDNS tags included) are listed by kubeadm {minor} once its package is installed; the run checks each in the registry then",
                version = version.value,
                minor = version.value.minor_line()
            )),
        ),
    };
    let mut etcd_tag = None;
    let mut dns_tag = None;
    for image in &mut images {
        if !image.substituted() {
            continue;
        }
        // etcd and CoreDNS tags can be set in the configuration: kubeadm then asks for the
        // substitute itself, no image is retagged. Only pause keeps kubeadm's name.
        let tag = image.pull.rsplit_once(':').map(|(_, t)| t.to_string());
        match image.role {
            ImageRole::Etcd => etcd_tag = tag,
            ImageRole::CoreDns => dns_tag = tag,
            _ => continue,
        }
        image.wanted = image.pull.clone();
    }
    let network = match env.cni() {
        CniPlugin::Flannel => {
            let flannel = resolve::flannel_images(env, &source, ctx.tags, &mut notes)?;
            images.push(flannel.flannel.clone());
            images.push(flannel.cni_plugin.clone());
            PodNetwork::Flannel(flannel)
        }
        CniPlugin::Calico => {
            let (manifest, calico_images) = calico_images(env, &source, ctx.tags, &mut notes)?;
            images.extend(calico_images);
            PodNetwork::Calico(manifest)
        }
    };
    if !env.arch_images.is_empty() {
        let extra: Vec<String> = env
            .arch_images
            .iter()
            .map(|i| resolve::absolute_reference(i, source.registry()))
            .collect();
        images.extend(resolve::check_images(
            &extra,
            Some(ImageRole::Extra),
            env.set_available_images,
            ctx.tags,
            &mut notes,
        )?);
    }
    Ok(Common {
        role,
        version,
        source,
        advertise,
        bind_port,
        node_name,
        packages: package_plan,
        images,
        images_pending,
        network,
        etcd_tag,
        dns_tag,
        notes,
    })
}

fn pause_image(c: &Common) -> String {
    c.images
        .iter()
        .find(|i| i.role == ImageRole::Pause)
        .map(|i| i.wanted.clone())
        .unwrap_or_else(|| format!("{}/pause (kubeadm's tag)", c.source.prefix))
}

fn leftover_step(
    flags: &CommonFlags,
    facts: &HostFacts,
    dry_run: bool,
) -> Result<Option<Step>, PlanError> {
    if facts.leftovers.is_empty() && !facts.runtime_running {
        return Ok(None);
    }
    if !flags.reset && !dry_run {
        let list = facts
            .leftovers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let list = if list.is_empty() {
            msg!("the u7s namespace is running")
        } else {
            list
        };
        return Err(if facts.runtime_running {
            PlanError::LeftoversRunning { list }
        } else {
            PlanError::Leftovers { list }
        });
    }
    Ok(Some(Step::RemoveLeftovers {
        paths: facts.leftovers.clone(),
        stop_runtime: facts.runtime_running,
        confirmed: flags.reset,
    }))
}

fn account_steps(facts: &HostFacts) -> Vec<Step> {
    let mut steps = Vec::new();
    if !facts.u7s_group_exists && facts.u7s_admin.is_none() {
        steps.push(Step::CreateGroup {
            name: U7S_ADMIN.into(),
        });
    }
    match &facts.u7s_admin {
        None => steps.push(Step::CreateUser {
            name: U7S_ADMIN.into(),
            home: U7S_HOME.into(),
            groups: facts.existing_groups.clone(),
        }),
        Some(_) => {
            let missing: Vec<String> = facts
                .existing_groups
                .iter()
                .filter(|g| !facts.u7s_admin_groups.contains(g))
                .cloned()
                .collect();
            if !missing.is_empty() {
                steps.push(Step::AddToGroups {
                    user: U7S_ADMIN.into(),
                    groups: missing,
                });
            }
        }
    }
    let uid = facts.u7s_admin.as_ref().map(|a| a.uid);
    let enough = |text: &str| {
        host_prep::subid_ranges(text, U7S_ADMIN, uid)
            .iter()
            .map(|(_, count)| count)
            .sum::<u64>()
            >= host_prep::SUBID_COUNT
    };
    if !enough(&facts.subuid) || !enough(&facts.subgid) {
        steps.push(Step::AddSubIds {
            user: U7S_ADMIN.into(),
            start: host_prep::free_subid_range(&facts.subuid, &facts.subgid),
            count: host_prep::SUBID_COUNT,
        });
    }
    steps
}

fn kernel_steps(facts: &HostFacts) -> Vec<Step> {
    let mut steps = vec![Step::File {
        file: PlannedFile {
            path: host_prep::SYSCTL_FILE.into(),
            mode: 0o644,
            user: "root".into(),
            group: "root".into(),
            contents:
                "# podsec-u7s-kubeadm: pods route through the host\nnet.ipv4.ip_forward = 1\n"
                    .into(),
        },
    }];
    // Loaded at every boot, not only now: the packaged modules-load.d file, else ours in /etc.
    if !facts.modules_persisted {
        steps.push(Step::File {
            file: PlannedFile {
                path: host_prep::MODULES_LOAD_FILE.into(),
                mode: 0o644,
                user: "root".into(),
                group: "root".into(),
                contents: host_prep::modules_load_conf(),
            },
        });
    }
    if !facts.ip_forward {
        steps.push(Step::Sysctl {
            key: "net.ipv4.ip_forward".into(),
            value: "1".into(),
        });
    }
    let missing: Vec<String> = host_prep::MODULES
        .iter()
        .filter(|m| !facts.loaded_modules.iter().any(|l| l == *m))
        .map(|m| m.to_string())
        .collect();
    if !missing.is_empty() {
        steps.push(Step::LoadModules { modules: missing });
    }
    steps
}

fn dir(path: &str, mode: u32, owner: Owner) -> Step {
    Step::Directory {
        path: path.into(),
        mode,
        owner,
    }
}

fn file(path: impl Into<PathBuf>, mode: u32, owner: Owner, contents: String) -> Step {
    Step::File {
        file: PlannedFile {
            path: path.into(),
            mode,
            user: owner.user,
            group: owner.group,
            contents,
        },
    }
}

fn pull_commands(images: &[Image], arch: &str, storage: &str) -> Vec<Vec<String>> {
    images
        .iter()
        .map(|image| {
            vec![
                "skopeo".into(),
                "copy".into(),
                "--override-arch".into(),
                arch.into(),
                format!("docker://{}", image.pull),
                format!("{storage}{}", image.wanted),
            ]
        })
        .collect()
}

/// Builds the plan of `kubeadm init`.
pub fn init(flags: &InitFlags, ctx: &Context) -> Result<Plan, PlanError> {
    let c = common(
        Role::Init,
        &flags.common,
        flags.kubernetes_version,
        flags.image_repository.as_deref(),
        ctx,
    )?;
    // calico: the manifest's pool, if it names one, and the flag must agree.
    let pod = match &c.network {
        PodNetwork::Flannel(_) => flags
            .pod_network_cidr
            .unwrap_or_else(|| Ipv4Net::parse_cluster(DEFAULT_POD_CIDR).expect("default")),
        PodNetwork::Calico(manifest) => manifest.pod_network(flags.pod_network_cidr)?,
    };
    let service = flags
        .service_cidr
        .unwrap_or_else(|| Ipv4Net::parse_cluster(DEFAULT_SERVICE_CIDR).expect("default"));
    network::check_cluster_networks(pod, service, &ctx.facts.addresses)?;
    let endpoint = flags
        .control_plane_endpoint
        .clone()
        .unwrap_or_else(|| format!("{}:{}", c.advertise.value, c.bind_port));
    let input = NodeInput {
        role: Role::Init,
        version: c.version.value,
        node_name: c.node_name.clone(),
        advertise_address: c.advertise.value,
        bind_port: c.bind_port,
        skip_phases: skip_phases(&flags.common, ctx.env),
        patches: flags.common.patches.clone(),
        init: Some(InitInput {
            image_repository: c.source.prefix.clone(),
            control_plane_endpoint: endpoint.clone(),
            pod_subnet: pod,
            service_subnet: service,
            dns_domain: flags
                .service_dns_domain
                .clone()
                .unwrap_or_else(|| "cluster.local".into()),
            cert_extra_sans: flags.cert_extra_sans.clone(),
            feature_gates: flags.feature_gates.clone(),
            token: flags.common.token.clone(),
            token_ttl: flags.token_ttl.clone(),
            certificate_key: flags.common.certificate_key.clone(),
            etcd_image_tag: c.etcd_tag.clone(),
            dns_image_tag: c.dns_tag.clone(),
        }),
        join: None,
    };
    let mut native = flags.native_args();
    native.retain(|a| !a.is_empty());
    let mut summary = vec![
        (tr!("control-plane endpoint").to_string(), endpoint),
        (tr!("pod network").to_string(), pod.to_string()),
        (tr!("service network").to_string(), service.to_string()),
    ];
    let manifest = match &c.network {
        PodNetwork::Flannel(f) => (
            FLANNEL_MANIFEST,
            flannel::render(f.manifest, &f.flannel.wanted, &f.cni_plugin.wanted, pod)?,
        ),
        // Applied as the administrator wrote it, from root's validated copy.
        PodNetwork::Calico(m) => (calico::MANIFEST_COPY, m.text.clone()),
    };
    finish(
        c,
        input,
        native,
        &mut summary,
        Some(manifest),
        service,
        pod,
        flags.common.prepare_only,
        &flags.common,
        ctx,
    )
}

fn skip_phases(flags: &CommonFlags, env: &U7sEnv) -> Vec<String> {
    if flags.skip_phases.is_empty() {
        env.skip_phases.clone()
    } else {
        flags.skip_phases.clone()
    }
}

/// Builds the plan of `kubeadm join` (worker or `--control-plane`).
pub fn join(flags: &JoinFlags, ctx: &Context) -> Result<Plan, PlanError> {
    let role = if flags.control_plane {
        Role::ControlPlane
    } else {
        Role::Worker
    };
    let c = common(role, &flags.common, None, None, ctx)?;
    let discovery = match (&flags.endpoint, &flags.discovery_file) {
        (Some(endpoint), _) => Discovery::Token {
            endpoint: endpoint.clone(),
            token: flags
                .discovery_token
                .clone()
                .or_else(|| flags.common.token.clone())
                .expect("checked by the parser"),
            ca_cert_hashes: flags.ca_cert_hashes.clone(),
            unsafe_skip_ca_verification: flags.unsafe_skip_ca_verification,
        },
        (None, Some(file)) => Discovery::File {
            kubeconfig: file.clone(),
        },
        (None, None) => unreachable!("checked by the parser"),
    };
    let input = NodeInput {
        role,
        version: c.version.value,
        node_name: c.node_name.clone(),
        advertise_address: c.advertise.value,
        bind_port: c.bind_port,
        skip_phases: skip_phases(&flags.common, ctx.env),
        patches: flags.common.patches.clone(),
        init: None,
        join: Some(JoinInput {
            discovery,
            tls_bootstrap_token: flags
                .tls_bootstrap_token
                .clone()
                .or_else(|| flags.common.token.clone()),
            certificate_key: flags.common.certificate_key.clone(),
        }),
    };
    let mut summary = vec![(
        tr!("cluster").to_string(),
        flags
            .endpoint
            .clone()
            .or_else(|| flags.discovery_file.clone())
            .unwrap_or_default(),
    )];
    if flags.unsafe_skip_ca_verification {
        summary.push((
            tr!("WARNING").into(),
            tr!("--discovery-token-unsafe-skip-ca-verification: the cluster's CA is not pinned")
                .into(),
        ));
    }
    let pod = match &c.network {
        PodNetwork::Flannel(_) => Ipv4Net::parse_cluster(DEFAULT_POD_CIDR).expect("default"),
        PodNetwork::Calico(manifest) => manifest.pod_network(None)?,
    };
    let service = Ipv4Net::parse_cluster(DEFAULT_SERVICE_CIDR).expect("default");
    let native = flags.common.native_args();
    finish(
        c,
        input,
        native,
        &mut summary,
        None,
        service,
        pod,
        flags.common.prepare_only,
        &flags.common,
        ctx,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    c: Common,
    input: NodeInput,
    native: Vec<String>,
    summary: &mut Vec<(String, String)>,
    network_manifest: Option<(&'static str, String)>,
    service: Ipv4Net,
    pod: Ipv4Net,
    prepare_only: bool,
    flags: &CommonFlags,
    ctx: &Context,
) -> Result<Plan, PlanError> {
    let facts = ctx.facts;
    let role = c.role;
    let config = kubeadm_config::render(&input)?;
    let command = if role == Role::Init { "init" } else { "join" };
    let config_path = PathBuf::from(KUBEADM_CONFIG_DIR).join(format!("{command}.yaml"));
    let node = node_configuration(&c, &input, service, pod, facts)?;

    let mut steps = Vec::new();
    if !c.packages.install.is_empty() {
        steps.push(Step::InstallPackages {
            packages: c.packages.install.clone(),
            commands: c.packages.commands(),
        });
    }
    steps.extend(account_steps(facts));
    if let Some(step) = leftover_step(flags, facts, flags.dry_run)? {
        steps.push(step);
    }
    steps.extend(kernel_steps(facts));

    steps.push(dir(host_prep::CONFIG_DIR, 0o755, Owner::root()));
    steps.push(dir(KUBEADM_CONFIG_DIR, 0o755, Owner::root()));
    // kubeadm runs as u7s-admin (root of the namespace) and writes here.
    steps.push(dir(host_prep::KUBERNETES_DIR, 0o755, Owner::u7s()));
    steps.push(dir("/etc/kubernetes/manifests", 0o755, Owner::u7s()));
    steps.push(dir("/etc/kubernetes/pki", 0o755, Owner::u7s()));
    if role.is_control_plane() {
        steps.push(dir("/var/lib/podsec", 0o755, Owner::root()));
        steps.push(dir("/var/lib/podsec/u7s", 0o755, Owner::root()));
        steps.push(dir(host_prep::ETCD_DIR, 0o700, Owner::u7s()));
        // The API server (u7s-admin) writes and rotates its log here; the sticky bit keeps it
        // from replacing the root-owned policy (upstream chowned the directory to it, §10.1/5).
        steps.push(dir(audit::AUDIT_DIR, 0o1770, Owner::root_u7s_group()));
        steps.push(file(
            audit::POLICY_PATH,
            0o644,
            Owner::root(),
            audit::POLICY.to_string(),
        ));
    }
    // CNI: our two files, root-owned; nothing else of /etc/cni is touched and no package binary
    // changes owner (§10.1/4, §10.1/7).
    steps.push(dir("/etc/cni", 0o755, Owner::root()));
    steps.push(dir(host_prep::CNI_NET_DIR, 0o755, Owner::root()));
    // calico's own install-cni writes its configuration inside the namespace.
    let mut notes = c.notes.clone();
    if c.network.plugin() == CniPlugin::Flannel {
        steps.push(file(
            Path::new(host_prep::CNI_NET_DIR).join(flannel::CONFLIST_NAME),
            0o644,
            Owner::root(),
            flannel::CONFLIST.to_string(),
        ));
    }
    let earlier = host_prep::cni_configs_before_ours(&facts.cni_configs, flannel::CONFLIST_NAME);
    if c.network.plugin() == CniPlugin::Flannel && !earlier.is_empty() {
        notes.push(tr!(
            "WARNING: {files} in {dir} sort before {ours}: CRI-O would use them instead of flannel's; move them away",
            files = earlier.join(", "),
            dir = host_prep::CNI_NET_DIR,
            ours = flannel::CONFLIST_NAME
        ));
    }
    // Secrets (tokens, certificate keys) are in it: readable by root and u7s-admin only.
    steps.push(file(&config_path, 0o640, Owner::root_u7s_group(), config));
    if let Some((path, manifest)) = network_manifest {
        steps.push(file(path, 0o644, Owner::root(), manifest));
    }
    steps.push(Step::NodeConfig {
        config: node.clone(),
    });
    if !prepare_only {
        steps.push(Step::StartRuntime);
        let arch = resolve::oci_arch(&facts.machine).unwrap_or("amd64");
        steps.push(Step::PullImages {
            commands: pull_commands(&c.images, arch, &ctx.runtime.image_storage()),
        });
        let mut argv = vec![
            packages::KUBEADM.to_string(),
            command.to_string(),
            "--config".to_string(),
            config_path.display().to_string(),
        ];
        argv.extend(native);
        steps.push(Step::RunKubeadm { argv });
        if role.is_control_plane() {
            steps.push(Step::PatchAudit);
            steps.push(Step::CopyAdminConf {
                targets: vec![
                    PathBuf::from("/root/.kube/config"),
                    PathBuf::from(U7S_HOME).join(".kube/config"),
                ],
            });
        }
        if role == Role::Init {
            let mut argv: Vec<String> = ["kubectl", "--kubeconfig", "/root/.kube/config", "apply"]
                .map(String::from)
                .to_vec();
            steps.push(match c.network {
                PodNetwork::Flannel(_) => {
                    argv.extend(["-f".into(), FLANNEL_MANIFEST.into()]);
                    Step::ApplyFlannel { argv }
                }
                PodNetwork::Calico(_) => {
                    // Server-side: no last-applied annotation holding a copy of calico's large CRDs
                    // (limited to 256 KiB; the largest is a third of that today).
                    argv.extend([
                        "--server-side".into(),
                        "-f".into(),
                        calico::MANIFEST_COPY.into(),
                    ]);
                    Step::ApplyCalico { argv }
                }
            });
        }
        steps.push(Step::EnableService);
    }

    let mut full_summary = vec![
        (
            tr!("role").to_string(),
            match role {
                Role::Init => tr!("first control-plane node (kubeadm init)"),
                Role::ControlPlane => tr!("control-plane node (kubeadm join --control-plane)"),
                Role::Worker => tr!("worker node (kubeadm join)"),
            }
            .to_string(),
        ),
        ("Kubernetes".to_string(), chosen_text(&c.version)),
        (
            tr!("images").to_string(),
            format!("{} ({})", c.source.prefix, c.source.origin),
        ),
        match &c.network {
            PodNetwork::Flannel(f) => ("flannel".to_string(), f.origin.clone()),
            PodNetwork::Calico(m) => (
                "calico".to_string(),
                tr!(
                    "the manifest of U7S_CALICO_MANIFEST={path} ({count} images)",
                    path = m.path,
                    count = m.images.len()
                ),
            ),
        },
        (tr!("node name").to_string(), c.node_name.clone()),
        (
            tr!("advertise address").to_string(),
            tr!(
                "{address} ({origin}), API server port {port}",
                address = c.advertise.value,
                origin = c.advertise.origin,
                port = c.bind_port
            ),
        ),
    ];
    full_summary.append(summary);
    let mut processes = ctx.runtime.processes(&node);
    processes.push(tr!(
        "{kubeadm} {command} inside the namespace as {user}, with {config}",
        kubeadm = packages::KUBEADM,
        command = command,
        user = U7S_ADMIN,
        config = config_path.display()
    ));
    let calico = c.network.plugin() == CniPlugin::Calico;
    processes.extend(match role {
        Role::Init | Role::ControlPlane => [
            tr!(
                "static pods: etcd, kube-apiserver (audited), kube-controller-manager, kube-scheduler"
            ),
            if calico {
                tr!(
                    "kube-proxy and calico-node (DaemonSets), CoreDNS (Deployment), and the rest of the calico manifest"
                )
            } else {
                tr!("kube-proxy and flannel (DaemonSets), CoreDNS (Deployment)")
            },
        ]
        .map(String::from)
        .to_vec(),
        Role::Worker if calico => {
            vec![tr!("kube-proxy and calico-node (DaemonSets)").to_string()]
        }
        Role::Worker => vec![tr!("kube-proxy and flannel (DaemonSets)").to_string()],
    });
    Ok(Plan {
        command,
        role,
        summary: full_summary,
        notes,
        steps,
        images: c.images,
        images_pending: c.images_pending,
        processes,
        ports: node.published_ports(),
        prepare_only,
    })
}

fn cidr(net: Ipv4Net) -> Ipv4Cidr {
    Ipv4Cidr::new(net.address, net.prefix).expect("a canonical network")
}

/// The runtime's node configuration, validated as the runtime will (with a stand-in uid while
/// u7s-admin does not exist yet), its networks also against the host's (the slirp4netns network
/// included).
fn node_configuration(
    c: &Common,
    input: &NodeInput,
    service: Ipv4Net,
    pod: Ipv4Net,
    facts: &HostFacts,
) -> Result<NodeConfig, PlanError> {
    let registry = host_of(&c.source.prefix).to_string();
    let platform = c
        .source
        .prefix
        .strip_prefix(&registry)
        .map(|p| p.trim_start_matches('/'))
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let endpoint = match (&input.init, &input.join) {
        (Some(init), _) => Some(init.control_plane_endpoint.clone()),
        (
            None,
            Some(JoinInput {
                discovery: Discovery::Token { endpoint, .. },
                ..
            }),
        ) => Some(endpoint.clone()),
        _ => None,
    };
    let v = c.version.value;
    let config = NodeConfig {
        role: match c.role {
            Role::Init => node_config::Role::InitMaster,
            Role::ControlPlane => node_config::Role::ControlPlane,
            Role::Worker => node_config::Role::Worker,
        },
        kubernetes_version: node_config::KubeVersion {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
        },
        uid: facts.u7s_admin.as_ref().map(|a| a.uid).unwrap_or(0),
        registry,
        platform,
        pause_image: pause_image(c),
        external_ip: c.advertise.value,
        advertise_address: c.advertise.value,
        bind_port: c.bind_port,
        control_plane_endpoint: endpoint,
        service_cidr: cidr(service),
        pod_cidr: cidr(pod),
        cni_plugin: c.network.plugin(),
        slirp_cidr: node_config::DEFAULT_SLIRP_CIDR,
        extra_ports: facts.extra_ports.clone(),
    };
    if c.images_pending.is_none() {
        let mut check = config.clone();
        check.uid = check.uid.max(1);
        check.validate()?;
    }
    let host: Vec<(String, Ipv4Cidr)> = facts
        .addresses
        .iter()
        .filter(|a| !a.address.is_loopback())
        .map(|a| (a.interface.clone(), cidr(a.network)))
        .collect();
    config.check_host_networks(&host)?;
    Ok(config)
}

/// The node configuration's text as the dry run shows it.
fn node_config_text(config: &NodeConfig) -> String {
    let body = toml::to_string(config).unwrap_or_default();
    let body = if config.uid == 0 {
        body.replace(
            "uid = 0\n",
            "uid = 0  # u7s-admin's uid, filled in when the account exists\n",
        )
    } else {
        body
    };
    format!("# podsec u7s node configuration, written by podsec-u7s-kubeadm; root-owned.\n{body}")
}

fn mode_text(mode: u32) -> String {
    format!("{mode:04o}")
}

fn argv_text(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty()
                || a.chars()
                    .any(|c| c.is_whitespace() || "'\"$`\\;&|<>()*?[]#~".contains(c))
            {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Step {
    /// One line saying what the step does.
    pub fn describe(&self) -> String {
        match self {
            Step::InstallPackages { packages, .. } => {
                tr!("install packages {packages}", packages = packages.join(" "))
            }
            Step::CreateGroup { name } => tr!("create system group {name}", name = name),
            Step::CreateUser { name, home, groups } => {
                if groups.is_empty() {
                    tr!(
                        "create system user {name} (home {home}, primary group {name})",
                        name = name,
                        home = home
                    )
                } else {
                    tr!(
                        "create system user {name} (home {home}, primary group {name}, also in {groups})",
                        name = name,
                        home = home,
                        groups = groups.join(",")
                    )
                }
            }
            Step::AddSubIds { user, start, count } => tr!(
                "give {user} subordinate ids: usermod --add-subuids {start}-{end} --add-subgids {start}-{end} {user}",
                user = user,
                start = start,
                end = start + count - 1
            ),
            Step::AddToGroups { user, groups } => tr!(
                "add {user} to the groups {groups} (keeping its others)",
                user = user,
                groups = groups.join(",")
            ),
            Step::RemoveLeftovers {
                paths,
                stop_runtime,
                confirmed,
            } => {
                let paths = if paths.is_empty() {
                    tr!("(none)").to_string()
                } else {
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                match (*stop_runtime, *confirmed) {
                    (false, true) => tr!(
                        "remove the leftovers of an earlier deployment: {paths}",
                        paths = paths
                    ),
                    (true, true) => tr!(
                        "stop the running u7s runtime, remove the leftovers of an earlier deployment: {paths}",
                        paths = paths
                    ),
                    (false, false) => tr!(
                        "remove the leftovers of an earlier deployment: {paths} -- needs --reset (or yes at the prompt)",
                        paths = paths
                    ),
                    (true, false) => tr!(
                        "stop the running u7s runtime, remove the leftovers of an earlier deployment: {paths} -- needs --reset (or yes at the prompt)",
                        paths = paths
                    ),
                }
            }
            Step::Sysctl { key, value } => {
                tr!("set {key} = {value} now", key = key, value = value)
            }
            Step::LoadModules { modules } => tr!(
                "load kernel modules not loaded yet: {modules}",
                modules = modules.join(" ")
            ),
            Step::Directory { path, mode, owner } => tr!(
                "directory {path} ({user}:{group} {mode})",
                path = path.display(),
                user = owner.user,
                group = owner.group,
                mode = mode_text(*mode)
            ),
            Step::File { file } => tr!(
                "file {path} ({user}:{group} {mode})",
                path = file.path.display(),
                user = file.user,
                group = file.group,
                mode = mode_text(file.mode)
            ),
            Step::NodeConfig { .. } => tr!(
                "node configuration {path} (root:root 0644)",
                path = NODE_CONFIG_PATH
            ),
            Step::StartRuntime => {
                tr!("start the u7s runtime of u7s-admin (namespace, CRI-O)").to_string()
            }
            Step::PullImages { commands } => tr!(
                "pull {count} images into u7s-admin's storage inside the namespace (the node's signature policy applies)",
                count = commands.len()
            ),
            Step::RunKubeadm { argv } => tr!(
                "run inside the namespace: {command}",
                command = argv_text(argv)
            ),
            Step::PatchAudit => tr!(
                "add the audit flags, mount and volume to {manifest}",
                manifest = audit::APISERVER_MANIFEST
            ),
            Step::CopyAdminConf { targets } => tr!(
                "copy {admin_conf} to {targets}",
                admin_conf = ADMIN_CONF,
                targets = targets
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(tr!(" and "))
            ),
            Step::ApplyFlannel { argv } => tr!(
                "apply flannel: {command} (bounded retries)",
                command = argv_text(argv)
            ),
            Step::ApplyCalico { argv } => tr!(
                "apply calico: {command} (bounded retries)",
                command = argv_text(argv)
            ),
            Step::EnableService => tr!("enable and start u7s.service").to_string(),
        }
    }
}

impl Plan {
    /// The text `--dry-run` prints.
    pub fn render(&self, dry_run: bool) -> String {
        let mut out = String::new();
        let title = if dry_run {
            tr!(
                "podsec-u7s-kubeadm {command}: the plan (dry run: nothing was changed)",
                command = self.command
            )
        } else {
            tr!(
                "podsec-u7s-kubeadm {command}: the plan",
                command = self.command
            )
        };
        let _ = writeln!(out, "{title}");
        out.push('\n');
        let width = self
            .summary
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (key, value) in &self.summary {
            let _ = writeln!(out, "  {key:<width$}  {value}");
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "  {note}");
            }
        }
        let _ = writeln!(out, "\n{}", tr!("Steps:"));
        for (i, step) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", i + 1, step.describe());
            match step {
                Step::InstallPackages { commands, .. } => {
                    for c in commands {
                        let _ = writeln!(out, "      $ {}", argv_text(c));
                    }
                }
                Step::File { file } => {
                    for line in file.contents.lines() {
                        let _ = writeln!(out, "      | {line}");
                    }
                }
                Step::NodeConfig { config } => {
                    for line in node_config_text(config).lines() {
                        let _ = writeln!(out, "      | {line}");
                    }
                }
                Step::PullImages { commands } => {
                    for c in commands {
                        let _ = writeln!(out, "      $ {}", argv_text(c));
                    }
                }
                _ => {}
            }
        }
        if self.prepare_only {
            let _ = writeln!(
                out,
                "  {}",
                tr!("(--prepare-only: the node is not started; run again without it to deploy)")
            );
        }
        let _ = writeln!(out, "\n{}", tr!("Images:"));
        for image in &self.images {
            if image.substituted() {
                let _ = writeln!(
                    out,
                    "  {}",
                    tr!(
                        "{pull} (substitute, kept as {wanted})",
                        pull = image.pull,
                        wanted = image.wanted
                    )
                );
            } else {
                let _ = writeln!(out, "  {}", image.pull);
            }
        }
        if let Some(pending) = &self.images_pending {
            let _ = writeln!(out, "  {}", tr!("and {pending}", pending = pending));
        }
        let _ = writeln!(out, "\n{}", tr!("Processes:"));
        for p in &self.processes {
            let _ = writeln!(out, "  {p}");
        }
        let _ = writeln!(out, "\n{}", tr!("Published ports (host -> u7s namespace):"));
        let ports: Vec<String> = self.ports.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(out, "  {}", ports.join(" "));
        out
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::u7s_kubeadm::flags::{Invocation, parse};
    use crate::u7s_kubeadm::network::HostAddress;
    use crate::u7s_kubeadm::packages::{Installed, NoPackages};
    use crate::u7s_kubeadm::resolve::tests::FakeTags;
    use crate::u7s_kubeadm::runtime::InstalledRuntime;
    use podsec_common::profile::OsRelease;

    pub struct Images;
    impl KubeadmImages for Images {
        fn list(&self, v: KubeVersion, prefix: &str) -> Result<Option<Vec<String>>, PlanError> {
            Ok(Some(
                [
                    format!("kube-apiserver:{v}"),
                    format!("kube-controller-manager:{v}"),
                    format!("kube-scheduler:{v}"),
                    format!("kube-proxy:{v}"),
                    "coredns:v1.12.0".into(),
                    "pause:3.10".into(),
                    "etcd:3.5.21-0".into(),
                ]
                .iter()
                .map(|i| format!("{prefix}/{i}"))
                .collect(),
            ))
        }
    }

    pub fn facts() -> HostFacts {
        HostFacts {
            os: OsRelease::parse("ID=altlinux\nALT_BRANCH_ID=c10f2\n"),
            hosts_binds_registry_local: true,
            machine: "x86_64".into(),
            hostname: "Node1".into(),
            installed: Installed {
                kubeadm: KubeVersion::parse("v1.33.13").ok(),
                kubelet: KubeVersion::parse("v1.33.13").ok(),
                crio: KubeVersion::parse("1.33.2").ok(),
            },
            addresses: vec![HostAddress {
                interface: "eth0".into(),
                address: Ipv4Addr::new(192, 0, 2, 20),
                network: Ipv4Net::containing(Ipv4Addr::new(192, 0, 2, 20), 24),
            }],
            route_table: "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                          eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n"
                .into(),
            ..HostFacts::default()
        }
    }

    pub fn tags() -> FakeTags {
        FakeTags::new(&[
            (
                "registry.local/c10f/kube-apiserver",
                &["v1.33.13", "v1.33.1", "v1.30.14"],
            ),
            ("registry.local/c10f/kube-controller-manager", &["v1.33.13"]),
            ("registry.local/c10f/kube-scheduler", &["v1.33.13"]),
            ("registry.local/c10f/kube-proxy", &["v1.33.13"]),
            ("registry.local/c10f/coredns", &["v1.12.0"]),
            ("registry.local/c10f/pause", &["3.10"]),
            ("registry.local/c10f/etcd", &["3.5.16-0", "3.5.21-0"]),
            ("registry.local/c10f/flannel", &["v0.26.7"]),
            (
                "registry.local/c10f/flannel-cni-plugin",
                &["v1.7.1-flannel1"],
            ),
        ])
    }

    pub fn plan_for(
        argv: &[&str],
        env: &[(&str, &str)],
        facts: &HostFacts,
        tags: &FakeTags,
    ) -> Result<Plan, PlanError> {
        let env = U7sEnv::from_pairs(env.iter().copied()).unwrap();
        let runtime = InstalledRuntime { uid: Some(990) };
        let ctx = Context {
            env: &env,
            facts,
            tags,
            packages: &NoPackages,
            runtime: &runtime,
            kubeadm_images: &Images,
        };
        let args: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        match parse(&args).unwrap() {
            Invocation::Init(f) => init(&f, &ctx),
            Invocation::Join(f) => join(&f, &ctx),
            other => panic!("{other:?}"),
        }
    }

    fn files(plan: &Plan) -> Vec<&PlannedFile> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::File { file } => Some(file),
                _ => None,
            })
            .collect()
    }

    fn config(plan: &Plan) -> &str {
        &files(plan)
            .into_iter()
            .find(|f| f.path.starts_with(KUBEADM_CONFIG_DIR))
            .unwrap()
            .contents
    }

    #[test]
    fn init_plan_on_a_fresh_host() {
        let plan = plan_for(&["init"], &[], &facts(), &tags()).unwrap();
        let text = plan.render(true);
        for expected in [
            "Kubernetes              v1.33.13 (the minor of the installed kubeadm v1.33.13, newest v1.33 patch in the registry)",
            "create system group u7s-admin",
            "create system user u7s-admin",
            "usermod --add-subuids 131072-196607 --add-subgids 131072-196607 u7s-admin",
            "file /etc/kubernetes/audit/policy.yaml (root:root 0644)",
            "directory /etc/kubernetes/audit (root:u7s-admin 1770)",
            "file /etc/podsec/u7s/kubeadm/init.yaml (root:u7s-admin 0640)",
            "run inside the namespace: /usr/bin/kubeadm init --config /etc/podsec/u7s/kubeadm/init.yaml --upload-certs",
            "      | kind: ClusterConfiguration",
            "registry.local/c10f/etcd:3.5.21-0",
            "0.0.0.0:6443:6443/tcp",
            "192.0.2.20 (address of eth0 on the default route)",
            "node name               node1",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        // no wiping of /etc/cni, no chown of package binaries (§10.1/4, /7)
        assert!(
            !text.contains("rm -rf") && !text.contains("/usr/libexec/cni"),
            "{text}"
        );
        assert!(text.contains("file /etc/cni/net.d/10-flannel.conflist (root:root 0644)"));
    }

    #[test]
    fn bind_port_is_honoured_everywhere() {
        // §10.2/11: ignored for init, 6443 fixed in the published ports, `ip:` endpoint
        let plan = plan_for(
            &["init", "--apiserver-bind-port", "7443"],
            &[],
            &facts(),
            &tags(),
        )
        .unwrap();
        let cfg = config(&plan);
        assert!(cfg.contains("bindPort: 7443"), "{cfg}");
        assert!(
            cfg.contains("controlPlaneEndpoint: 192.0.2.20:7443"),
            "{cfg}"
        );
        let ports: Vec<String> = plan.ports.iter().map(|p| p.to_string()).collect();
        assert!(
            ports.contains(&"0.0.0.0:7443:7443/tcp".into())
                && !ports.contains(&"0.0.0.0:6443:6443/tcp".into())
        );
        assert_eq!(node_config(&plan).bind_port, 7443);
        assert!(plan.render(true).contains("      | bind-port = 7443"));
    }

    #[test]
    fn service_and_pod_networks_are_honoured_and_checked() {
        let plan = plan_for(
            &[
                "init",
                "--service-cidr",
                "10.112.0.0/12",
                "--pod-network-cidr",
                "10.200.0.0/16",
            ],
            &[],
            &facts(),
            &tags(),
        )
        .unwrap();
        let cfg = config(&plan);
        assert!(
            cfg.contains("serviceSubnet: 10.112.0.0/12")
                && cfg.contains("podSubnet: 10.200.0.0/16")
        );
        let manifest = files(&plan)
            .into_iter()
            .find(|f| f.path == Path::new(FLANNEL_MANIFEST))
            .unwrap();
        assert!(
            manifest.contents.contains("10.200.0.0/16"),
            "flannel follows the pod network"
        );
        // the pod network is checked against host networks too (§10.2/16)
        let err = plan_for(
            &["init", "--pod-network-cidr", "192.0.0.0/16"],
            &[],
            &facts(),
            &tags(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("pod network 192.0.0.0/16 overlaps"),
            "{err}"
        );
        let err = plan_for(
            &["init", "--service-cidr", "192.0.2.0/28"],
            &[],
            &facts(),
            &tags(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("service network"), "{err}");
    }

    #[test]
    fn leftovers_need_reset() {
        let mut f = facts();
        f.leftovers = vec![PathBuf::from("/var/lib/podsec/u7s/etcd/member")];
        let err = plan_for(&["init"], &[], &f, &tags()).unwrap_err();
        assert!(
            err.to_string()
                .contains("/var/lib/podsec/u7s/etcd/member; run again with --reset"),
            "{err}"
        );
        let plan = plan_for(&["init", "--reset"], &[], &f, &tags()).unwrap();
        assert!(plan.steps.iter().any(|s| matches!(
            s,
            Step::RemoveLeftovers {
                confirmed: true,
                ..
            }
        )));
        // a dry run shows the step and what it needs instead of failing
        let plan = plan_for(&["init", "--dry-run"], &[], &f, &tags()).unwrap();
        assert!(plan.render(true).contains("needs --reset"));
    }

    #[test]
    fn substitutes_go_into_the_configuration_not_under_false_tags() {
        let mut t = tags();
        t.0.insert("registry.local/c10f/etcd".into(), vec!["3.5.16-0".into()]);
        let err = plan_for(&["init"], &[], &facts(), &t).unwrap_err();
        assert!(
            err.to_string()
                .contains("etcd: the registry has no tag 3.5.21-0"),
            "{err}"
        );
        let plan = plan_for(
            &["init"],
            &[("U7S_SETAVAILABLEIMAGES", "yes")],
            &facts(),
            &t,
        )
        .unwrap();
        assert!(config(&plan).contains("imageTag: 3.5.16-0"));
        let etcd = plan
            .images
            .iter()
            .find(|i| i.role == ImageRole::Etcd)
            .unwrap();
        assert_eq!(etcd.wanted, "registry.local/c10f/etcd:3.5.16-0");
        assert!(
            plan.notes
                .iter()
                .any(|n| n.starts_with("WARNING: U7S_SETAVAILABLEIMAGES=yes"))
        );
    }

    #[test]
    fn kernel_modules_and_sysctls_are_kept_for_every_boot() {
        // Issue 13 item 3: a rebooted node has them before u7s.service, not only after a
        // one-shot modprobe at deployment; on init and join alike.
        let hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let mut loaded = facts();
        loaded.loaded_modules = host_prep::MODULES.iter().map(|m| m.to_string()).collect();
        loaded.ip_forward = true;
        // The packaged file is there: nothing to write, however the modules are loaded now.
        let mut packaged = facts();
        packaged.modules_persisted = true;
        let plan = plan_for(&["init"], &[], &packaged, &tags()).unwrap();
        assert!(
            !files(&plan)
                .iter()
                .any(|f| f.path.starts_with("/etc/modules-load.d"))
        );
        for (argv, facts) in [
            (vec!["init"], facts()),
            (vec!["init"], loaded),
            (
                vec![
                    "join",
                    "192.0.2.10:6443",
                    "--token",
                    "abcdef.0123456789abcdef",
                    "--discovery-token-ca-cert-hash",
                    hash,
                ],
                facts(),
            ),
        ] {
            let plan = plan_for(&argv, &[], &facts, &tags()).unwrap();
            let files = files(&plan);
            let modules = files
                .iter()
                .find(|f| f.path == Path::new("/etc/modules-load.d/podsec-u7s.conf"))
                .unwrap_or_else(|| panic!("no modules-load.d file for {argv:?}"));
            assert_eq!((modules.mode, modules.user.as_str()), (0o644, "root"));
            let listed: Vec<&str> = modules
                .contents
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect();
            assert_eq!(listed, host_prep::MODULES);
            for needed in [
                "br_netfilter",
                "overlay",
                "vxlan",
                "ip_tables",
                "iptable_nat",
            ] {
                assert!(listed.contains(&needed), "{needed}");
            }
            let sysctl = files
                .iter()
                .find(|f| f.path == Path::new("/etc/sysctl.d/90-podsec-u7s.conf"))
                .unwrap();
            assert!(sysctl.contents.contains("\nnet.ipv4.ip_forward = 1\n"));
        }
    }

    #[test]
    fn join_plans() {
        let hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let worker = plan_for(
            &[
                "join",
                "192.0.2.10:6443",
                "--token",
                "abcdef.0123456789abcdef",
                "--discovery-token-ca-cert-hash",
                hash,
            ],
            &[],
            &facts(),
            &tags(),
        )
        .unwrap();
        let text = worker.render(true);
        assert!(
            !text.contains("audit") && !text.contains("kube-flannel.yml"),
            "{text}"
        );
        assert!(
            !worker
                .images
                .iter()
                .any(|i| i.pull.contains("kube-apiserver"))
        );
        assert!(worker.images.iter().any(|i| i.pull.contains("kube-proxy")));
        assert!(!worker.ports.iter().any(|p| p.parent_port == 6443));
        let cp = plan_for(
            &[
                "join",
                "192.0.2.10:6443",
                "--token",
                "abcdef.0123456789abcdef",
                "--discovery-token-ca-cert-hash",
                hash,
                "--control-plane",
                "--certificate-key",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            ],
            &[],
            &facts(),
            &tags(),
        )
        .unwrap();
        let text = cp.render(true);
        assert!(
            text.contains("PatchAudit") || text.contains("add the audit flags"),
            "{text}"
        );
        assert!(
            text.contains("/usr/bin/kubeadm join --config /etc/podsec/u7s/kubeadm/join.yaml"),
            "{text}"
        );
        assert!(config(&cp).contains("certificateKey: 0011"));
    }

    fn node_config(plan: &Plan) -> NodeConfig {
        plan.steps
            .iter()
            .find_map(|s| match s {
                Step::NodeConfig { config } => Some(config.clone()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn the_runtime_gets_its_typed_node_configuration() {
        let plan = plan_for(&["init"], &[], &facts(), &tags()).unwrap();
        let node = node_config(&plan);
        assert_eq!(node.role, node_config::Role::InitMaster);
        assert_eq!(node.image_repository(), "registry.local/c10f");
        assert_eq!(node.pause_image, "registry.local/c10f/pause:3.10");
        assert_eq!(node.external_ip.to_string(), "192.0.2.20");
        assert_eq!(
            node.control_plane_endpoint.as_deref(),
            Some("192.0.2.20:6443")
        );
        assert!(
            plan.render(true)
                .contains("uid = 0  # u7s-admin's uid, filled in when the account exists")
        );
        // an existing configuration's extra ports (NodePorts an admin published) are kept
        let mut f = facts();
        f.extra_ports = vec!["0.0.0.0:31000:31000/tcp".parse().unwrap()];
        let plan = plan_for(&["init"], &[], &f, &tags()).unwrap();
        assert!(plan.ports.iter().any(|p| p.parent_port == 31000));
        // slirp4netns's network is checked against the host too
        let mut f = facts();
        f.addresses.push(HostAddress {
            interface: "eth1".into(),
            address: Ipv4Addr::new(10, 0, 2, 15),
            network: Ipv4Net::containing(Ipv4Addr::new(10, 0, 2, 15), 24),
        });
        let err = plan_for(&["init"], &[], &f, &tags()).unwrap_err();
        assert!(err.to_string().contains("slirp-cidr"), "{err}");
    }

    #[test]
    fn prepare_only_stops_before_the_node_starts() {
        let plan = plan_for(&["init", "--prepare-only"], &[], &facts(), &tags()).unwrap();
        assert!(
            !plan
                .steps
                .iter()
                .any(|s| matches!(s, Step::StartRuntime | Step::RunKubeadm { .. }))
        );
        assert!(plan.steps.iter().any(|s| matches!(s, Step::File { .. })));
    }

    /// calico from the administrator's manifest: its images checked in the registry and pulled,
    /// its copy applied after init, its pod network and ports; no flannel anywhere.
    #[test]
    fn calico_from_the_administrators_manifest() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::Uid::effective().is_root() {
            return; // the manifest must be root's: only a root test run can write one
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("calico.yaml");
        std::fs::write(&path, calico::tests::SAMPLE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let shown = path.display().to_string();
        let env = [
            ("U7S_CNI_PLUGIN", "calico"),
            ("U7S_CALICO_MANIFEST", shown.as_str()),
        ];
        let mut calico_tags = tags();
        for repository in ["cni", "node", "kube-controllers"] {
            calico_tags.0.insert(
                format!("registry.local/calico/{repository}"),
                vec!["v3.29.1".into()],
            );
        }
        let plan = plan_for(&["init"], &env, &facts(), &calico_tags).unwrap();
        let pulled: Vec<&str> = plan.images.iter().map(|i| i.pull.as_str()).collect();
        for image in [
            "registry.local/calico/cni:v3.29.1",
            "registry.local/calico/node:v3.29.1",
            "registry.local/calico/kube-controllers:v3.29.1",
        ] {
            assert!(pulled.contains(&image), "{pulled:?}");
        }
        assert!(!pulled.iter().any(|i| i.contains("flannel")), "{pulled:?}");
        let copy = files(&plan)
            .into_iter()
            .find(|f| f.path == Path::new(calico::MANIFEST_COPY))
            .expect("the validated copy");
        assert_eq!(copy.contents, calico::tests::SAMPLE);
        assert_eq!((copy.mode, copy.user.as_str()), (0o644, "root"));
        let applied = plan.steps.iter().find_map(|s| match s {
            Step::ApplyCalico { argv } => Some(argv.join(" ")),
            _ => None,
        });
        assert_eq!(
            applied.as_deref(),
            Some(
                "kubectl --kubeconfig /root/.kube/config apply --server-side -f /etc/podsec/u7s/calico.yaml"
            )
        );
        let text = plan.render(true);
        assert!(
            !text.contains("flannel") && !text.contains("kube-flannel.yml"),
            "{text}"
        );
        assert!(text.contains("apply calico: kubectl"), "{text}");
        assert!(
            text.contains(&format!(
                "calico                  the manifest of U7S_CALICO_MANIFEST={shown} (3 images)"
            )),
            "{text}"
        );
        // calico's pod network (192.168.0.0/16 unless the manifest names a pool) and ports
        assert!(config(&plan).contains("podSubnet: 192.168.0.0/16"));
        let node = node_config(&plan);
        assert_eq!(node.cni_plugin, CniPlugin::Calico);
        assert_eq!(node.pod_cidr.to_string(), "192.168.0.0/16");
        let ports: Vec<String> = plan.ports.iter().map(|p| p.to_string()).collect();
        for port in [
            "0.0.0.0:5473:5473/tcp",
            "0.0.0.0:4789:4789/udp",
            "0.0.0.0:51820:51820/udp",
        ] {
            assert!(ports.contains(&port.to_string()), "{ports:?}");
        }
        // --pod-network-cidr must agree with the manifest's pool
        let pooled = calico::tests::SAMPLE.replace(
            "            # - name: CALICO_IPV4POOL_CIDR\n            #   value: \"192.168.0.0/16\"",
            "            - name: CALICO_IPV4POOL_CIDR\n              value: \"10.210.0.0/16\"",
        );
        std::fs::write(&path, &pooled).unwrap();
        let plan = plan_for(&["init"], &env, &facts(), &calico_tags).unwrap();
        assert!(config(&plan).contains("podSubnet: 10.210.0.0/16"));
        let err = plan_for(
            &["init", "--pod-network-cidr", "10.200.0.0/16"],
            &env,
            &facts(),
            &calico_tags,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "CALICO_IPV4POOL_CIDR 10.210.0.0/16 differs from the pod network 10.200.0.0/16"
            ),
            "{err}"
        );
        // a worker pulls calico's images and publishes its ports; only init applies it
        let worker = plan_for(
            &[
                "join",
                "192.0.2.10:6443",
                "--token",
                "abcdef.0123456789abcdef",
                "--discovery-token-ca-cert-hash",
                "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ],
            &env,
            &facts(),
            &calico_tags,
        )
        .unwrap();
        assert!(
            worker
                .images
                .iter()
                .any(|i| i.pull == "registry.local/calico/node:v3.29.1")
        );
        assert!(
            !worker
                .steps
                .iter()
                .any(|s| matches!(s, Step::ApplyCalico { .. } | Step::ApplyFlannel { .. }))
        );
        assert_eq!(node_config(&worker).cni_plugin, CniPlugin::Calico);
        assert!(
            worker
                .ports
                .iter()
                .any(|p| p.to_string() == "0.0.0.0:4789:4789/udp")
        );
        // an image the registry lacks: refused, naming the file and the image
        calico_tags
            .0
            .remove("registry.local/calico/kube-controllers");
        let err = plan_for(&["init"], &env, &facts(), &calico_tags)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "U7S_CALICO_MANIFEST={shown}: image registry.local/calico/kube-controllers: the registry has no tag v3.29.1"
            )),
            "{err}"
        );
        // the file gone: refused, naming it
        std::fs::remove_file(&path).unwrap();
        let err = plan_for(&["init"], &env, &facts(), &calico_tags)
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("U7S_CALICO_MANIFEST={shown}: no such file"));
    }
}
