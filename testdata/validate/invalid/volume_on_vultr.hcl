# expect: 2:9 13:5
compute "vultr" "prod" {
  region = "ams"
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
