package vault

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
