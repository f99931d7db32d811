# expect: 5:15
role "web" {
  image {
    base    = "debian-bookworm"
    secrets = ["kv/data/web/tls"]
  }
}
