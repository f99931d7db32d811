# expect: 5:41
role "web" {
  image {
    base  = "debian-bookworm"
    files = { "/etc/nginx/nginx.conf" = "files/nope.conf" }
  }
}
