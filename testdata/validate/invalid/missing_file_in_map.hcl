# expect: 7:33
role "web" {
  image {
    base  = "debian-bookworm"
    files = {
      "/etc/nginx/site.conf"  = "files/site.conf"
      "/etc/nginx/nginx.conf" = "files/nope.conf"
      "/var/www/index.html"   = "files/index.html"
    }
  }
}
