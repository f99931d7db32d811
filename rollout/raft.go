package rollout

import (
	"fmt"
	"strings"

	"github.com/drover-dev/drover/fleet"
)

// raft is the strategy of a role whose instances form a raft cluster (a Vault server with
// integrated storage). What is built is the cluster's first node: it boots, checks and cuts over as
// a bluegreen first deploy does, and initializes itself and unseals through its seal
// (examples/homelab/vault). Replacing a running node is refused: a bluegreen rollout would boot an
// empty cluster beside it and cut over to it, losing every secret; so are clusters of several nodes,
// which must join each other. Both wait for the one-node-at-a-time replacement (join, wait for
// voter, remove the old peer), which will keep its steps in RaftProgress.
type raft struct{ bluegreen }

// RaftProgress is the raft strategy's part of a rollout record.
type RaftProgress struct {
	// Bootstrap is set when the rollout starts a new cluster: nothing served the role before, so
	// its first node initializes itself instead of joining.
	Bootstrap bool `json:"bootstrap"`
	// Nodes is how many nodes the rollout deploys.
	Nodes int `json:"nodes"`
}

func (raft) Name() string { return "raft" }

// Validate refuses a cluster of several nodes at the deploy block's count.
func (raft) Validate(role *fleet.Role) []fleet.Refusal {
	if why := raftCount(role.Deploy); why != "" {
		return []fleet.Refusal{{Attribute: "count", Summary: "Strategy cannot deploy this count", Detail: strings.ToUpper(why[:1]) + why[1:] + "."}}
	}
	return nil
}

// Admit refuses a cluster of several nodes (validate refuses it first; this keeps a fleet built
// by hand from launching one) and the replacement of a serving node.
func (raft) Admit(dep *fleet.Deploy, serving *Record) (Progress, error) {
	if why := raftCount(dep); why != "" {
		return Progress{}, fmt.Errorf("%s", why)
	}
	if serving != nil {
		return Progress{}, fmt.Errorf("strategy \"raft\" cannot replace the running node yet (rollout %s, image %s): a new node would start an empty cluster; the one-node-at-a-time replacement is not built yet", serving.ID, serving.Image.Short)
	}
	return Progress{Raft: &RaftProgress{Bootstrap: true, Nodes: 1}}, nil
}

// raftCount says why dep's count cannot be deployed, or "".
func raftCount(dep *fleet.Deploy) string {
	if n := max(dep.Count, 1); n > 1 {
		return fmt.Sprintf("strategy \"raft\" deploys one node for now (count = %d): nodes that join each other's cluster are not built yet; set count = 1", n)
	}
	return ""
}
