#!/usr/bin/env bash
# Placeholder until the conformance playbook exists: says so plainly.
echo "demo: the conformance run on the simulated cluster is not there yet (setup is done)."
