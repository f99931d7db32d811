#!/usr/bin/env bash
# drover's main job on the local lab, step by step: go tool task demo runs this. It works on a copy of
# this directory under .demo/ (git-ignored) so images, base trees and rollout state are kept between
# runs: the first run bakes the web image from scratch, later runs reuse it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin"
work="$root/.demo/homelab"
drover() { echo "+ drover $*" >&2; "$bin/drover" --fleet "$work/drover.hcl" "$@"; }
say() { printf '\n== %s\n' "$*"; }
page() { printf '<!doctype html><title>drover lab</title><h1>hello from the web role, version %s</h1>\n' "$1" >"$work/web/index.html"; }
through_failover() {
  for _ in $(seq 1 30); do
    if out=$(curl -fsS -m 2 http://127.0.0.100/ 2>/dev/null); then echo "   127.0.0.100 answers: $out"; return 0; fi
    sleep 1
  done
  echo "   127.0.0.100 does not answer" >&2
  return 1
}

say "checking this machine (drover doctor --fix installs what is missing when run as root)"
"$bin/drover" doctor --fix || "$bin/drover" doctor || true

mkdir -p "$work"
(cd "$root/examples/homelab" && tar --exclude=.drover --exclude=demo.sh -cf - .) | (cd "$work" && tar -xf -)

# The example watches web for a minute after each cutover; the demo's two rollouts watch for 10 s.
export DROVER_VAR_watch=10s

say "validating the fleet file"
drover validate

say "starting the lab's DNS: Knot for lab.example on 127.0.0.1:5353 (drover publishes www there)"
DROVER_TSIG_SECRET_FILE=$("$root/examples/homelab/lab-dns.sh" start "$root/.demo/knot")
export DROVER_TSIG_SECRET_FILE

say "version 1: bake the web image (mmdebstrap the first time, cached afterwards) and roll it out"
page 1
drover build web
drover rollout start web
drover rollout promote web
through_failover
echo "   www.lab.example at the lab's Knot: $(kdig +short -p 5353 @127.0.0.1 www.lab.example A)"

say "version 2: change the page, bake again (only the changed layer), roll out, promote"
page 2
drover build web
drover rollout start web
drover rollout promote web
through_failover

say "something is wrong with version 2: roll back (blue is still running, so this is instant)"
time drover rollout rollback web
through_failover

say "where web stands"
drover rollout status web
drover rollout history web
echo
echo "The lab's VMs keep running. drover --fleet $work/drover.hcl rollout status web shows them;"
echo "drover gc --apply removes anything no rollout owns. The lab's Knot keeps running too:"
echo "examples/homelab/lab-dns.sh stop .demo/knot stops it."
