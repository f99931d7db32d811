# expect: 2:1
roles "web" {
  image {
    base = "debian-bookworm"
  }
}
