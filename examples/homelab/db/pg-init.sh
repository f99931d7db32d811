#!/bin/sh
# drover-pg-init: makes PostgreSQL's cluster on the db role's volume the first time it is mounted.
#
# It runs after drover-boot has mounted the volume on /var/lib/postgresql (the unit is one of the
# role's services, so it Requires= and is After= drover-boot), and before PostgreSQL, which
# Requires= it. A volume that holds a cluster already (PG_VERSION) is left as it is: the unit's
# ConditionPathExists skips this script. A boot without a volume (no user-data) keeps the image's
# own cluster, which the package made at build time, and skips it too.
set -eu
data=/var/lib/postgresql/15/main
# A first boot killed in the middle of initdb leaves a cluster without PG_VERSION: it is moved
# aside for a person to look at, never written over.
if [ -e "$data" ] && [ -n "$(ls -A "$data")" ]; then
  mv "$data" "$data.incomplete-$(date +%s)"
fi
install -d -o postgres -g postgres -m 0755 /var/lib/postgresql/15
install -d -o postgres -g postgres -m 0700 "$data"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb --pgdata="$data" --encoding=UTF8 --locale=C.UTF-8 \
  --auth-local=peer --auth-host=scram-sha-256
echo "drover-pg-init: made a new PostgreSQL cluster in $data"
