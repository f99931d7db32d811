# expect: 5:13
role "web" {
  image {
    base  = "debian-bookworm"
    files = { "/etc/nginx/nginx.conf" = "files/nope.conf" }
  }
}
