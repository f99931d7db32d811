# expect: 10:14 11:14 5:18 7:15 9:14
compute "qemu" "lab" {}

role "web" {
  image { base = "" }
  deploy {
    compute = ""
    cutover "ip" {
      ip   = ""
      name = ""
      dns  = "nope"
    }
  }
}
