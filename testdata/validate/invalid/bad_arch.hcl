# expect: 5:12
role "pi" {
  image {
    base = "debian-bookworm"
    arch = "aarch64"
  }
}
