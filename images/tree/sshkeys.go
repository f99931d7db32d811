package tree

// scrubSSHHostKeys removes the SSH host keys, so that machines made from one image do not share
// them. The image builder's first-boot unit creates fresh ones before sshd starts.
func scrubSSHHostKeys(root string) error {
	return globInTree(root, "/etc/ssh", "ssh_host_*", false)
}
