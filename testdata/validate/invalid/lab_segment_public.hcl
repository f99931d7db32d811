# expect: 5:13
# The lab's segment is a private range: the VMs' second NIC must not claim public addresses.
compute "qemu" "lab" {
  network = "127.0.78.0/24"
  segment = "192.0.2.0/24"
}
