# expect: 5:24
base "debian-local" {
  mirror             = "file:///srv/mirror/debian"
  snapshot           = "20261101T000000Z"
  updates            = false
  updates_off_reason = "the lab's file mirror carries bookworm only"
}
