//! The test harness of podsec: the host sandbox, a real systemd, control planes, nodes and the
//! RPM packages the end-to-end suites of tests/tests/ run against.

pub mod cluster;
pub mod faults;
pub mod fixtures;
pub mod k8s;
pub mod node;
pub mod rpm;
pub mod sandbox;
pub mod systemd;
pub mod trivy;
pub mod u7s;
