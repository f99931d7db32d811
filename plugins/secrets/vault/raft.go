package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"time"

	"github.com/hashicorp/vault/api"
)

// RaftPolicyName is the name the example's README gives RaftPolicy on the cluster it manages.
const RaftPolicyName = "drover-raft"

// RaftPolicy is the HCL of the least-privilege policy of the controller's token on a Vault cluster
// with integrated storage that drover replaces one node at a time (strategy "raft"): the token is
// created on that cluster (not on the Vault of the vault block, which ControllerPolicy is for).
//
// What it grants, and why:
//   - read on sys/storage/raft/autopilot/state: before a replacement, that every member is a
//     healthy voter; after each join, that the new node is one; after each removal, that it left.
//   - update on sys/storage/raft/remove-peer: an old node leaves the raft configuration before
//     its instance is destroyed, so the cluster's quorum counts only the nodes that remain.
//
// Nothing else: no secret engine, no sys/storage/raft/join (nodes join by themselves, told the
// address in their user-data), no snapshot, no step-down (removing the leader makes it step down).
// Whoever holds the token can still remove members and so break the cluster's quorum: keep it as
// secret as the cluster's root token.
func RaftPolicy() string {
	return `# ` + RaftPolicyName + `: the Vault policy of drover's token on a cluster it replaces one node at
# a time (strategy "raft"). It reads autopilot's view of the cluster and removes old nodes from the
# raft configuration, and nothing else. Whoever holds it can remove members: keep it as secret as the
# cluster's root token.

# Autopilot's state: every member, whether it is a healthy voter, and the leader.
path "sys/storage/raft/autopilot/state" {
  capabilities = ["read"]
}

# Remove an old node from the raft configuration before its instance is destroyed.
path "sys/storage/raft/remove-peer" {
  capabilities = ["update"]
}
`
}

// RaftServer is one member of the cluster as autopilot reports it.
type RaftServer struct {
	ID      string // the raft node ID (node_id, or VAULT_RAFT_NODE_ID)
	Address string // the cluster address
	Leader  bool
	Voter   bool // a voter: status leader or voter
	Healthy bool
}

// Raft asks a Vault cluster with integrated storage for autopilot's state and removes peers,
// through whichever node it is given (a standby forwards to the active node). It holds a token
// with RaftPolicy. It is safe for concurrent use and keeps no connection state.
type Raft struct {
	token   string
	scheme  string
	tls     *api.TLSConfig
	timeout time.Duration
}

// NewRaft returns a Raft client sending token over scheme ("http" or "https"; "" means "http"),
// verifying https against caCert when given (else the system's roots).
func NewRaft(token, scheme, caCert string) (*Raft, error) {
	if token == "" {
		return nil, errors.New("secrets/vault: raft: no token on the cluster")
	}
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return nil, fmt.Errorf("secrets/vault: raft: scheme %q: want http or https", scheme)
	}
	r := &Raft{token: token, scheme: scheme, timeout: 10 * time.Second}
	if caCert != "" {
		r.tls = &api.TLSConfig{CACert: caCert}
	}
	return r, nil
}

func (r *Raft) client(node netip.AddrPort) (*api.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	ac := &api.Config{Address: r.scheme + "://" + node.String(), Timeout: r.timeout, MaxRetries: 0,
		HttpClient: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if r.tls != nil {
		if err := ac.ConfigureTLS(r.tls); err != nil {
			return nil, fmt.Errorf("secrets/vault: raft: ca_cert: %w", err)
		}
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("secrets/vault: raft: %w", err)
	}
	c.SetToken(r.token)
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	return c, nil
}

// Servers returns the members autopilot knows, by ID.
func (r *Raft) Servers(ctx context.Context, node netip.AddrPort) ([]RaftServer, error) {
	c, err := r.client(node)
	if err != nil {
		return nil, err
	}
	st, err := c.Sys().RaftAutopilotStateWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("secrets/vault: raft: autopilot state from %s: %w", node, err)
	}
	if st == nil {
		return nil, fmt.Errorf("secrets/vault: raft: %s has no autopilot state (not integrated storage?)", node)
	}
	out := make([]RaftServer, 0, len(st.Servers))
	for id, sv := range st.Servers {
		out = append(out, RaftServer{ID: id, Address: sv.Address, Leader: sv.Status == "leader",
			Voter: sv.Status == "leader" || sv.Status == "voter", Healthy: sv.Healthy})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RemovePeer removes the member id from the raft configuration. A member that is not there is nil:
// it was removed before.
func (r *Raft) RemovePeer(ctx context.Context, node netip.AddrPort, id string) error {
	servers, err := r.Servers(ctx, node)
	if err != nil {
		return err
	}
	found := false
	for _, sv := range servers {
		found = found || sv.ID == id
	}
	if !found {
		return nil
	}
	c, err := r.client(node)
	if err != nil {
		return err
	}
	if _, err := c.Logical().WriteWithContext(ctx, "sys/storage/raft/remove-peer", map[string]any{"server_id": id}); err != nil {
		return fmt.Errorf("secrets/vault: raft: remove-peer %s through %s: %w", id, node, err)
	}
	return nil
}
