# expect: 8:17
role "vault" {
  image {
    base  = "debian-bookworm"
    files = { "/etc/vault.d/vault.hcl" = "files/vault.hcl" }
    file "/usr/local/bin/vault" {
      mode    = "0755"
      source  = "bin/not-built-yet"
      made_by = "go tool task vault"
    }
  }
}

base "debian-bookworm" {
  suite = "bookworm"
}
