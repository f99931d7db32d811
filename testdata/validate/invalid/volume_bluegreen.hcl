# expect: 14:16
# A volume block that is right in every way, on a role that asks for bluegreen: green would boot
# without the data and blue's would be destroyed with it. Without strategy, the role gets handoff.
compute "qemu" "lab" {}

role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
  }
  deploy {
    compute  = "lab"
    ports    = [5432]
    strategy = "bluegreen"
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
