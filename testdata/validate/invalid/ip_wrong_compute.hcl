# expect: 6:13 23:12
compute "qemu" "lab" {}
compute "qemu" "lab2" {}

ip "loopback" "front" {
  compute = "lab3"
  address = "127.0.0.100"
}

ip "loopback" "back" {
  compute = "lab2"
  address = "127.0.0.101"
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    ports   = [80]
    cutover "ip" {
      ip = "back"
    }
  }
}
