# expect: 4:12
role "web" {
  image {
    base = "debian-trixie"
  }
}
