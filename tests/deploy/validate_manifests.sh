#!/usr/bin/env bash
# ctest deploy_kubernetes_manifests: installs the pinned validator (npm ci,
# package-lock.json) unless node_modules was installed from this very lock
# file, then runs validate.mjs. Exit 77 (skipped) only when node/npm are missing or
# the npm registry cannot be reached.
#   validate_manifests.sh MANIFEST_DIR MAILHOOK_BINARY
#   validate_manifests.sh --install      only the install (scripts/deps)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node and npm are not installed (scripts/deps installs them)"
  exit 77
fi

# The lock file's hash, written after a successful install.
stamp=$here/node_modules/.mailhook-lock.sha256
want=$(sha256sum <"$here/package-lock.json")
if [[ ! -e $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "installing the manifest validator: npm ci in tests/deploy (pinned by package-lock.json)"
  if ! (cd "$here" && npm ci --no-audit --no-fund --loglevel=error); then
    if ! (cd "$here" && npm ping --loglevel=error >/dev/null 2>&1); then
      echo "SKIP: the npm registry cannot be reached, so the validator (kubernetes-models, typescript) cannot be installed"
      exit 77
    fi
    echo "FAIL: npm ci in tests/deploy failed with the registry reachable (see above)"
    exit 1
  fi
  echo "$want" >"$stamp"
fi
[[ ${1:-} == --install ]] && exit 0

exec node "$here/validate.mjs" "$@"
