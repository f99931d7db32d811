# expect: 5:22
role "web" {
  image {
    base = "debian-bookworm"
    disk { formats = [] }
  }
}
