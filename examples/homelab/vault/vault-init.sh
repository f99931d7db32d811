#!/bin/sh
# Brings this node into its cluster, once. A node told a member to join (DROVER_RAFT_JOIN, from
# /run/drover/raft.env, which drover-boot writes from the user-data of every node but a new
# cluster's first) joins it with `vault operator raft join`; the transit seal then unseals it, with
# no key here. The first node of a new cluster initializes it instead: with the transit seal Vault
# unseals itself; what init hands out (a recovery key and the root token) is encrypted to the
# operator's PGP public key (/etc/vault.d/operator.gpg, binary, as `gpg --export` writes it), so it
# can go where anyone may read: one line on the console, which the lab keeps in its console log and
# a cloud shows through its console output. Only the holder of the private key can read it:
#   grep -o 'drover-vault-init: .*' console.log | cut -d' ' -f2- | jq -r .root_token | base64 -d | gpg -d
set -eu
key=${VAULT_OPERATOR_KEY:-/etc/vault.d/operator.gpg}
for _ in $(seq 1 180); do
	# 0: initialized, 2: not initialized, 1: Vault is not answering yet.
	rc=0
	vault operator init -status >/dev/null 2>&1 || rc=$?
	case $rc in
	0) echo "drover-vault-init: already initialized"; exit 0 ;;
	2) break ;;
	esac
	sleep 1
done
if [ "$rc" != 2 ]; then
	echo "drover-vault-init: vault at $VAULT_ADDR did not answer in 180 s" >&2
	exit 1
fi
if [ -n "${DROVER_RAFT_JOIN:-}" ]; then
	# Joining asks the member for the cluster's state over its API, then over the cluster port:
	# retried while the member or the network comes up.
	for _ in $(seq 1 90); do
		if out=$(vault operator raft join "$DROVER_RAFT_JOIN" 2>&1); then
			echo "drover-vault-init: joined the cluster at $DROVER_RAFT_JOIN"
			exit 0
		fi
		sleep 2
	done
	echo "drover-vault-init: could not join $DROVER_RAFT_JOIN: $out" >&2
	exit 1
fi
# Init needs the transit seal's Vault as well as this one: retried while either comes up. Init
# either happens or not; one whose answer was lost leaves the cluster initialized with nothing
# printed, which the next round says.
errors=$(mktemp)
for _ in $(seq 1 30); do
	if out=$(vault operator init -format=json -recovery-shares=1 -recovery-threshold=1 \
		-recovery-pgp-keys="$key" -root-token-pgp-key="$key" 2>"$errors"); then
		echo "drover-vault-init: $(printf '%s' "$out" | tr -d ' \n')"
		exit 0
	fi
	out=$(cat "$errors")
	echo "drover-vault-init: init failed, retrying in 2 s: $out" >&2
	sleep 2
	rc=0
	vault operator init -status >/dev/null 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		echo "drover-vault-init: initialized by an init whose answer was lost: its recovery key and root token were never printed and are gone; deploy this cluster again from scratch" >&2
		exit 1
	fi
done
echo "drover-vault-init: could not initialize vault at $VAULT_ADDR: $out" >&2
exit 1
