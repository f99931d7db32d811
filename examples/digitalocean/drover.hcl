# A web role on DigitalOcean (USERS.md setup 5, its web front): drover bakes the image, uploads it
# gzip-compressed to a Spaces bucket, imports it as a custom image from a presigned URL, boots it
# as droplets (the image configures its address from the droplet metadata: DigitalOcean runs no
# DHCP), checks them, moves the reserved IP to green in one assign action, points www at it in
# DigitalOcean DNS, and keeps the old droplets for a rollback until keep_old has passed.
# The API token comes from DIGITALOCEAN_TOKEN, the Spaces key from SPACES_ACCESS_KEY_ID and
# SPACES_SECRET_ACCESS_KEY, Vault's from VAULT_TOKEN. Replace the names with your own; `drover
# validate` checks the file without an account (TestExamplesValidate); TestE2EDigitalOcean runs the
# same web role against the cloud lab's fake DigitalOcean.

drover {
  name = "web-on-digitalocean"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "amd64"
}

compute "digitalocean" "prod" {
  region        = "ams3"
  size          = "s-1vcpu-1gb"
  vpc_uuid      = "5a4981aa-9653-4bd1-bef5-d6bff52042e4"
  tags          = ["web"]
  spaces_bucket = "example-drover-images"
}

# The address the world knows; drover assigns it to green at the cutover.
ip "digitalocean" "front" {
  address = "203.0.113.10"
  compute = "prod"
}

dns "digitalocean" "example" {
  zone = "example.com"
}

vault {
  address = "https://vault.example.com:8200"
  # Droplets reach Vault over the VPC; drover reaches it from outside.
  instance_address = "https://10.110.0.5:8200"
}

role "web" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx"]
    files = {
      "/etc/nginx/sites-available/default" = "web/site.conf"
      "/var/www/html/index.html"           = "web/index.html"
    }
    run = ["systemctl enable nginx"]
    secret "htpasswd" {
      path     = "kv/data/web/app"
      template = "web/htpasswd.tmpl"
      owner    = "root:www-data"
      mode     = "0440"
    }
    services = ["nginx"]
  }
  deploy {
    compute = "prod"
    count   = 2
    ports   = [80]
    health "http" {
      port   = 80
      path   = "/"
      expect = 200
    }
    cutover "ip" {
      ip   = "front"
      dns  = "example"
      name = "www"
      ttl  = 300
    }
    keep_old = "1h"
    watch    = "2m"
  }
}
