# Entry points for people and CI. Every target bootstraps what it needs (hack/setup.sh is idempotent).
SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
export PATH := $(VENV)/bin:$(ROOT)/.tools/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg

SCENARIO ?= conformant
KUBECONFIG ?= $(ROOT)/.work/sim/kubeconfig
OUTPUT ?= $(ROOT)/output

.PHONY: help setup demo test lint sanity unit sim bench build changelog clean flake bench-conform fault-matrix bad-input-matrix bench-passive

help:
	@echo "make demo    set everything up and run the conformance job on the simulated cluster"
	@echo "make test    the full test run (lint, sanity, pytest, molecule), as CI runs it"
	@echo "make sim     run the simulated cluster in the foreground (SCENARIO=, KUBECONFIG=)"
	@echo "make bench   simulator scale benchmark (prints figures)"
	@echo "make build   build the collection tarball"
	@echo "make bench-conform  the whole conformance run against its slowest check (prints figures and the ratio)"
	@echo "make bench-passive  API requests and seconds of each check's passive run at 10, 500 and 5,000 simulated nodes"
	@echo "make changelog  check the changelog fragments and regenerate CHANGELOG.rst from them"
	@echo "make flake   run the simulator-backed tests RUNS times with every core busy; pass counts per test"
	@echo "make fault-matrix  every check against injected API and node faults (prints a table)"
	@echo "make bad-input-matrix  every module against bad kubeconfigs, credentials, metrics and report files (prints a table)"

setup:
	@hack/setup.sh

demo: setup
	@hack/demo.sh "$(OUTPUT)"

test:
	@hack/test.sh

lint: setup
	ansible-lint --nocolor

sanity: setup
	hack/sanity.sh

unit: setup
	python -m pytest tests/unit

sim: setup
	PYTHONPATH=$(ROOT)/tests python -m simcluster --scenario "$(SCENARIO)" --kubeconfig "$(KUBECONFIG)"

bench: setup
	PYTHONPATH=$(ROOT)/tests python -m simcluster.bench

RUNS ?= 20
flake: setup
	python hack/flake.py --runs $(RUNS) $(FLAKE_TESTS)

bench-conform: setup
	python hack/bench-conform.py $(BENCH_ARGS)

NODES ?= 10 500 5000
GPU_SHARE ?= 0.1
bench-passive: setup
	python hack/bench-passive.py --nodes $(NODES) --gpu-share $(GPU_SHARE)

build: setup
	ansible-galaxy collection build --force --output-path $(ROOT)/.work/build

changelog: setup
	hack/changelog.sh

clean:
	rm -rf .work tests/output

fault-matrix: setup
	python hack/fault-matrix.py

bad-input-matrix: setup
	python hack/bad-input-matrix.py
