# expect: 5:16
role "web" {
  image {
    base     = "debian-bookworm"
    packages = { nginx = true }
  }
}
