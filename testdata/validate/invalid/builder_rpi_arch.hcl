# expect: 6:15
role "pi" {
  image {
    base    = "debian-bookworm"
    builder = "rpi"
    arch    = "amd64"
  }
}
