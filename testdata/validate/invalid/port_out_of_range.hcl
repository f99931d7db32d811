# expect: 11:14
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    health "tcp" {
      port = 70000
    }
  }
}
