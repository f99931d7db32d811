package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// raft.env holds the node ID and, for a joining node only, the address to join; no raft section,
// no file.
func TestWriteRaftEnv(t *testing.T) {
	dir := t.TempDir()
	if err := writeRaftEnv(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft.env")); !os.IsNotExist(err) {
		t.Fatalf("raft.env without a raft section: %v", err)
	}
	for _, tc := range []struct {
		node bootdata.RaftNode
		want string
	}{
		{bootdata.RaftNode{NodeID: "vault-1-abc-0"}, "VAULT_RAFT_NODE_ID=vault-1-abc-0\n"},
		{bootdata.RaftNode{NodeID: "vault-1-abc-1", Join: "http://10.0.0.5:8200"}, "VAULT_RAFT_NODE_ID=vault-1-abc-1\nDROVER_RAFT_JOIN=http://10.0.0.5:8200\n"},
	} {
		if err := writeRaftEnv(dir, &tc.node); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "raft.env"))
		if err != nil || string(b) != tc.want {
			t.Errorf("raft.env %q (%v), want %q", b, err, tc.want)
		}
	}
}
