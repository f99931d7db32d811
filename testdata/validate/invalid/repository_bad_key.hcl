# expect: 6:15
role "vault" {
  image {
    base = "debian-bookworm"
    repository "hashicorp" {
      key   = "keyrings/not-a-key.gpg"
      uri   = "https://apt.releases.hashicorp.com"
      suite = "bookworm"
    }
    packages = ["vault"]
  }
}
