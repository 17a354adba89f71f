//! podsec-k8s-rbac-create-kubeconfig: a client certificate issued by the cluster, and a kubeconfig.

use podsec_common::msg;
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use podsec_common::cli;
use podsec_common::host::users;

use crate::api::{self, AdminConfig};
use crate::csr;
use crate::error::Error;
use crate::names;
use crate::user_kubeconfig;

pub const NAME: &str = "podsec-k8s-rbac-create-kubeconfig";
/// Whether the command does its job yet (see `--status`).
pub const IMPLEMENTED: bool = true;

pub const SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// Issue a client certificate for a user through a CertificateSigningRequest (CN = user,
/// O = groups) and write ~user/.kube/config (0600) for the cluster of the administrator's
/// kubeconfig.
#[derive(Parser, Debug)]
#[command(name = NAME, version, after_help = crate::KUBECONFIG_HELP)]
pub struct Args {
    /// The user, optionally with the remote account of the cluster (accepted for compatibility)
    #[arg(value_name = "user[@remote_user]")]
    pub user: String,
    /// Groups of the user (default k8s)
    #[arg(value_name = "group")]
    pub groups: Vec<String>,
    /// Allow system: groups such as system:masters
    #[arg(long)]
    pub allow_system_groups: bool,
    /// Delete an existing CertificateSigningRequest of the same name first
    #[arg(long)]
    pub replace_csr: bool,
    /// How long to wait for the cluster to issue the certificate
    #[arg(long, value_name = "seconds", default_value_t = 60)]
    pub wait: u64,
}

pub fn main(argv: Vec<OsString>) -> ExitCode {
    cli::run_command(NAME, argv, run)
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    // `@remote_user` named the account to scp ca.crt from; the CA now comes from the kubeconfig.
    let (user, remote) = match args.user.split_once('@') {
        Some((user, remote)) => (user.to_string(), Some(remote.to_string())),
        None => (args.user.clone(), None),
    };
    names::check_account(&user)?;
    if let Some(remote) = &remote {
        names::check_account(remote).map_err(|_| {
            Error::Invalid(msg!(
                "invalid remote user '{}' in '{}': it must be an account name (it is accepted for compatibility and not used)",
                remote.escape_debug(),
                args.user.escape_debug()
            ))
        })?;
    }
    let groups = if args.groups.is_empty() {
        vec![crate::create_user::K8S_GROUP.to_string()]
    } else {
        args.groups.clone()
    };
    for group in &groups {
        names::check_group(group, args.allow_system_groups)?;
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = groups.iter().find(|g| !seen.insert(g.as_str())) {
        return Err(Error::Invalid(msg!("group '{dup}' is given twice")));
    }
    let account = users::user(&user)?;
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 && euid != account.uid {
        return Err(Error::Failed(msg!(
            "only root (or '{user}' itself) can write ~{user}/.kube/config; the effective uid is {euid}"
        )));
    }
    let admin = AdminConfig::load()?;
    let cluster = admin.current_cluster()?;
    // Fail on a planted symlink or an unwritable home before asking the cluster for anything.
    let kube_dir = user_kubeconfig::open_kube_dir(&account)?;

    let key = csr::generate_key()?;
    let request = csr::request_pem(&key, &user, &groups)?;
    let wait = Duration::from_secs(args.wait);
    let cert_pem = api::block_on(issue(&admin, &user, request, args.replace_csr, wait))??;
    let issued = csr::check_issued(&cert_pem, &key, &user, &groups)?;
    let key_pem = key.serialize_pem();
    let text = user_kubeconfig::render(&cluster, &user, &cert_pem, &key_pem)?;
    // The new credentials must work before they are handed over.
    api::block_on(check_login(&text, &user, &groups))??;
    user_kubeconfig::write(&kube_dir, &account, &text)?;
    println!(
        "{NAME}: {}",
        podsec_common::i18n::translate_message(&msg!(
            "{}/config written for '{user}' (groups {}), certificate valid until {}, cluster {} at {}",
            kube_dir.path().display(),
            groups.join(","),
            issued.not_after,
            cluster.name,
            cluster.server
        ))
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates the CSR, approves it, and waits (bounded) for the signer's certificate.
async fn issue(
    admin: &AdminConfig,
    user: &str,
    request: String,
    replace: bool,
    wait: Duration,
) -> Result<Vec<u8>, Error> {
    let client = admin.client().await?;
    let csrs: Api<CertificateSigningRequest> = Api::all(client);
    match csrs.get_opt(user).await {
        Ok(None) => {}
        Ok(Some(_)) if replace => {
            csrs.delete(user, &DeleteParams::default())
                .await
                .map_err(|e| {
                    Error::api(msg!("cannot delete CertificateSigningRequest '{user}'"), &e)
                })?;
            wait_gone(&csrs, user).await?;
        }
        Ok(Some(_)) => {
            return Err(Error::Failed(msg!(
                "a CertificateSigningRequest '{user}' exists already; add --replace-csr to replace it"
            )));
        }
        Err(e) => {
            return Err(Error::api(
                msg!("cannot read CertificateSigningRequest '{user}'"),
                &e,
            ));
        }
    }
    let object = CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(user.to_string()),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: SIGNER.to_string(),
            usages: Some(vec!["client auth".to_string()]),
            // No expirationSeconds: upstream asked 5 years and got the signer's cap silently;
            // the signer's own duration is used and reported.
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    };
    csrs.create(&PostParams::default(), &object)
        .await
        .map_err(|e| Error::api(msg!("cannot create CertificateSigningRequest '{user}'"), &e))?;
    let approval = CertificateSigningRequest {
        status: Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some("PodsecRbacApprove".into()),
                message: Some(format!("approved by {NAME}")),
                ..CertificateSigningRequestCondition::default()
            }]),
            certificate: None,
        }),
        ..object.clone()
    };
    csrs.patch_approval(user, &PatchParams::default(), &Patch::Merge(&approval))
        .await
        .map_err(|e| {
            Error::api(
                msg!("cannot approve CertificateSigningRequest '{user}'"),
                &e,
            )
        })?;
    let deadline = Instant::now() + wait;
    loop {
        let current = csrs
            .get(user)
            .await
            .map_err(|e| Error::api(msg!("cannot read CertificateSigningRequest '{user}'"), &e))?;
        if let Some(status) = &current.status {
            for c in status.conditions.iter().flatten() {
                if (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True" {
                    return Err(Error::Failed(msg!(
                        "CertificateSigningRequest '{user}' {}: {}",
                        c.type_.to_lowercase(),
                        c.message.as_deref().unwrap_or("no reason given")
                    )));
                }
            }
            if let Some(cert) = status.certificate.as_ref().filter(|c| !c.0.is_empty()) {
                return Ok(cert.0.clone());
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::Failed(msg!(
                "CertificateSigningRequest '{user}' was approved but no certificate was issued within {} s (is kube-controller-manager running with its csrsigning controller?)",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_gone(csrs: &Api<CertificateSigningRequest>, user: &str) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match csrs.get_opt(user).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(Some(_)) => {
                return Err(Error::Failed(msg!(
                    "CertificateSigningRequest '{user}' is still there 30 s after its deletion"
                )));
            }
            Err(e) => {
                return Err(Error::api(
                    msg!("cannot read CertificateSigningRequest '{user}'"),
                    &e,
                ));
            }
        }
    }
}

/// Logs in with the new kubeconfig and checks who the cluster says it is.
async fn check_login(text: &[u8], user: &str, groups: &[String]) -> Result<(), Error> {
    let yaml = std::str::from_utf8(text).map_err(|e| Error::Failed(e.to_string()))?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml)
        .map_err(|e| Error::Failed(msg!("the new kubeconfig does not read back: {e}")))?;
    let client = api::client_for(kubeconfig, "the new kubeconfig").await?;
    let reviews: Api<SelfSubjectReview> = Api::all(client);
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| Error::api(msg!("the new credentials of '{user}' do not work"), &e))?;
    let info = review.status.and_then(|s| s.user_info).unwrap_or_default();
    let username = info.username.unwrap_or_default();
    let got_groups = info.groups.unwrap_or_default();
    if username != user || groups.iter().any(|g| !got_groups.contains(g)) {
        return Err(Error::Failed(msg!(
            "the cluster sees the new credentials as '{username}' in groups {}, not '{user}' in {}",
            got_groups.join(","),
            groups.join(",")
        )));
    }
    Ok(())
}
