# expect: 10:12
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    health "grpc" {
      port = 9000
    }
  }
}
