//! Read-modify-write of RoleBindings and ClusterRoleBindings: roleRef verified, subjects matched
//! on (kind User, name), conflicts (409) retried from a fresh read after a random backoff, every
//! failure an error.

use podsec_common::i18n::Message;
use podsec_common::msg;
use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::{Api, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::binding_args::{RoleType, Target};
use crate::error::{Error, is_conflict, is_not_found};

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Reads and writes before giving up. Each round of a race has a winner, so writers racing on one
/// binding need about as many attempts as there are of them; the backoff keeps the losers from
/// colliding again in lockstep (with 5 immediate retries, some of 8 concurrent bindrole failed).
const ATTEMPTS: u32 = 12;

/// Waits before retry number `attempt` (1, 2, ...): a random time below 20 ms × 2^attempt, at
/// most 1 s ("full jitter"; the randomness of std's hash keys is enough here).
async fn backoff(attempt: u32) {
    use std::hash::BuildHasher;
    let cap_ms = (20u64 << attempt.min(6)).min(1000);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    tokio::time::sleep(Duration::from_millis(random % cap_ms)).await;
}

/// RoleBinding and ClusterRoleBinding have the same shape.
pub trait Binding:
    kube::Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned
{
    fn make(meta: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self;
    fn role_ref(&self) -> &RoleRef;
    fn subjects_mut(&mut self) -> &mut Option<Vec<Subject>>;
}

impl Binding for RoleBinding {
    fn make(metadata: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self {
        RoleBinding {
            metadata,
            role_ref,
            subjects: Some(subjects),
        }
    }
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects_mut(&mut self) -> &mut Option<Vec<Subject>> {
        &mut self.subjects
    }
}

impl Binding for ClusterRoleBinding {
    fn make(metadata: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self {
        ClusterRoleBinding {
            metadata,
            role_ref,
            subjects: Some(subjects),
        }
    }
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects_mut(&mut self) -> &mut Option<Vec<Subject>> {
        &mut self.subjects
    }
}

/// The User subject of `user`, as kubectl writes it.
pub fn user_subject(user: &str) -> Subject {
    Subject {
        api_group: Some(RBAC_GROUP.into()),
        kind: "User".into(),
        name: user.into(),
        namespace: None,
    }
}

/// Whether `subject` is the User `user` (never a Group or ServiceAccount of the same name).
pub fn is_user(subject: &Subject, user: &str) -> bool {
    subject.kind == "User"
        && subject.name == user
        && matches!(
            subject.api_group.as_deref(),
            None | Some("") | Some(RBAC_GROUP)
        )
}

/// What the binding must refer to. `role` on unbind matches either kind (get-userroles prints
/// `role <name>` for RoleBindings to ClusterRoles too).
fn expected_kinds(target: &Target, unbinding: bool) -> &'static [&'static str] {
    match target.role_type {
        RoleType::Role if unbinding => &["Role", "ClusterRole"],
        RoleType::Role => &["Role"],
        RoleType::RoleClusterRole | RoleType::ClusterRole => &["ClusterRole"],
    }
}

fn check_role_ref(target: &Target, role_ref: &RoleRef, unbinding: bool) -> Result<(), Error> {
    let kinds = expected_kinds(target, unbinding);
    if role_ref.api_group == RBAC_GROUP
        && kinds.contains(&role_ref.kind.as_str())
        && role_ref.name == target.role
    {
        return Ok(());
    }
    let role = &target.role;
    let wanted = match kinds {
        [kind] => Message::verbatim(format!("{kind} '{role}'")),
        _ => msg!("Role '{role}' or ClusterRole '{role}'"),
    };
    Err(Error::Failed(msg!(
        "{} refers to {} '{}', not {wanted}; nothing changed",
        target.binding_label(),
        role_ref.kind,
        role_ref.name
    )))
}

fn api<K>(client: &Client, target: &Target) -> Api<K>
where
    K: Binding + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    Api::namespaced(
        client.clone(),
        target.namespace.as_deref().unwrap_or_default(),
    )
}

/// bindrole.
pub async fn bind(client: Client, target: &Target) -> Result<Message, Error> {
    check_role_exists(&client, target).await?;
    match &target.namespace {
        Some(_) => bind_in(api::<RoleBinding>(&client, target), target).await,
        None => bind_in(Api::<ClusterRoleBinding>::all(client), target).await,
    }
}

/// unbindrole.
pub async fn unbind(client: Client, target: &Target) -> Result<Message, Error> {
    match &target.namespace {
        Some(_) => unbind_in(api::<RoleBinding>(&client, target), target).await,
        None => unbind_in(Api::<ClusterRoleBinding>::all(client), target).await,
    }
}

async fn check_role_exists(client: &Client, target: &Target) -> Result<(), Error> {
    let result = match (&target.namespace, target.role_type) {
        (Some(ns), kind) => {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            match namespaces.get_opt(ns).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Error::Failed(msg!("namespace '{ns}' does not exist")));
                }
                Err(e) => return Err(Error::api(msg!("cannot read namespace '{ns}'"), &e)),
            }
            if kind == RoleType::Role {
                let roles: Api<Role> = Api::namespaced(client.clone(), ns);
                roles.get_opt(&target.role).await.map(|r| r.is_some())
            } else {
                let roles: Api<ClusterRole> = Api::all(client.clone());
                roles.get_opt(&target.role).await.map(|r| r.is_some())
            }
        }
        (None, _) => {
            let roles: Api<ClusterRole> = Api::all(client.clone());
            roles.get_opt(&target.role).await.map(|r| r.is_some())
        }
    };
    let what = match (&target.namespace, target.role_type) {
        (Some(ns), RoleType::Role) => msg!("Role '{}' in namespace '{ns}'", target.role),
        _ => msg!("ClusterRole '{}'", target.role),
    };
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Failed(msg!("{what} does not exist"))),
        Err(e) => Err(Error::api(msg!("cannot read {what}"), &e)),
    }
}

async fn bind_in<K: Binding>(api: Api<K>, target: &Target) -> Result<Message, Error> {
    let label = target.binding_label();
    let role_kind = match target.role_type {
        RoleType::Role => "Role",
        _ => "ClusterRole",
    };
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let existing = api
            .get_opt(&target.binding)
            .await
            .map_err(|e| Error::api(msg!("cannot read {label}"), &e))?;
        match existing {
            None => {
                let meta = ObjectMeta {
                    name: Some(target.binding.clone()),
                    namespace: target.namespace.clone(),
                    ..ObjectMeta::default()
                };
                let role_ref = RoleRef {
                    api_group: RBAC_GROUP.into(),
                    kind: role_kind.into(),
                    name: target.role.clone(),
                };
                let object = K::make(meta, role_ref, vec![user_subject(&target.user)]);
                match api.create(&PostParams::default(), &object).await {
                    Ok(_) => {
                        step("created", &label);
                        return Ok(msg!(
                            "{label} created: user '{}' bound to {role_kind} '{}'",
                            target.user,
                            target.role
                        ));
                    }
                    // created by someone else meanwhile: read it and decide again
                    Err(e) if is_conflict(&e) => continue,
                    Err(e) => return Err(Error::api(msg!("cannot create {label}"), &e)),
                }
            }
            Some(mut object) => {
                check_role_ref(target, object.role_ref(), false)?;
                let subjects = object.subjects_mut().get_or_insert_with(Vec::new);
                if subjects.iter().any(|s| is_user(s, &target.user)) {
                    return Ok(msg!(
                        "user '{}' is already bound by {label}; nothing changed",
                        target.user
                    ));
                }
                subjects.push(user_subject(&target.user));
                match api
                    .replace(&target.binding, &PostParams::default(), &object)
                    .await
                {
                    Ok(_) => {
                        step("replaced", &label);
                        return Ok(msg!(
                            "user '{}' added to {label} ({role_kind} '{}')",
                            target.user,
                            target.role
                        ));
                    }
                    Err(e) if is_conflict(&e) => continue,
                    Err(e) => return Err(Error::api(msg!("cannot update {label}"), &e)),
                }
            }
        }
    }
    Err(too_busy(&label))
}

async fn unbind_in<K: Binding>(api: Api<K>, target: &Target) -> Result<Message, Error> {
    let label = target.binding_label();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let Some(mut object) = api
            .get_opt(&target.binding)
            .await
            .map_err(|e| Error::api(msg!("cannot read {label}"), &e))?
        else {
            return Err(Error::Failed(msg!("{label} does not exist")));
        };
        check_role_ref(target, object.role_ref(), true)?;
        let subjects = object.subjects_mut().take().unwrap_or_default();
        let before = subjects.len();
        let remaining: Vec<Subject> = subjects
            .into_iter()
            .filter(|s| !is_user(s, &target.user))
            .collect();
        if remaining.len() == before {
            return Err(Error::Failed(msg!(
                "user '{}' is not bound by {label}; nothing changed",
                target.user
            )));
        }
        let result = if remaining.is_empty() {
            let meta = object.meta();
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: meta.resource_version.clone(),
                    uid: meta.uid.clone(),
                }),
                ..DeleteParams::default()
            };
            api.delete(&target.binding, &params).await.map(|_| {
                msg!(
                    "user '{}' removed; {label} had no other subject and was deleted",
                    target.user
                )
            })
        } else {
            *object.subjects_mut() = Some(remaining);
            api.replace(&target.binding, &PostParams::default(), &object)
                .await
                .map(|_| msg!("user '{}' removed from {label}", target.user))
        };
        match result {
            Ok(message) => {
                step("unbound", &label);
                return Ok(message);
            }
            Err(e) if is_conflict(&e) || is_not_found(&e) => continue,
            Err(e) => return Err(Error::api(msg!("cannot update {label}"), &e)),
        }
    }
    Err(too_busy(&label))
}

/// A failpoint after a write to the API server (common/src/host/failpoint.rs), named by the
/// binding's English label.
fn step(what: &str, label: &Message) {
    podsec_common::host::failpoint::step(what, std::path::Path::new(label.english()));
}

fn too_busy(label: &Message) -> Error {
    Error::Failed(msg!(
        "{label} kept changing under us ({ATTEMPTS} conflicting writes); try again",
        label = *label
    ))
}

#[cfg(test)]
mod tests {
    //! The retry on 409 against a fake API server holding one RoleBinding, where "another writer"
    //! changes the binding right after the command has read it: deterministic, unlike the race
    //! of real processes in tests/tests/rbac.rs.

    use super::*;
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use http::{Method, Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    const PATH: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/ns1/rolebindings";

    type Writer = Box<dyn FnMut(&mut Option<Value>) -> bool + Send>;

    struct Server {
        binding: Option<Value>,
        version: u64,
        /// The other writer: runs after each of the command's reads; true when it wrote.
        other: Option<Writer>,
        /// What the command asked and what it was told: "GET 200", "PUT 409", ...
        log: Vec<String>,
    }

    fn binding(users: &[&str]) -> Option<Value> {
        let subjects: Vec<Value> = users
            .iter()
            .map(|u| json!({"apiGroup": RBAC_GROUP, "kind": "User", "name": u}))
            .collect();
        Some(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "ns1", "uid": "u1"},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"},
            "subjects": subjects,
        }))
    }

    fn add_user(binding: &mut Option<Value>, user: &str) {
        let subject = json!({"apiGroup": RBAC_GROUP, "kind": "User", "name": user});
        match binding {
            Some(b) => b["subjects"].as_array_mut().unwrap().push(subject),
            None => *binding = self::binding(&[user]),
        }
    }

    fn users(binding: &Option<Value>) -> Option<Vec<String>> {
        binding.as_ref().map(|b| {
            b["subjects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect()
        })
    }

    fn status(code: u16, reason: &str) -> (u16, Value) {
        let failure = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("fake: {reason}"), "reason": reason, "code": code});
        (code, failure)
    }

    impl Server {
        fn new(binding: Option<Value>, other: Option<Writer>) -> Arc<Mutex<Server>> {
            Arc::new(Mutex::new(Server {
                binding,
                version: 1,
                other,
                log: Vec::new(),
            }))
        }

        fn current(&self) -> Value {
            let mut b = self.binding.clone().unwrap();
            b["metadata"]["resourceVersion"] = json!(self.version.to_string());
            b
        }

        fn other_writes(&mut self) {
            if let Some(other) = self.other.as_mut()
                && other(&mut self.binding)
            {
                self.version += 1;
            }
        }

        fn stale(&self, version: &Value) -> bool {
            version.as_str() != Some(self.version.to_string().as_str())
        }

        fn handle(&mut self, method: &Method, path: &str, body: &[u8]) -> (u16, Value) {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let named = path == format!("{PATH}/rb");
            match (method.as_str(), named) {
                ("GET", true) => {
                    let answer = match self.binding {
                        Some(_) => (200, self.current()),
                        None => status(404, "NotFound"),
                    };
                    self.other_writes();
                    answer
                }
                ("POST", false) if self.binding.is_some() => status(409, "AlreadyExists"),
                ("POST", false) => {
                    self.binding = Some(body);
                    self.version += 1;
                    (201, self.current())
                }
                (_, true) if self.binding.is_none() => status(404, "NotFound"),
                ("PUT", true) if self.stale(&body["metadata"]["resourceVersion"]) => {
                    status(409, "Conflict")
                }
                ("PUT", true) => {
                    self.binding = Some(body);
                    self.version += 1;
                    (200, self.current())
                }
                ("DELETE", true) => {
                    let pre = &body["preconditions"];
                    if self.stale(&pre["resourceVersion"]) || pre["uid"] != "u1" {
                        status(409, "Conflict")
                    } else {
                        self.binding = None;
                        (
                            200,
                            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                        )
                    }
                }
                _ => panic!("unexpected request {method} {path}"),
            }
        }
    }

    fn client(server: Arc<Mutex<Server>>) -> Client {
        let service = tower::service_fn(move |request: Request<Body>| {
            let server = server.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.unwrap();
                let mut server = server.lock().unwrap();
                let (code, answer) = server.handle(&parts.method, parts.uri.path(), &body);
                server.log.push(format!("{} {code}", parts.method));
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        Client::new(service, "default")
    }

    fn target(user: &str) -> Target {
        Target {
            user: user.into(),
            role_type: RoleType::RoleClusterRole,
            role: "view".into(),
            binding: "rb".into(),
            namespace: Some("ns1".into()),
        }
    }

    /// Runs bind (or unbind) of `user` against `server`.
    fn run(server: &Arc<Mutex<Server>>, user: &str, binding: bool) -> Result<Message, Error> {
        let server = server.clone();
        crate::api::block_on(async move {
            let api: Api<RoleBinding> = Api::namespaced(client(server), "ns1");
            if binding {
                bind_in(api, &target(user)).await
            } else {
                unbind_in(api, &target(user)).await
            }
        })
        .unwrap()
    }

    /// Another writer that changes the binding once, right after the command's first read.
    fn once(mut write: impl FnMut(&mut Option<Value>) + Send + 'static) -> Option<Writer> {
        let mut done = false;
        Some(Box::new(move |b: &mut Option<Value>| {
            let first = !std::mem::replace(&mut done, true);
            if first {
                write(b);
            }
            first
        }))
    }

    #[test]
    fn a_conflicting_update_is_retried_from_a_fresh_read() {
        let server = Server::new(binding(&["bob"]), once(|b| add_user(b, "carol")));
        let message = run(&server, "alice", true).unwrap();
        assert!(message.english().contains("added"), "{message}");
        let s = server.lock().unwrap();
        assert_eq!(s.log, ["GET 200", "PUT 409", "GET 200", "PUT 200"]);
        // carol, added meanwhile, is kept
        assert_eq!(users(&s.binding).unwrap(), ["bob", "carol", "alice"]);
    }

    #[test]
    fn a_binding_created_meanwhile_is_read_and_updated() {
        let server = Server::new(None, once(|b| add_user(b, "dave")));
        run(&server, "alice", true).unwrap();
        let s = server.lock().unwrap();
        assert_eq!(s.log, ["GET 404", "POST 409", "GET 200", "PUT 200"]);
        assert_eq!(users(&s.binding).unwrap(), ["dave", "alice"]);
    }

    #[test]
    fn an_unbind_never_deletes_a_binding_someone_added_to() {
        let server = Server::new(binding(&["alice"]), once(|b| add_user(b, "bob")));
        let message = run(&server, "alice", false).unwrap();
        assert!(message.english().contains("removed from"), "{message}");
        let s = server.lock().unwrap();
        // the delete's preconditions fail; the fresh read shows bob, who stays
        assert_eq!(s.log, ["GET 200", "DELETE 409", "GET 200", "PUT 200"]);
        assert_eq!(users(&s.binding).unwrap(), ["bob"]);
    }

    #[test]
    fn endless_conflicts_end_in_an_error() {
        let mut n = 0;
        let always: Writer = Box::new(move |b: &mut Option<Value>| {
            n += 1;
            add_user(b, &format!("other{n}"));
            true
        });
        let server = Server::new(binding(&["bob"]), Some(always));
        let err = run(&server, "alice", true).unwrap_err().to_string();
        assert!(err.contains("kept changing under us"), "{err}");
        let s = server.lock().unwrap();
        assert_eq!(s.log.len(), 2 * ATTEMPTS as usize);
        assert!(!users(&s.binding).unwrap().contains(&"alice".to_string()));
    }
}
