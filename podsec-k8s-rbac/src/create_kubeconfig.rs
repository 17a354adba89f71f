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
use kube::api::{DeleteParams, PostParams};
use podsec_common::cli;
use podsec_common::host::users;
use podsec_common::i18n::{Localize, Message};

use crate::api::{self, AdminConfig};
use crate::csr;
use crate::error::Error;
use crate::names;
use crate::user_kubeconfig;

pub const NAME: &str = "podsec-k8s-rbac-create-kubeconfig";

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
    /// Replace an existing ~/.kube/config of root or u7s-admin (kept as a backup)
    #[arg(long)]
    pub force: bool,
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
    user_kubeconfig::check_replace(&kube_dir, &account, args.force)?;

    let key = csr::generate_key()?;
    let request = csr::request_pem(&key, &user, &groups)?;
    let wait = Duration::from_secs(args.wait);
    let cert_pem = api::block_on(async {
        let csrs: Api<CertificateSigningRequest> = Api::all(admin.client().await?);
        issue(&csrs, &user, request, args.replace_csr, wait).await
    })??;
    let issued = csr::check_issued(&cert_pem, &key, &user, &groups)?;
    let key_pem = key.serialize_pem();
    let text = user_kubeconfig::render(&cluster, &user, &cert_pem, &key_pem)?;
    // The new credentials must work before they are handed over.
    api::block_on(check_login(&text, &user, &groups))??;
    if args.force
        && let Some(name) = user_kubeconfig::backup(&kube_dir, &account)?
    {
        println!(
            "{NAME}: {}",
            msg!(
                "the previous {}/config is kept as {name}",
                kube_dir.path().display()
            )
            .localized()
        );
    }
    user_kubeconfig::write(&kube_dir, &account, &text)?;
    println!(
        "{NAME}: {}",
        msg!(
            "{}/config written for '{user}' (groups {}), certificate valid until {}, cluster {} at {}",
            kube_dir.path().display(),
            groups.join(","),
            issued.not_after,
            cluster.name,
            cluster.server
        )
        .localized()
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates the CSR, approves it, and waits (bounded) for the signer's certificate. The approval
/// and the certificate are bound to the CSR this created (its UID and resourceVersion): one
/// deleted and recreated under the same name meanwhile, with someone else's key, is neither
/// approved nor taken.
async fn issue(
    csrs: &Api<CertificateSigningRequest>,
    user: &str,
    request: String,
    replace: bool,
    wait: Duration,
) -> Result<Vec<u8>, Error> {
    match csrs.get_opt(user).await {
        Ok(None) => {}
        Ok(Some(_)) if replace => {
            csrs.delete(user, &DeleteParams::default())
                .await
                .map_err(|e| {
                    Error::api(msg!("cannot delete CertificateSigningRequest '{user}'"), &e)
                })?;
            wait_gone(csrs, user).await?;
            step("csr-deleted", user);
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
    let created = csrs
        .create(&PostParams::default(), &object)
        .await
        .map_err(|e| Error::api(msg!("cannot create CertificateSigningRequest '{user}'"), &e))?;
    step("csr-created", user);
    let uid = created.metadata.uid.clone().unwrap_or_default();
    if uid.is_empty() || created.metadata.resource_version.is_none() {
        return Err(Error::Failed(msg!(
            "the created CertificateSigningRequest '{user}' has no UID or resourceVersion"
        )));
    }
    // A replace (PUT) of the created object itself: the API server refuses it (409) when the
    // CSR of that name is no longer the one created here.
    let mut approval = created.clone();
    approval.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("PodsecRbacApprove".into()),
            message: Some(format!("approved by {NAME}")),
            ..CertificateSigningRequestCondition::default()
        }]),
        certificate: None,
    });
    csrs.replace_subresource("approval", user, &PostParams::default(), &approval)
        .await
        .map_err(|e| {
            Error::api(
                msg!("cannot approve CertificateSigningRequest '{user}'"),
                &e,
            )
        })?;
    step("csr-approved", user);
    let deadline = Instant::now() + wait;
    loop {
        let current = csrs
            .get(user)
            .await
            .map_err(|e| Error::api(msg!("cannot read CertificateSigningRequest '{user}'"), &e))?;
        if current.metadata.uid.as_deref() != Some(uid.as_str()) {
            return Err(Error::Failed(msg!(
                "CertificateSigningRequest '{user}' was replaced by another one after it was created; nothing is taken from it"
            )));
        }
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
    let yaml =
        std::str::from_utf8(text).map_err(|e| Error::Failed(Message::verbatim(e.to_string())))?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml)
        .map_err(|e| Error::Failed(msg!("the new kubeconfig does not read back: {e}")))?;
    let client = api::client_for(kubeconfig, &msg!("the new kubeconfig")).await?;
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

/// A failpoint after a write to the API server (common/src/host/failpoint.rs).
fn step(what: &str, user: &str) {
    podsec_common::host::failpoint::step(what, std::path::Path::new(&format!("csr/{user}")));
}

#[cfg(test)]
mod tests {
    //! The approval against a fake API server where someone deletes the CSR right after it was
    //! created and makes their own under the same name (another key, the same user name):
    //! deterministic, unlike a race of real processes.

    use super::*;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    const PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

    struct Server {
        csr: Option<Value>,
        version: u64,
        /// Replace the CSR by a foreign one right after it is created.
        swap: bool,
        log: Vec<String>,
    }

    fn status(code: u16, reason: &str) -> (u16, Value) {
        (
            code,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("fake: {reason}"), "reason": reason, "code": code}),
        )
    }

    impl Server {
        fn store(&mut self, mut csr: Value, uid: &str) -> Value {
            self.version += 1;
            csr["metadata"]["uid"] = json!(uid);
            csr["metadata"]["resourceVersion"] = json!(self.version.to_string());
            self.csr = Some(csr.clone());
            csr
        }

        fn approved(&self) -> bool {
            self.csr
                .as_ref()
                .is_some_and(|c| c["status"]["conditions"][0]["type"] == "Approved")
        }

        fn handle(&mut self, method: &http::Method, path: &str, body: &[u8]) -> (u16, Value) {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            match (method.as_str(), path) {
                ("GET", p) if p == format!("{PATH}/alice") => match &self.csr {
                    Some(csr) => (200, csr.clone()),
                    None => status(404, "NotFound"),
                },
                ("POST", PATH) => {
                    let created = self.store(body, "created-uid");
                    if self.swap {
                        let mut foreign = created.clone();
                        foreign["spec"]["request"] = json!("Zm9yZWlnbg==");
                        self.store(foreign, "foreign-uid");
                    }
                    (201, created)
                }
                ("PUT", p) if p == format!("{PATH}/alice/approval") => {
                    let current = self.csr.clone().unwrap();
                    if body["metadata"]["uid"] != current["metadata"]["uid"]
                        || body["metadata"]["resourceVersion"]
                            != current["metadata"]["resourceVersion"]
                    {
                        return status(409, "Conflict");
                    }
                    let mut approved = current;
                    approved["status"] = body["status"].clone();
                    // the signer at once
                    approved["status"]["certificate"] = json!("Q0VSVA==");
                    (200, self.store(approved, "created-uid"))
                }
                _ => panic!("unexpected request {method} {path}"),
            }
        }
    }

    fn issue_against(swap: bool) -> (Result<Vec<u8>, Error>, Arc<Mutex<Server>>) {
        let server = Arc::new(Mutex::new(Server {
            csr: None,
            version: 1,
            swap,
            log: Vec::new(),
        }));
        let shared = server.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let server = shared.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.unwrap();
                let mut server = server.lock().unwrap();
                let (code, answer) = server.handle(&parts.method, parts.uri.path(), &body);
                server.log.push(format!("{} {code}", parts.method));
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                )
            }
        });
        let result = api::block_on(async move {
            let csrs: Api<CertificateSigningRequest> =
                Api::all(kube::Client::new(service, "default"));
            issue(
                &csrs,
                "alice",
                "REQUEST".into(),
                false,
                Duration::from_secs(2),
            )
            .await
        })
        .unwrap();
        (result, server)
    }

    #[test]
    fn only_the_csr_this_created_is_approved() {
        let (result, server) = issue_against(false);
        assert_eq!(result.unwrap(), b"CERT");
        assert_eq!(
            server.lock().unwrap().log,
            ["GET 404", "POST 201", "PUT 200", "GET 200"]
        );

        // Swapped for a foreign CSR between create and approve: refused, nothing approved.
        let (result, server) = issue_against(true);
        let err = result.unwrap_err().to_string();
        assert!(
            err.starts_with("cannot approve CertificateSigningRequest 'alice'"),
            "{err}"
        );
        let server = server.lock().unwrap();
        assert!(!server.approved(), "the foreign CSR was approved");
        assert_eq!(server.log, ["GET 404", "POST 201", "PUT 409"]);
    }
}
