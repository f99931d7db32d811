#!/bin/bash
# One-file change rebuilds of the homelab web role: N rebuilds, each after changing web/index.html.
# usage: bench/onefile.sh NAME FORMATS N   (FORMATS: default | qcow2); needs root, drover and
# drover-boot-linux-amd64 in /var/tmp/onefile/bin, and uses the e2e base-tree cache.
set -e
name=$1; formats=$2; n=$3
W=/var/tmp/onefile/$name
rm -rf $W; mkdir -p $W
cp -a "$(dirname "$0")/../examples/homelab" $W/fleet
if [ "$formats" = qcow2 ]; then
  python3 - "$W/fleet/drover.hcl" <<'PY'
import sys
p=sys.argv[1]; s=open(p).read()
s=s.replace('run     = ["systemctl enable nginx"]','run     = ["systemctl enable nginx"]\n    disk {\n      formats = ["raw", "qcow2"]\n    }',1)
open(p,'w').write(s)
PY
fi
export DROVER_CACHE_DIR=/var/tmp/drover-test-cache/drover DROVER_BOOT_DIR=/var/tmp/onefile/bin CI=true
D="/var/tmp/onefile/bin/drover --fleet $W/fleet/drover.hcl"
$D build web >/dev/null
for i in $(seq 1 $n); do
  echo "<h1>change $i $(date +%s%N)</h1>" > $W/fleet/web/index.html
  s=$(date +%s.%N); $D build web >/dev/null; e=$(date +%s.%N)
  steps=$($D --output json images show web | python3 -c 'import json,sys; m=json.load(sys.stdin); print(" ".join("%s=%.2f"%(s["name"],s["seconds"]) for s in m["steps"] if s["seconds"]>=0.05))')
  printf "%s rebuild %d: %.2f s  %s\n" $name $i $(echo "$e - $s" | bc) "$steps"
done
echo "$name disk used by the catalog: $(du -sh $W/fleet/.drover/images | cut -f1) for $((n+1)) images"
