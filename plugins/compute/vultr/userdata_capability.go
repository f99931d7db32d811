package vultr

// EditsUserData tells drover validate that a stopped instance's user-data can be changed here
// (compute.UserDataEditor): a role with volumes and Vault secrets needs it, as each start of a
// stopped instance (a handoff rollback, drover volumes) writes a new boot credential there.
func (c *Config) EditsUserData() bool { return true }
