# expect: 20:14
compute "qemu" "lab" {}

dns "cloudflare" "public" {
  zone    = "example.com."
  proxied = true
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    ports   = [80]
    health "http" {
      port = 80
    }
    cutover "dns" {
      dns  = "public"
      name = "www"
      ttl  = 60
    }
  }
}
