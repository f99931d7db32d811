ui = false
storage "raft" {
  path = "/var/lib/vault"
}
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}
