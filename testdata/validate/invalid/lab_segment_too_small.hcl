# expect: 6:13
# A VM's segment address is its loopback address moved into the segment: a /28 has no room for a
# /24's VMs.
compute "qemu" "lab" {
  network = "127.0.78.0/24"
  segment = "10.77.0.0/28"
}
