# expect: 9:16 10:16 11:16
compute "qemu" "lab" {}

role "pi" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "lab"
    strategy = "ab"
    count    = 2
  }
}
