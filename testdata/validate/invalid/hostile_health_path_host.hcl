# expect: 10:14 14:14 18:14
compute "qemu" "lab" {}

role "web" {
  image { base = "debian-bookworm" }
  deploy {
    compute = "lab"
    health "http" {
      port = 80
      path = "@169.254.169.254/latest/meta-data"
    }
    health "http" {
      port = 8080
      path = "//evil.example/"
    }
    health "https" {
      port = 443
      path = "/ok#frag"
    }
  }
}
