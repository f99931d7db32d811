# expect: 4:13
base "debian-frozen" {
  suite   = "bookworm"
  updates = false
}
