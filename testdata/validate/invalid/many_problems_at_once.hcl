# expect: 10:47 14:16 15:16 18:16 3:12
compute "qemu" "lab" {
  memory = 64
}

role "web" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx"]
    files    = { "/var/www/html/index.html" = "files/missing.html" }
  }
  deploy {
    compute  = "lab"
    count    = -1
    keep_old = "soon"
    health "http" {
      port   = 80
      expect = 999
    }
  }
}
