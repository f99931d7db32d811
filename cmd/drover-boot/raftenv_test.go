package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// raft.env holds the node ID and, for a joining node only, the address to join; no raft section,
// no file.
func TestWriteRaftEnv(t *testing.T) {
	dir := t.TempDir()
	if err := writeRaftEnv(dir, nil, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft.env")); !os.IsNotExist(err) {
		t.Fatalf("raft.env without a raft section: %v", err)
	}
	seg := netip.MustParseAddr("10.77.0.3")
	for _, tc := range []struct {
		node    bootdata.RaftNode
		private netip.Addr
		want    string
	}{
		{bootdata.RaftNode{NodeID: "vault-1-abc-0"}, netip.Addr{}, "VAULT_RAFT_NODE_ID=vault-1-abc-0\n"},
		{bootdata.RaftNode{NodeID: "vault-1-abc-1", Join: "http://10.0.0.5:8200"}, netip.Addr{}, "VAULT_RAFT_NODE_ID=vault-1-abc-1\nDROVER_RAFT_JOIN=http://10.0.0.5:8200\n"},
		// Scheme and port without a private address: Vault's configuration decides.
		{bootdata.RaftNode{NodeID: "n0", Scheme: "http", Port: 8200}, netip.Addr{}, "VAULT_RAFT_NODE_ID=n0\n"},
		// On the lab's segment: the node advertises its segment address.
		{bootdata.RaftNode{NodeID: "n1", Join: "http://10.77.0.2:8200", Scheme: "https", Port: 8300}, seg,
			"VAULT_RAFT_NODE_ID=n1\nDROVER_RAFT_JOIN=http://10.77.0.2:8200\nVAULT_API_ADDR=https://10.77.0.3:8300\nVAULT_CLUSTER_ADDR=https://10.77.0.3:8301\n"},
		{bootdata.RaftNode{NodeID: "n2", Port: 8200}, seg, "VAULT_RAFT_NODE_ID=n2\nVAULT_API_ADDR=http://10.77.0.3:8200\nVAULT_CLUSTER_ADDR=https://10.77.0.3:8201\n"},
	} {
		if err := writeRaftEnv(dir, &tc.node, tc.private); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "raft.env"))
		if err != nil || string(b) != tc.want {
			t.Errorf("raft.env %q (%v), want %q", b, err, tc.want)
		}
	}
}
