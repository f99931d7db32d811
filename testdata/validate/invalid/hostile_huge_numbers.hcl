# expect: 10:15 11:27
compute "qemu" "lab" {}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    count   = 1e999999999
    health "tcp" { port = 1e99999999 }
    ports   = [1e-999999999]
  }
}
