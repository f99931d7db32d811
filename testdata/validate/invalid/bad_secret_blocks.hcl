# expect: 7:15 9:7 11:12 14:12 16:15 20:14 22:16
vault {}
role "web" {
  image {
    base = "debian-bookworm"
    secret "tls.key" {
      path  = "kv/web/tls"
      field = "key"
      template = "files/site.conf"
    }
    secret "tls.key" {
      path = "kv/data/web/tls"
    }
    secret "a/b" {
      path  = "kv/data/web/app"
      owner = "www-data"
    }
    secret "htpasswd" {
      path = "kv/data/web/app"
      mode = "0644"
    }
    services = ["nginx service"]
  }
}
