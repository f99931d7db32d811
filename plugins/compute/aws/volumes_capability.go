package aws

// HasVolumes tells drover validate that a role on this block may have volume blocks: EBS volumes
// attach to its instances (compute.Volumes).
func (c *Config) HasVolumes() bool { return true }
