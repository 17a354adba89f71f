pub mod fixtures;
pub mod k8s;
pub mod node;
pub mod rpm;
pub mod sandbox;
pub mod systemd;
pub mod trivy;
pub mod u7s;
