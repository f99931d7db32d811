# An arm64 role built with the rootfs builder: its tree is made through qemu-user (binfmt) on an amd64
# host, and its disk boots under UEFI on arm64 (qemu's virt machine, AWS Graviton, Hetzner CAX).
drover {
  name = "arm64"
}

base "bookworm-arm64" {
  suite  = "bookworm"
  mirror = "http://deb.debian.org/debian"
  arch   = "arm64"
}

role "edge" {
  image {
    base     = "bookworm-arm64"
    packages = ["nginx-light"]
    files    = { "/var/www/html/index.html" = "edge/index.html" }
    run      = ["systemctl enable nginx"]
  }
}
