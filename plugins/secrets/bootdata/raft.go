package bootdata

import (
	"fmt"
	"net/url"
	"regexp"
)

// RaftNode is what a node of a raft cluster (a Vault server with integrated storage, strategy
// "raft") gets at boot. Neither field is a secret: the node joins with nothing but the address
// (Vault's join needs no token), and unseals through its own seal.
//
//	"raft": {"node_id": "vault-2-a1b2c3-0", "join": "http://10.0.0.5:8200"}
//
// drover-boot writes them to raft.env beside vault.env, as VAULT_RAFT_NODE_ID (which Vault reads
// as its raft node ID, so autopilot names the node as drover does) and DROVER_RAFT_JOIN.
type RaftNode struct {
	// NodeID is the node's raft ID: its instance's name.
	NodeID string `json:"node_id"`
	// Join is the API address of a member to join; "" for the node that starts a new cluster.
	Join string `json:"join,omitempty"`
	// Scheme ("http" or "https") and Port are those of the node's own API. On a machine whose
	// platform hands it a private address other nodes reach it at (the lab's segment), drover-boot
	// advertises SCHEME://ADDRESS:PORT as the node's API address and https://ADDRESS:PORT+1 (Vault's
	// cluster port) as its cluster address; elsewhere Vault's own configuration decides. 0: the
	// controller sent none.
	Scheme string `json:"scheme,omitempty"`
	Port   int    `json:"port,omitempty"`
}

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// validate checks a node ID fit for an environment file and Vault, and a join address that is an
// http or https URL with a host and nothing else (no user, path, query or line break).
func (r *RaftNode) validate() error {
	if r == nil {
		return nil
	}
	if !nodeIDRE.MatchString(r.NodeID) {
		return fmt.Errorf("bootdata: raft node_id %q: want letters, digits, '.', '_' and '-', at most 128", r.NodeID)
	}
	if r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https" {
		return fmt.Errorf("bootdata: raft scheme %q: want http or https", r.Scheme)
	}
	if r.Port < 0 || r.Port > 65534 {
		return fmt.Errorf("bootdata: raft port %d: want 1-65534 (the cluster port is the next one)", r.Port)
	}
	if r.Join == "" {
		return nil
	}
	u, err := url.Parse(r.Join)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("bootdata: raft join %q: want http(s)://HOST:PORT", r.Join)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none: it starts the cluster)"
	}
	return s
}
