//! The typed flags of init and join, built from the flags the parser read, each value checked.

use std::net::{IpAddr, Ipv4Addr};

use podsec_common::{msg, tr};

use super::error::{FlagError, invalid};
use super::parser::Occurrence;
use super::values::{
    bootstrap_token, check_endpoint, check_repository, cidr, feature_gates, ipv4, is_dns_subdomain,
    is_go_duration, is_wildcard_dns, port,
};
use super::{CERT_DIR, CRI_SOCKET};
use crate::u7s_kubeadm::network::Ipv4Net;
use crate::u7s_kubeadm::versions::{VersionError, VersionRequest};

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

pub(super) fn common_flags(occurrences: &[Occurrence]) -> Result<CommonFlags, FlagError> {
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

pub(super) fn init_flags(
    common: CommonFlags,
    occurrences: &[Occurrence],
) -> Result<InitFlags, FlagError> {
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

pub(super) fn join_flags(
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
