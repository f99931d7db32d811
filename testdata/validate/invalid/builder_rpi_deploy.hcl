# expect: 12:15
compute "qemu" "lab" {}

role "pi" {
  image {
    base     = "debian-bookworm"
    builder  = "rpi"
    packages = ["nginx-light"]
  }

  deploy {
    compute = "lab"
  }
}
