# expect: 5:15
role "pi" {
  image {
    base    = "debian-bookworm"
    builder = "pi-gen"
  }
}
