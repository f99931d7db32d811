package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// writeVaultEnv writes vault.env next to the status file: VAULT_ADDR (and VAULT_CACERT when the
// user-data pins a CA, written beside it as vault-ca.pem) of the Vault this instance logged in to,
// for the role's own services to use as a systemd EnvironmentFile. A Vault server's transit seal
// reads both from its environment, so the image names no address: it unseals against the Vault
// that delivered its secrets. Neither file holds a token or a secret.
func writeVaultEnv(dir string, v *bootdata.Vault) error {
	if strings.ContainsAny(v.Addr, "\n\r") {
		return fmt.Errorf("vault address %q: a line break in it", v.Addr)
	}
	env := "VAULT_ADDR=" + v.Addr + "\n"
	if v.CACert != "" {
		ca := filepath.Join(dir, "vault-ca.pem")
		if err := replaceFile(ca, []byte(v.CACert)); err != nil {
			return err
		}
		env += "VAULT_CACERT=" + ca + "\n"
	}
	return replaceFile(filepath.Join(dir, "vault.env"), []byte(env))
}

// writeRaftEnv writes raft.env next to the status file for a node of a raft cluster (strategy
// "raft"): VAULT_RAFT_NODE_ID, which Vault takes as its raft node ID, and DROVER_RAFT_JOIN, the API
// address of a member to join (absent on the node that starts the cluster), for the role's services
// as a systemd EnvironmentFile. When the machine has a private address other nodes reach it at
// (private: the lab's segment) and the raft section names the API's scheme and port, it also writes
// VAULT_API_ADDR and VAULT_CLUSTER_ADDR on that address, which Vault takes over its configuration's
// api_addr and cluster_addr: the lab VM's default interface (user-mode networking, 10.0.2.15 on
// every VM) is no address another node can reach. Without a raft section it writes nothing. No
// value is a secret; bootdata.Parse checked them (no line break, no shell character).
func writeRaftEnv(dir string, r *bootdata.RaftNode, private netip.Addr) error {
	if r == nil {
		return nil
	}
	env := "VAULT_RAFT_NODE_ID=" + r.NodeID + "\n"
	if r.Join != "" {
		env += "DROVER_RAFT_JOIN=" + r.Join + "\n"
	}
	if private.IsValid() && r.Port > 0 {
		scheme := cmp.Or(r.Scheme, "http")
		env += "VAULT_API_ADDR=" + scheme + "://" + netip.AddrPortFrom(private, uint16(r.Port)).String() + "\n"
		env += "VAULT_CLUSTER_ADDR=https://" + netip.AddrPortFrom(private, uint16(r.Port+1)).String() + "\n"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing raft.env: %w", err)
	}
	return replaceFile(filepath.Join(dir, "raft.env"), []byte(env))
}

// replaceFile writes a file others may read (no secret) through a temporary file and a rename, so
// a reader never sees half of it.
func replaceFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
