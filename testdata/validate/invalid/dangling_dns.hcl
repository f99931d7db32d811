# expect: 16:14
compute "qemu" "lab" {}

dns "rfc2136" "home" {
  server = "127.0.0.1:5353"
  zone   = "lab.example."
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    cutover "dns" {
      dns  = "cloud"
      name = "www"
    }
  }
}
