# expect: 10:16
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "lab"
    strategy = "canary"
  }
}
