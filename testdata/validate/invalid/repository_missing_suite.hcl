# expect: 5:28
role "vault" {
  image {
    base = "debian-bookworm"
    repository "hashicorp" {
      uri = "https://apt.releases.hashicorp.com"
      key = "keyrings/repository.asc"
    }
  }
}
