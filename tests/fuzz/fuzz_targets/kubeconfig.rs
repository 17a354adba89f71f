//! A kubeconfig (the user's ~/.kube/config that get-userroles and create-kubeconfig read).
#![no_main]

use libfuzzer_sys::fuzz_target;
use podsec_k8s_rbac::client_certificate;

fuzz_target!(|data: &[u8]| {
    let _ = client_certificate(data);
});
