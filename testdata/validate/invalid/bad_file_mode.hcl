# expect: 7:17
role "web" {
  image {
    base = "debian-bookworm"
    file "/etc/motd" {
      content = "hello"
      mode    = "rwxr-xr-x"
    }
  }
}
