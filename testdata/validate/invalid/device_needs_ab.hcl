# expect: 12:15
compute "device" "home" {
  hosts     = ["pi.home.arpa"]
  host_keys = { "pi.home.arpa" = "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8" }
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "home"
    ports   = [80]
  }
}
