# expect: 11:5
# A volume's services start only once it is mounted: a role with a volume must list them.
compute "qemu" "lab" {}

role "db" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    volume "data" {
      size = "20GiB"
      mount = "/var/lib/postgresql"
      owner = "postgres:postgres"
      mode = "0700"
    }
  }
}
