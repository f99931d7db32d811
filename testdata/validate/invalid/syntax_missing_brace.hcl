# expect: 3:9
role "web" {
  image {
    base = "debian-bookworm"
