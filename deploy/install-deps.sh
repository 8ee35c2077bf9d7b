#!/usr/bin/env bash
# Installs what building, running and testing mtrdiag needs on Debian 12.
# Idempotent and quick when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev libyaml-dev
      libcmocka-dev libsqlite3-dev libjansson-dev libnetfilter-queue-dev
      iproute2 nftables iptables mtr-tiny dnsmasq jq time procps netcat-openbsd
      util-linux openssl chromium fonts-dejavu-core iputils-ping socat systemd
      dpkg-dev man-db)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: run as root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# dnsmasq's package starts a system-wide service; the lab runs its own instances only.
if systemctl is-active --quiet dnsmasq 2>/dev/null; then systemctl disable --now dnsmasq >/dev/null 2>&1 || true; fi
