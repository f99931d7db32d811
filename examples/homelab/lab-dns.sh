#!/usr/bin/env bash
# The lab's authoritative DNS on this machine: a Knot (Debian's knot package) serving lab.example on
# 127.0.0.1:5353 that takes TSIG-signed RFC 2136 updates, the server the fleet's dns "home" block
# points at. Usage: lab-dns.sh start DIR | stop DIR. start prints the TSIG secret's file, for
# DROVER_TSIG_SECRET_FILE; its state (config, key, zone, journal) stays in DIR between runs.
set -euo pipefail
cmd=${1:?usage: lab-dns.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: lab-dns.sh start|stop DIR}" && cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
pidfile="$dir/knot.pid"

running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$cmd" in
stop)
  if running; then kill "$(cat "$pidfile")"; fi
  rm -f "$pidfile"
  exit 0
  ;;
start) ;;
*) echo "usage: lab-dns.sh start|stop DIR" >&2; exit 2 ;;
esac

if running; then echo "$dir/tsig.secret"; exit 0; fi
if kdig +short +time=1 +retry=0 -p 5353 @127.0.0.1 lab.example SOA >/dev/null 2>&1; then
  echo "lab-dns: another server already answers on 127.0.0.1:5353 (a knotd from another directory?); stop it first" >&2
  exit 1
fi
if [ ! -s "$dir/tsig.secret" ]; then
  # 32 random bytes, base64: an hmac-sha256 key, readable only by its owner.
  (umask 077 && head -c 32 /dev/urandom | base64 >"$dir/tsig.secret")
fi
# The zone starts without www: drover publishes it.
grep -v '^www' "$here/dns/lab.example.zone" >"$dir/lab.example.zone"
cat >"$dir/knot.conf" <<CONF
server:
    rundir: "$dir"
    listen: 127.0.0.1@5353
    pidfile: "$pidfile"
log:
  - target: "$dir/knot.log"
    any: info
database:
    storage: "$dir"
key:
  - id: drover
    algorithm: hmac-sha256
    secret: $(cat "$dir/tsig.secret")
acl:
  - id: update
    key: drover
    action: update
template:
  - id: default
    storage: "$dir"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
zone:
  - domain: lab.example.
    file: "$dir/lab.example.zone"
    acl: update
CONF
chmod 600 "$dir/knot.conf"
knotd -c "$dir/knot.conf" -d
for _ in $(seq 1 50); do
  if kdig +short +time=1 +retry=0 -p 5353 @127.0.0.1 lab.example SOA >/dev/null 2>&1; then
    echo "$dir/tsig.secret"
    exit 0
  fi
  sleep 0.1
done
echo "lab-dns: knotd did not answer on 127.0.0.1:5353; see $dir/knot.log" >&2
exit 1
