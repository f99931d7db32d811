# expect: 6:17
role "web" {
  image {
    base = "debian-bookworm"
    file "/etc/motd" {
      content = <<EOT
hello
    }
  }
}
