# expect: 4:13
base "debian-local" {
  mirror  = "http://mirror.lan/debian"
  keyring = "keyrings/mirror-key.gpg"
}
