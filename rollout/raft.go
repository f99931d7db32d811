package rollout

import (
	"fmt"

	"github.com/drover-dev/drover/fleet"
)

// raftLimit says why a rollout of a raft role (a Vault server with integrated storage) cannot run
// yet, or "" when it can. drover deploys such a role's first node: it initializes itself and
// unseals through its seal (examples/homelab/vault). Replacing a running cluster is another
// matter: a bluegreen rollout would boot an empty cluster beside it and cut over to it, losing
// every secret, so it is refused until the raft strategy (join, wait for voter, remove the old
// peer, one node at a time) exists; so are clusters of several nodes, which must join each other.
// serving is the rollout whose instances serve the role now, nil before the first deploy.
func raftLimit(dep *fleet.Deploy, serving *Record) string {
	if dep.Strategy != "raft" {
		return ""
	}
	if n := max(dep.Count, 1); n > 1 {
		return fmt.Sprintf("strategy \"raft\" deploys one node for now (count = %d): nodes that join each other's cluster are not built yet; set count = 1", n)
	}
	if serving != nil {
		return fmt.Sprintf("strategy \"raft\" cannot replace the running node yet (rollout %s, image %s): a new node would start an empty cluster; the one-node-at-a-time replacement is not built yet", serving.ID, serving.Image.Short)
	}
	return ""
}

// serving is the rollout whose instances serve the role: a promoted one still keeping blue, else
// the live one.
func serving(active, live *Record) *Record {
	if active != nil && active.State == Promoted {
		return active
	}
	return live
}
