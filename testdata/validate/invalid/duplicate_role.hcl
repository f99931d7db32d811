# expect: 8:6
role "web" {
  image {
    base = "debian-bookworm"
  }
}

role "web" {
  image {
    base = "debian-bookworm"
  }
}
