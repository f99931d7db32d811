# expect: 13:15 7:16 8:16 9:16
compute "qemu" "lab" {}

role "web" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx", null]
    services = ["nginx", ["ssh"]]
    files    = { "/etc/motd" = null }
  }
  deploy {
    compute = "lab"
    ports   = [80, null]
  }
}
