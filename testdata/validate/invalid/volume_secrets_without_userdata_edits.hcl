# expect: 26:5
base "debian-bookworm" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
}

compute "digitalocean" "prod" {
  region        = "ams3"
  size          = "s-1vcpu-1gb"
  spaces_bucket = "example-drover-images"
}

vault {
  address = "https://vault.example.com:8200"
}

role "db" {
  image {
    base     = "debian-bookworm"
    packages = ["postgresql"]
    secrets  = ["kv/data/db/postgres"]
    services = ["postgresql@15-main"]
  }
  deploy {
    compute = "prod"
    volume "pgdata" {
      size  = "10GiB"
      mount = "/var/lib/postgresql"
    }
  }
}
