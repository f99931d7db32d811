# expect: 4:21
base "debian-local" {
  mirror          = "http://mirror.lan/debian"
  security_mirror = "mirror.lan/debian-security"
}
