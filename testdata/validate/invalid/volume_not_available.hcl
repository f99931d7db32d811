# expect: 14:5
# A volume block that is right in every way is still refused: the handoff strategy that moves it
# from blue to green is not built yet.
compute "qemu" "lab" {}

role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
  }
  deploy {
    compute = "lab"
    ports   = [5432]
    volume "pgdata" {
      size            = "20GiB"
      mount           = "/var/lib/postgresql"
      fs              = "xfs"
      snapshot_before = false
      owner           = "postgres:postgres"
      mode            = "0700"
    }
  }
}
