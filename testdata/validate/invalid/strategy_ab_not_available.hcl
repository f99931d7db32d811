# expect: 10:16
compute "qemu" "lab" {}

role "pi" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "lab"
    strategy = "ab"
  }
}
