//! Building a plan from the flags, the environment, the host's facts, the registry and the
//! package index.

use super::host_steps::{account_steps, kernel_steps, leftover_step};
use super::step::{dir, file};
use super::*;
use podsec_common::i18n::Message;

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
                    reason: Message::of(&e),
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
    let config = NodeConfig {
        role: match c.role {
            Role::Init => node_config::Role::InitMaster,
            Role::ControlPlane => node_config::Role::ControlPlane,
            Role::Worker => node_config::Role::Worker,
        },
        kubernetes_version: c.version.value,
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
