# expect: 5:10
role "web" {
  image {
    base = "debian-bookworm"
    file "etc/motd" {
      content = "hello"
    }
  }
}
