package digitalocean

// HasVolumes tells drover validate that a role on this block may have volume blocks:
// DigitalOcean volumes attach to its droplets (compute.Volumes), where the guest finds them as
// /dev/disk/by-id/scsi-0DO_Volume_<name>.
func (c *Config) HasVolumes() bool { return true }
