# expect: 9:15
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lba"
  }
}
