# expect: 10:13
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    cutover "bgp" {}
  }
}
