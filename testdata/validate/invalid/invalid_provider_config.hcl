# expect: 3:13
ip "loopback" "front" {
  address = "10.0.0.1"
}
