#!/usr/bin/env bash
# Installs the Debian packages Seawall's live data plane and its tests use. Needs root.
# nftables: the L3/L4 datapath; iproute2: network namespaces and veth; ulogd2: NFLOG → JSON
# (drop and verdict events; ulogd2-json is its JSON output plugin); iperf3: datapath benchmarks; dnsmasq: DNS server for live tests;
# haproxy: the HTTP proxy benchmark's baseline; curl: HTTP client of the live proxy tests; gcc, make, python3: node-gyp for the
# SO_ORIGINAL_DST addon (scripts/build-addon.sh); bind9-dnsutils: dig, the real DNS client of the DNS proxy tests;
# kcat: a real Kafka client (librdkafka) of the Kafka proxy tests.
# chromium: the browser the web UI's tests, screenshots and bench drive (playwright-core, /usr/bin/chromium).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "setup-debian.sh: needs root (apt-get); the offline tools need none of this" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nftables iproute2 iputils-ping ulogd2 ulogd2-json conntrack iperf3 dnsmasq bind9-dnsutils procps haproxy curl gcc make python3 kcat chromium >/dev/null
# etcd-server: the kvstore of multi-node tests (each starts its own etcd on a loopback port, never a system one);
# the package's own service is disabled so no etcd listens on 2379 by default.
apt-get install -y -qq etcd-server etcd-client >/dev/null
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
