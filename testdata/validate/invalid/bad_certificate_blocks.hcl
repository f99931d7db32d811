# expect: 7:17 10:33 11:21 12:21 13:21 16:23 20:17 21:21 24:21 29:21 30:21 32:5 32:5
vault {}
role "web" {
  image {
    base = "debian-bookworm"
    secret "tls.key" { path = "kv/data/web/tls" }
    certificate "tls" { # tls.key is the secret's
      pki_role    = "web"
      common_name = "web.example.net"
      alt_names   = ["${instance.hostname}"]
      ip_sans     = ["${instance.address}", "10.0.0.300"]
      ttl         = "10s"
      mode        = "0644"
      reload      = ["nginx"]
    }
    certificate "api" {
      common_name = "api.example.net"
      ttl         = "1h"
    }
    certificate "a/b" {
      pki_role    = "web role"
      common_name = "*.${instance.address}.nip.io"
      ttl         = "1m"
      mount       = "/pki"
    }
    certificate "x" {
      pki_role    = "web"
      common_name = "x.example.net"
      alt_names   = ["bad name"]
      ttl         = "90.5s"
    }
    certificate "y" {
      pki_role    = "web"
      common_name = "${role.dns_name}"
      ttl         = "90s"
      reload      = ["nginx.service", "haproxy"]
    }
    services = ["nginx"]
  }
}
