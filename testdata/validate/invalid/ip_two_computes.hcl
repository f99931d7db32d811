# expect: 5:1
compute "qemu" "lab" {}
compute "qemu" "lab2" {}

ip "loopback" "front" {
  address = "127.0.0.100"
}
