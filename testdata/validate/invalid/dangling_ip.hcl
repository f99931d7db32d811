# expect: 11:12
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    cutover "ip" {
      ip = "vip"
    }
  }
}
