# expect: 11:15 17:5 21:5
# Two volumes with one name, two on one directory, and a volume on a role of three instances.
compute "qemu" "lab" {}

role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
  }
  deploy {
    count   = 3
    compute = "lab"
    volume "data" {
      size = "20GiB"
      mount = "/srv/a"
    }
    volume "data" {
      size = "20GiB"
      mount = "/srv/b"
    }
    volume "logs" {
      size = "1TiB"
      mount = "/srv/a"
    }
  }
}
