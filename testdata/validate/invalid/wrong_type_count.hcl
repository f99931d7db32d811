# expect: 10:15
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    count   = "two"
  }
}
