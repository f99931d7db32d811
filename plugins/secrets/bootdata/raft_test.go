package bootdata

import (
	"strings"
	"testing"
)

// A raft section survives Marshal and Parse, shows in String, and bad node IDs and join addresses
// are refused with the value named.
func TestRaftNode(t *testing.T) {
	u := UserData{Version: Version, Role: "vault", Raft: &RaftNode{NodeID: "vault-2-a1b2c3-1", Join: "http://10.0.0.5:8200"}}
	b, err := Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"raft":{"node_id":"vault-2-a1b2c3-1","join":"http://10.0.0.5:8200"}`) {
		t.Errorf("JSON: %s", b)
	}
	got, err := Parse(b)
	if err != nil || *got.Raft != *u.Raft {
		t.Fatalf("parsed %+v, %v", got.Raft, err)
	}
	if s := got.String(); !strings.Contains(s, "raft node vault-2-a1b2c3-1 join http://10.0.0.5:8200") {
		t.Errorf("String: %s", s)
	}
	first := UserData{Version: Version, Role: "vault", Raft: &RaftNode{NodeID: "vault-2-a1b2c3-0", Scheme: "http", Port: 8200}}
	if _, err := Marshal(first); err != nil {
		t.Errorf("the node that starts the cluster: %v", err)
	}
	for _, bad := range []RaftNode{
		{NodeID: ""},
		{NodeID: "a\nVAULT_TOKEN=x"},
		{NodeID: "n0", Join: "ftp://10.0.0.5"},
		{NodeID: "n0", Join: "http://user:pw@10.0.0.5:8200"},
		{NodeID: "n0", Join: "http://10.0.0.5:8200/v1/sys"},
		{NodeID: "n0", Join: "http://10.0.0.5:8200\nX=1"},
		{NodeID: "n0", Scheme: "ftp", Port: 8200},
		{NodeID: "n0", Scheme: "http", Port: 65535},
		{NodeID: "n0", Scheme: "http", Port: -1},
	} {
		_, err := Marshal(UserData{Version: Version, Role: "vault", Raft: &bad})
		if err == nil || !strings.Contains(err.Error(), "bootdata: raft") {
			t.Errorf("%+v: %v, want refused", bad, err)
		}
	}
}
