//! Read-modify-write of RoleBindings and ClusterRoleBindings: roleRef verified, subjects matched
//! on (kind User, name), conflicts (409) retried from a fresh read, every failure an error.

use podsec_common::msg;
use std::fmt::Debug;

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
const ATTEMPTS: usize = 5;

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
    let wanted = kinds
        .iter()
        .map(|k| format!("{k} '{}'", target.role))
        .collect::<Vec<_>>()
        .join(" or ");
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
pub async fn bind(client: Client, target: &Target) -> Result<String, Error> {
    check_role_exists(&client, target).await?;
    match &target.namespace {
        Some(_) => bind_in(api::<RoleBinding>(&client, target), target).await,
        None => bind_in(Api::<ClusterRoleBinding>::all(client), target).await,
    }
}

/// unbindrole.
pub async fn unbind(client: Client, target: &Target) -> Result<String, Error> {
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

async fn bind_in<K: Binding>(api: Api<K>, target: &Target) -> Result<String, Error> {
    let label = target.binding_label();
    let role_kind = match target.role_type {
        RoleType::Role => "Role",
        _ => "ClusterRole",
    };
    for _ in 0..ATTEMPTS {
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

async fn unbind_in<K: Binding>(api: Api<K>, target: &Target) -> Result<String, Error> {
    let label = target.binding_label();
    for _ in 0..ATTEMPTS {
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
            Ok(message) => return Ok(message),
            Err(e) if is_conflict(&e) || is_not_found(&e) => continue,
            Err(e) => return Err(Error::api(msg!("cannot update {label}"), &e)),
        }
    }
    Err(too_busy(&label))
}

fn too_busy(label: &str) -> Error {
    Error::Failed(msg!(
        "{label} kept changing under us ({ATTEMPTS} conflicting writes); try again"
    ))
}
