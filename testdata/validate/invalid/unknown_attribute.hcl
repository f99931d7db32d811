# expect: 10:19 11:7
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    health "http" {
      prot = 80
    }
  }
}
