// Package vaultraft is the raft strategy's view of a Vault cluster with integrated storage:
// autopilot's state and remove-peer, over Vault's HTTP API, with a token of the policy
// plugins/secrets/vault.RaftPolicy on that cluster. cmd/ adapts it to rollout.RaftCluster.
package vaultraft

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

// Server is one member of the cluster as autopilot reports it.
type Server struct {
	ID      string // the raft node ID (node_id, or VAULT_RAFT_NODE_ID)
	Address string // the cluster address
	Leader  bool
	Voter   bool // a voter: status leader or voter
	Healthy bool
}

// Client asks a Vault cluster with integrated storage for autopilot's state and removes peers,
// through whichever node it is given (a standby forwards to the active node). It holds a token
// with the policy plugins/secrets/vault.RaftPolicy. It is safe for concurrent use and keeps no connection state.
type Client struct {
	token   string
	scheme  string
	tls     *api.TLSConfig
	timeout time.Duration
}

// New returns a Client sending token over scheme ("http" or "https"; "" means "http"),
// verifying https against caCert when given (else the system's roots).
func New(token, scheme, caCert string) (*Client, error) {
	if token == "" {
		return nil, errors.New("vaultraft: no token on the cluster")
	}
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return nil, fmt.Errorf("vaultraft: scheme %q: want http or https", scheme)
	}
	r := &Client{token: token, scheme: scheme, timeout: 10 * time.Second}
	if caCert != "" {
		r.tls = &api.TLSConfig{CACert: caCert}
	}
	return r, nil
}

func (r *Client) client(node netip.AddrPort) (*api.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	ac := &api.Config{Address: r.scheme + "://" + node.String(), Timeout: r.timeout, MaxRetries: 0,
		HttpClient: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if r.tls != nil {
		if err := ac.ConfigureTLS(r.tls); err != nil {
			return nil, fmt.Errorf("vaultraft: ca_cert: %w", err)
		}
	}
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("vaultraft: %w", err)
	}
	c.SetToken(r.token)
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	return c, nil
}

// Servers returns the members autopilot knows, by ID.
func (r *Client) Servers(ctx context.Context, node netip.AddrPort) ([]Server, error) {
	c, err := r.client(node)
	if err != nil {
		return nil, err
	}
	st, err := c.Sys().RaftAutopilotStateWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("vaultraft: autopilot state from %s: %w", node, err)
	}
	if st == nil {
		return nil, fmt.Errorf("vaultraft: %s has no autopilot state (not integrated storage?)", node)
	}
	out := make([]Server, 0, len(st.Servers))
	for id, sv := range st.Servers {
		out = append(out, Server{ID: id, Address: sv.Address, Leader: sv.Status == "leader",
			Voter: sv.Status == "leader" || sv.Status == "voter", Healthy: sv.Healthy})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RemovePeer removes the member id from the raft configuration. A member that is not there is nil:
// it was removed before.
func (r *Client) RemovePeer(ctx context.Context, node netip.AddrPort, id string) error {
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
		return fmt.Errorf("vaultraft: remove-peer %s through %s: %w", id, node, err)
	}
	return nil
}

// Removed reports that the node answers sys/health with removed_from_cluster (HTTP 530): Vault
// marked it removed from the cluster, for good. It needs no token. Any other answer is false; no
// answer is an error.
func (r *Client) Removed(ctx context.Context, node netip.AddrPort) (bool, error) {
	c, err := r.client(node)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout) // the raw read does not apply the client's
	defer cancel()
	resp, err := c.Logical().ReadRawWithContext(ctx, "sys/health")
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp == nil {
		return false, fmt.Errorf("vaultraft: health of %s: %w", node, err)
	}
	var h api.HealthResponse
	if err := resp.DecodeJSON(&h); err != nil {
		return false, fmt.Errorf("vaultraft: health of %s: %s, not Vault's health answer", node, resp.Status)
	}
	return resp.StatusCode == 530 || h.RemovedFromCluster != nil && *h.RemovedFromCluster, nil
}
