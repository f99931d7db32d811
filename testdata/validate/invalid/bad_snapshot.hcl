# expect: 4:14
base "debian-pinned" {
  suite    = "bookworm"
  snapshot = "yesterday"
}
