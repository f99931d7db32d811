# expect: 11:18 6:17 8:29 8:55
role "web" {
  image {
    base  = "debian-bookworm"
    file "/etc/zero" {
      content = file("/dev/zero")
    }
    files = { "/etc/null" = "/dev/null", "/etc/dir" = "files" }
    secret "tls.key" {
      path     = "kv/data/web/tls"
      template = "/dev/null"
    }
  }
}
