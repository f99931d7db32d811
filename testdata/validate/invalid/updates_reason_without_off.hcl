# expect: 4:24
base "debian-current" {
  suite              = "bookworm"
  updates_off_reason = "the demo must not change"
}
