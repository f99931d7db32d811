# expect: 2:9
compute "vultr" "prod" {
  region = "ams"
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "prod"
    ports   = [80]
  }
}
