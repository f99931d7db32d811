# A web role on AWS (USERS.md setup 4's cloud half): drover bakes the image, publishes it as an AMI
# through the EBS direct APIs (only the disk's non-zero blocks travel), boots it on EC2, checks it,
# moves the Elastic IP to it, and keeps the old instances for a rollback until keep_old has passed.
# Credentials come from the AWS SDK's chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO); Cloudflare's from
# CLOUDFLARE_API_TOKEN; Vault's from VAULT_TOKEN. Replace the IDs with your own; `drover validate`
# checks the file without an account (TestExamplesValidate); TestE2EAWS runs the same web role
# against the cloud lab's fake EC2.

drover {
  name = "web-on-aws"
}

base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "amd64"
}

compute "aws" "prod" {
  region          = "eu-west-1"
  instance_type   = "t3.micro"
  subnet_id       = "subnet-0123456789abcdef0"
  security_groups = ["sg-0123456789abcdef0"]
}

# The address the world knows; drover moves it to green at the cutover.
ip "awseip" "front" {
  allocation_id = "eipalloc-0123456789abcdef0"
  compute       = "prod"
}

dns "cloudflare" "example" {
  zone = "example.com"
}

vault {
  address = "https://vault.example.com:8200"
  # Instances reach Vault inside the VPC; drover reaches it from outside.
  instance_address = "https://vault.internal.example.com:8200"
  aws_mount        = "aws"
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
    # Instances log in to Vault as this IAM role (Vault's aws method): no SecretID is issued.
    aws_iam_role = "arn:aws:iam::123456789012:role/web"
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
