# expect: 6:10
role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    count = 2
  }
}
