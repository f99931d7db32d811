# A web role on Vultr (USERS.md setup 2): drover bakes the image, uploads its raw disk to a Vultr
# Object Storage bucket, has Vultr make a snapshot from a short-lived presigned URL of it (then
# deletes the upload), boots instances from the snapshot, checks them, and moves the reserved IP
# to green: detached from blue, attached to green. The old instances stay for a rollback until
# keep_old has passed. The API key comes from VULTR_API_KEY, the bucket's keys from
# VULTR_OBJECT_STORAGE_ACCESS_KEY and VULTR_OBJECT_STORAGE_SECRET_KEY, Vault's token from
# VAULT_TOKEN. Replace the IDs and addresses with your own; `drover validate` checks the file
# without an account (TestExamplesValidate); TestE2EVultr runs the same web role against the
# cloud lab's fake Vultr. docs/vultr.md says what drover does there and why.

drover {
  name = "web-on-vultr"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "amd64"
}

compute "vultr" "prod" {
  region           = "ams"
  plan             = "vc2-1c-1gb"
  vpc              = "cb676a46-66fd-4dfb-b839-443f2e6c0b60"
  storage_endpoint = "https://ams1.vultrobjects.com"
  bucket           = "drover-images"
}

# The address the world knows; drover moves it to green at the cutover.
ip "vultr" "front" {
  address = "203.0.113.7"
  compute = "prod"
}

vault {
  address = "https://vault.example.com:8200"
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
    # Instances log in to Vault with a single-use, wrapped SecretID handed over in their
    # user-data (Vultr's metadata service), and drover-boot writes the secret before nginx starts.
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
      ip = "front"
    }
    keep_old = "1h"
    watch    = "2m"
  }
}
