#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing tenantflow
# need, through apt-get (with sudo when not root). Does nothing when all are
# present, so it is cheap to run before every `make run` / `make test`.
set -euo pipefail

# Extra packages can be named on the command line (make bench adds wrk).
# chromium renders /docs in the integration tests (headless); installing it with
# --no-install-recommends took 14 s here (about 115 MB downloaded, 25 packages).
packages=(build-essential pkg-config libmicrohttpd-dev libpq-dev libjansson-dev libsodium-dev
          libcurl4-openssl-dev libgnutls28-dev check openssl postgresql postgresql-contrib curl python3 chromium "$@")

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
sudo=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# The postgresql package would start a system cluster on port 5432; ours are
# private, so keep the package from creating one.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    "${sudo[@]}" mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
