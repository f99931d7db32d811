package vultr

// HasVolumes tells drover validate that a role on this block may have volume blocks: Vultr block
// storage attaches to its instances (compute.Volumes), where the guest finds it as
// /dev/disk/by-id/virtio-<mount_id>.
func (c *Config) HasVolumes() bool { return true }
