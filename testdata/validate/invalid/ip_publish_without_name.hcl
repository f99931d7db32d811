# expect: 15:18
compute "qemu" "lab" {}
ip "loopback" "front" { address = "127.0.0.100" }
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
    cutover "ip" {
      ip  = "front"
      dns = "home"
    }
  }
}
