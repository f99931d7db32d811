# expect: 15:5
compute "vultr" "prod" {
  region           = "ams"
  storage_endpoint = "https://ams1.vultrobjects.com"
  bucket           = "drover-images"
}

role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
  }
  deploy {
    compute = "prod"
    volume "data" {
      size = "20GiB"
      mount = "/var/lib/postgresql"
    }
  }
}
