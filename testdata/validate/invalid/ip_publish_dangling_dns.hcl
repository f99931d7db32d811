# expect: 14:14
compute "qemu" "lab" {}
ip "loopback" "front" { address = "127.0.0.100" }

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    cutover "ip" {
      ip   = "front"
      name = "www"
      dns  = "home"
    }
  }
}
