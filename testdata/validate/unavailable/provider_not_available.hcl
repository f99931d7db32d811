# expect: 2:9
compute "comingsoon" "prod" {
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
