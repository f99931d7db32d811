# expect: 11:15 13:14 3:12 8:12
compute "qemu" "lab" {
  memory = null
}

role "web" {
  image {
    base = null
  }
  deploy {
    compute = null
    health "http" {
      port = null
    }
  }
}
