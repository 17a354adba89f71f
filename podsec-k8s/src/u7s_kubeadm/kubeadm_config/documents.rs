//! kubeadm's documents (InitConfiguration, ClusterConfiguration, JoinConfiguration and the
//! component configurations) as typed structs, built from the node's inputs and rendered as one
//! YAML stream.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::*;
use crate::u7s_kubeadm::flags::CRI_SOCKET;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InitConfiguration {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bootstrap_tokens: Vec<BootstrapToken>,
    node_registration: NodeRegistration,
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_key: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skip_phases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patches: Option<Patches>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<Timeouts>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    groups: Vec<&'static str>,
    usages: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeRegistration {
    name: String,
    cri_socket: &'static str,
    image_pull_policy: &'static str,
    /// Always written: `null` gives control-plane nodes kubeadm's default taint and workers none.
    taints: Option<Vec<()>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiEndpoint {
    advertise_address: String,
    bind_port: u16,
}

#[derive(Debug, Serialize)]
struct Patches {
    directory: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Timeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane_component_health_check: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterConfiguration {
    api_version: &'static str,
    kind: &'static str,
    cluster_name: &'static str,
    kubernetes_version: String,
    control_plane_endpoint: String,
    image_repository: String,
    etcd: Etcd,
    networking: Networking,
    api_server: ApiServer,
    controller_manager: Component,
    scheduler: Component,
    dns: Dns,
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "gates")]
    feature_gates: Vec<(String, bool)>,
}

fn gates<S: Serializer>(gates: &[(String, bool)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(gates.len()))?;
    for (name, state) in gates {
        map.serialize_entry(name, state)?;
    }
    map.end()
}

#[derive(Debug, Serialize)]
struct Etcd {
    local: LocalEtcd,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LocalEtcd {
    image_repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_tag: Option<String>,
    data_dir: &'static str,
    #[serde(skip_serializing_if = "ExtraArgs::is_empty")]
    extra_args: ExtraArgs,
    #[serde(rename = "serverCertSANs")]
    server_cert_sans: Vec<String>,
    #[serde(rename = "peerCertSANs")]
    peer_cert_sans: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Networking {
    service_subnet: String,
    pod_subnet: String,
    dns_domain: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiServer {
    #[serde(rename = "certSANs")]
    cert_sans: Vec<String>,
    #[serde(skip_serializing_if = "ExtraArgs::is_empty")]
    extra_args: ExtraArgs,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_for_control_plane: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(skip_serializing_if = "ExtraArgs::is_empty")]
    extra_args: ExtraArgs,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Dns {
    #[serde(skip_serializing_if = "Option::is_none")]
    image_tag: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeletConfiguration {
    api_version: &'static str,
    kind: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeProxyConfiguration {
    api_version: &'static str,
    kind: &'static str,
    mode: &'static str,
    client_connection: ClientConnection,
    conntrack: Conntrack,
}

#[derive(Debug, Serialize)]
struct ClientConnection {
    kubeconfig: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Conntrack {
    max_per_core: u32,
    tcp_established_timeout: &'static str,
    tcp_close_wait_timeout: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinConfiguration {
    api_version: &'static str,
    kind: &'static str,
    node_registration: NodeRegistration,
    discovery: JoinDiscovery,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane: Option<JoinControlPlane>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skip_phases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patches: Option<Patches>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<Timeouts>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinDiscovery {
    #[serde(skip_serializing_if = "Option::is_none")]
    bootstrap_token: Option<BootstrapTokenDiscovery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<FileDiscovery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_bootstrap_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BootstrapTokenDiscovery {
    token: String,
    api_server_endpoint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ca_cert_hashes: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[serde(rename = "unsafeSkipCAVerification")]
    unsafe_skip_ca_verification: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileDiscovery {
    kube_config_path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinControlPlane {
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_key: Option<String>,
}

fn node_registration(input: &NodeInput) -> NodeRegistration {
    NodeRegistration {
        name: input.node_name.clone(),
        cri_socket: CRI_SOCKET,
        image_pull_policy: "IfNotPresent",
        taints: None,
    }
}

fn patches(input: &NodeInput) -> Option<Patches> {
    input.patches.clone().map(|directory| Patches { directory })
}

fn yaml(value: &impl Serialize) -> Result<String, ConfigError> {
    podsec_common::yaml::to_string(value)
        .map_err(|e| ConfigError::Yaml(podsec_common::i18n::Message::of(&e)))
}

/// The rootless extraArgs of the control-plane components (upstream's templates, without etcd's
/// `enable-v2`: nothing podsec deploys speaks the v2 API, etcd 3.5 deprecated and 3.6 removed it).
fn cluster_configuration(
    input: &NodeInput,
    init: &InitInput,
    api: KubeadmApi,
) -> ClusterConfiguration {
    let adv = input.advertise_address.to_string();
    let mut cert_sans = vec!["127.0.0.1".to_string()];
    for san in &init.cert_extra_sans {
        if !cert_sans.contains(san) {
            cert_sans.push(san.clone());
        }
    }
    ClusterConfiguration {
        api_version: api.api_version(),
        kind: "ClusterConfiguration",
        cluster_name: "kubernetes",
        kubernetes_version: input.version.without_v(),
        control_plane_endpoint: init.control_plane_endpoint.clone(),
        image_repository: init.image_repository.clone(),
        etcd: Etcd {
            local: LocalEtcd {
                image_repository: init.image_repository.clone(),
                image_tag: init.etcd_image_tag.clone(),
                data_dir: ETCD_DATA_DIR,
                extra_args: ExtraArgs::new(
                    api,
                    &[("listen-peer-urls", "https://0.0.0.0:2380".to_string())],
                ),
                server_cert_sans: vec![adv.clone(), "127.0.0.1".into()],
                peer_cert_sans: vec![adv.clone()],
            },
        },
        networking: Networking {
            service_subnet: init.service_subnet.to_string(),
            pod_subnet: init.pod_subnet.to_string(),
            dns_domain: init.dns_domain.clone(),
        },
        api_server: ApiServer {
            cert_sans,
            // No `advertise-address` (upstream's template had it): kubeadm takes each API
            // server's from its node's localAPIEndpoint, while the ClusterConfiguration is
            // shared, so a control plane that joins would advertise the first node's address.
            extra_args: ExtraArgs::new(
                api,
                &[("etcd-servers", "https://127.0.0.1:2379".to_string())],
            ),
            timeout_for_control_plane: (api == KubeadmApi::V1beta3)
                .then_some(CONTROL_PLANE_TIMEOUT),
        },
        controller_manager: Component {
            extra_args: ExtraArgs::new(
                api,
                &[
                    ("allocate-node-cidrs", "true".to_string()),
                    ("cluster-cidr", init.pod_subnet.to_string()),
                    ("service-cluster-ip-range", init.service_subnet.to_string()),
                ],
            ),
        },
        scheduler: Component {
            extra_args: ExtraArgs::new(api, &[]),
        },
        dns: Dns {
            image_tag: init.dns_image_tag.clone(),
        },
        feature_gates: init.feature_gates.clone(),
    }
}

/// The configuration file's text: YAML documents separated by `---`.
pub fn render(input: &NodeInput) -> Result<String, ConfigError> {
    let api = input.version.minor_line().kubeadm_api();
    let mut documents = Vec::new();
    match input.role {
        Role::Init => {
            let init = input.init.as_ref().ok_or(ConfigError::Missing {
                role: input.role,
                what: "init",
            })?;
            let bootstrap_tokens = if init.token.is_some() || init.token_ttl.is_some() {
                vec![BootstrapToken {
                    token: init.token.clone(),
                    ttl: init.token_ttl.clone(),
                    groups: vec![BOOTSTRAP_GROUP],
                    usages: vec!["signing", "authentication"],
                }]
            } else {
                Vec::new()
            };
            documents.push(yaml(&InitConfiguration {
                api_version: api.api_version(),
                kind: "InitConfiguration",
                bootstrap_tokens,
                node_registration: node_registration(input),
                local_api_endpoint: ApiEndpoint {
                    advertise_address: input.advertise_address.to_string(),
                    bind_port: input.bind_port,
                },
                certificate_key: init.certificate_key.clone(),
                skip_phases: input.skip_phases.clone(),
                patches: patches(input),
                timeouts: (api == KubeadmApi::V1beta4).then_some(Timeouts {
                    control_plane_component_health_check: Some(CONTROL_PLANE_TIMEOUT),
                    discovery: None,
                }),
            })?);
            documents.push(yaml(&cluster_configuration(input, init, api))?);
            documents.push(yaml(&KubeletConfiguration {
                api_version: "kubelet.config.k8s.io/v1beta1",
                kind: "KubeletConfiguration",
            })?);
            documents.push(yaml(&KubeProxyConfiguration {
                api_version: "kubeproxy.config.k8s.io/v1alpha1",
                kind: "KubeProxyConfiguration",
                mode: "iptables",
                client_connection: ClientConnection {
                    kubeconfig: "/var/lib/kube-proxy/kubeconfig.conf",
                },
                conntrack: Conntrack {
                    max_per_core: 0,
                    tcp_established_timeout: "0s",
                    tcp_close_wait_timeout: "0s",
                },
            })?);
        }
        Role::Worker | Role::ControlPlane => {
            let join = input.join.as_ref().ok_or(ConfigError::Missing {
                role: input.role,
                what: "join",
            })?;
            let (bootstrap_token, file) = match &join.discovery {
                Discovery::Token {
                    endpoint,
                    token,
                    ca_cert_hashes,
                    unsafe_skip_ca_verification,
                } => (
                    Some(BootstrapTokenDiscovery {
                        token: token.clone(),
                        api_server_endpoint: endpoint.clone(),
                        ca_cert_hashes: ca_cert_hashes.clone(),
                        unsafe_skip_ca_verification: *unsafe_skip_ca_verification,
                    }),
                    None,
                ),
                Discovery::File { kubeconfig } => (
                    None,
                    Some(FileDiscovery {
                        kube_config_path: kubeconfig.clone(),
                    }),
                ),
            };
            let control_plane = (input.role == Role::ControlPlane).then(|| JoinControlPlane {
                local_api_endpoint: ApiEndpoint {
                    advertise_address: input.advertise_address.to_string(),
                    bind_port: input.bind_port,
                },
                certificate_key: join.certificate_key.clone(),
            });
            documents.push(yaml(&JoinConfiguration {
                api_version: api.api_version(),
                kind: "JoinConfiguration",
                node_registration: node_registration(input),
                discovery: JoinDiscovery {
                    bootstrap_token,
                    file,
                    tls_bootstrap_token: join.tls_bootstrap_token.clone(),
                    timeout: (api == KubeadmApi::V1beta3).then_some(DISCOVERY_TIMEOUT),
                },
                control_plane,
                skip_phases: input.skip_phases.clone(),
                patches: patches(input),
                timeouts: (api == KubeadmApi::V1beta4).then(|| Timeouts {
                    control_plane_component_health_check: (input.role == Role::ControlPlane)
                        .then_some(CONTROL_PLANE_TIMEOUT),
                    discovery: Some(DISCOVERY_TIMEOUT),
                }),
            })?);
        }
    }
    Ok(documents.join("---\n"))
}
