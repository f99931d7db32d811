# expect: 4:13
base "debian-bookworm" {
  repository "hashicorp" {
    uri   = "ftp://apt.releases.hashicorp.com"
    suite = "bookworm"
    key   = "keyrings/repository.asc"
  }
}
