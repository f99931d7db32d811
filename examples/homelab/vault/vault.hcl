# The vault role's server: integrated storage (raft) on the instance's disk, unsealed by the transit
# seal of the Vault that delivered the instance's secrets. The seal's address (VAULT_ADDR) comes from
# /run/drover/vault.env, which drover-boot writes, and its token (VAULT_TOKEN) from the secret
# transit.env; neither is in the image.
ui            = false
disable_mlock = true # raft's recommendation; the unit grants CAP_IPC_LOCK anyway
api_addr      = "http://{{ GetPrivateIP }}:8200"
cluster_addr  = "http://{{ GetPrivateIP }}:8201"

storage "raft" {
  path = "/var/lib/vault/raft"
  # Raft's timeouts at their production setting (the default, 0, means 5 times longer: a leader
  # that leaves, as the last old node of a rollout does, stops reads for ~2 s instead of ~12 s,
  # measured by TestVaultRaftReplacement).
  performance_multiplier = 1
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true # the lab; give it tls_cert_file and tls_key_file from secrets elsewhere
}

seal "transit" {
  key_name   = "drover-vault-unseal"
  mount_path = "transit/"
}
