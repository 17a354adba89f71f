# The front door: thin wrappers over cargo and scripts/.
#   make demo     the main job end to end, in a throwaway sandbox (installs what it needs)
#   make demo-cluster  a one-node rootless cluster with real kubelet and CRI-O, in a sandbox;
#                      NODES=3 [CONTROL_PLANES=2]: several nodes behind haproxy, on a sandbox network
#   make test     every test, with the real components (installs what it needs; needs root)
#   make build | install DESTDIR=... PREFIX=/usr | bench | size | rpm | lint
#   make test-k8s-matrix   golden kubeadm configurations of every minor against that minor's kubeadm
#                          (scripts/k8s-bins VERSION kubeadm builds them; not part of make test)
#   make fuzz     every fuzz target of tests/fuzz for FUZZ_SECONDS each (cargo-fuzz on stable);
#                 fails when one crashed (not part of make test)

PREFIX ?= /usr
# make demo-cluster: how many nodes, and how many of them are control planes.
NODES ?= 1
CONTROL_PLANES ?= 1
# make fuzz: seconds per target.
FUZZ_SECONDS ?= 60
DESTDIR ?=
# Size-optimised profile for what gets installed or measured; tests use the dev profile.
PROFILE ?= release-small
# Where cargo builds: CARGO_TARGET_DIR as cargo reads it (from the environment or
# `make ... CARGO_TARGET_DIR=DIR`), else ./target. Exported, so cargo, the scripts and the paths
# below always agree.
TARGET_DIR ?= $(abspath $(or $(CARGO_TARGET_DIR),$(CURDIR)/target))
export CARGO_TARGET_DIR := $(TARGET_DIR)
PACKAGE_BINARIES = podsec podsec-k8s podsec-k8s-rbac podsec-inotify
CARGO_PACKAGES = $(addprefix -p ,$(PACKAGE_BINARIES))

.PHONY: all build test test-k8s-matrix fuzz lint deps demo demo-cluster install bench size rpm clean

all: build

deps:
	@scripts/deps

build:
	cargo build --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test:
	@scripts/timed-test

test-k8s-matrix:
	@scripts/k8s-matrix

fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz

demo: deps
	cargo build --workspace
	@scripts/demo

demo-cluster: deps
	scripts/k8s-bins
	scripts/node-bins
	scripts/node-images
	cargo build --workspace --bins
	$(TARGET_DIR)/debug/podsec-demo-cluster --nodes $(NODES) --control-planes $(CONTROL_PLANES)

release:
	cargo build --profile $(PROFILE) $(CARGO_PACKAGES)

install: release
	scripts/install-commands $(TARGET_DIR)/$(PROFILE) "$(DESTDIR)" $(PREFIX)

size: release
	@scripts/sizes $(TARGET_DIR)/$(PROFILE) $(PACKAGE_BINARIES)

bench: size
	cargo build -p podsec-tests --bins
	scripts/bench-startup $(TARGET_DIR)/$(PROFILE)
	scripts/bench-load-sign $(TARGET_DIR)/$(PROFILE)
	scripts/bench-kubeapi $(TARGET_DIR)/$(PROFILE)
	scripts/bench-check-policy $(TARGET_DIR)/$(PROFILE)
	scripts/bench-check-images $(TARGET_DIR)/$(PROFILE)
	scripts/bench-check-containers $(TARGET_DIR)/$(PROFILE)

# The seven RPMs, built offline with rpmbuild from a tarball with vendored crates (cached per
# source state in $(TARGET_DIR)/rpm/; see scripts/rpm-build).
rpm:
	@scripts/rpm-build

clean:
	cargo clean
