package qemu

// HasVolumes tells drover validate that a role on this block may have volume blocks: the lab
// attaches qcow2 volumes to its VMs (compute.Volumes).
func (c *Config) HasVolumes() bool { return true }
