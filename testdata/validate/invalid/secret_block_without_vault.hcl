# expect: 5:5
role "web" {
  image {
    base = "debian-bookworm"
    secret "tls.key" {
      path  = "kv/data/web/tls"
      field = "key"
    }
  }
}
