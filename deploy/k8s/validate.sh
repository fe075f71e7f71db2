#!/usr/bin/env bash
# Schema-check every manifest in deploy/k8s against the Kubernetes API (strict: unknown fields
# fail) with kubernetes-validate from PyPI, installed into a tools venv (arg 1, default .venv-k8s).
set -euo pipefail
cd "$(dirname "$0")"
venv=${1:-.venv-k8s}
[[ -x $venv/bin/kubernetes-validate ]] || {
    python3 -m venv "$venv" && "$venv/bin/pip" install -q "kubernetes-validate==1.37.0"; }
"$venv/bin/kubernetes-validate" --strict --quiet ./*.yaml
echo "k8s manifests valid: $(ls ./*.yaml | tr '\n' ' ')"
