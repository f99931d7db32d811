package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/internal/vaultraft"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/rollout"
)

// raftTokenEnv names the controller's token on a raft role's own Vault cluster, with the policy
// vault.RaftPolicy (examples/homelab/vault/README.md); DROVER_RAFT_TOKEN_<ROLE> (the role's name in
// upper case, '-' as '_') is one role's, and wins. raftCAEnv is the CA the cluster's https is
// verified against, when it is not in the system's roots.
const (
	raftTokenEnv   = "DROVER_RAFT_TOKEN"
	raftPolicyName = "drover-raft" // plugins/secrets/vault.RaftPolicyName
	raftCAEnv      = "DROVER_RAFT_CACERT"
)

// raftClusters opens the raft cluster of a role for the raft strategy's replacement.
func (a *app) raftClusters(f *fleet.Fleet) func(ctx context.Context, role string) (rollout.RaftCluster, error) {
	return func(_ context.Context, role string) (rollout.RaftCluster, error) {
		name := raftTokenEnv + "_" + strings.ToUpper(strings.ReplaceAll(role, "-", "_"))
		token, ok := a.env(name)
		if !ok || token == "" {
			name = raftTokenEnv
			token, _ = a.env(raftTokenEnv)
		}
		if token == "" {
			return nil, fmt.Errorf("no token on the cluster: set %s (or %s_%s) to a token of policy %q on the role's own Vault cluster (its README shows the policy)",
				raftTokenEnv, raftTokenEnv, strings.ToUpper(strings.ReplaceAll(role, "-", "_")), raftPolicyName)
		}
		scheme := "http"
		if r := f.Role(role); r != nil && r.Deploy != nil {
			for _, hc := range r.Deploy.Health {
				if hc.TLS() {
					scheme = "https"
				}
			}
		}
		ca, _ := a.env(raftCAEnv)
		cl, err := vaultraft.New(token, scheme, ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return raftCluster{cl}, nil
	}
}

// raftCluster adapts vaultraft.Client to rollout.RaftCluster.
type raftCluster struct{ r *vaultraft.Client }

func (c raftCluster) Servers(ctx context.Context, node netip.AddrPort) ([]rollout.RaftServer, error) {
	servers, err := c.r.Servers(ctx, node)
	if err != nil {
		return nil, err
	}
	out := make([]rollout.RaftServer, len(servers))
	for i, s := range servers {
		out[i] = rollout.RaftServer{ID: s.ID, Address: s.Address, Leader: s.Leader, Voter: s.Voter, Healthy: s.Healthy}
	}
	return out, nil
}

func (c raftCluster) RemovePeer(ctx context.Context, node netip.AddrPort, id string) error {
	return c.r.RemovePeer(ctx, node, id)
}

// raftNodeData returns the raft strategy's Options.RaftNode for fleet f: it adds a node's ID, the
// address to join and its own API's scheme and port (those of the role's vault check, else its first
// port) to the node's user-data (bootdata's raft section): to the user-data its credential gave, or
// to a user-data of its own when the role has none.
func raftNodeData(f *fleet.Fleet) func(role string, ud []byte, nodeID, join string) ([]byte, error) {
	return func(role string, ud []byte, nodeID, join string) ([]byte, error) {
		scheme, port := "http", 8200
		if r := f.Role(role); r != nil && r.Deploy != nil {
			if len(r.Deploy.Ports) > 0 {
				port = r.Deploy.Ports[0]
			}
			for _, hc := range r.Deploy.Health {
				if hc.Type == "vault" && hc.Port > 0 {
					port = hc.Port
				}
				if hc.TLS() {
					scheme = "https"
				}
			}
		}
		u := bootdata.UserData{Version: bootdata.Version, Role: role}
		if len(ud) > 0 {
			var err error
			if u, err = bootdata.Parse(ud); err != nil {
				return nil, err
			}
		}
		u.Raft = &bootdata.RaftNode{NodeID: nodeID, Join: join, Scheme: scheme, Port: port}
		return bootdata.Marshal(u)
	}
}

func (c raftCluster) Removed(ctx context.Context, node netip.AddrPort) (bool, error) {
	return c.r.Removed(ctx, node)
}
